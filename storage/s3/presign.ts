import { GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import type { PresignOptions } from '../types.ts';

export type S3PresignerOptions = {
  /** The address clients use for S3: the host a SigV4 signature covers is the one they send. */
  endpoint: string;
  bucket: string;
  region: string;
  /** The storage client's, so the default chain is resolved (and refreshed) once. */
  credentials: AwsCredentialIdentity | AwsCredentialIdentityProvider;
};

/**
 * Presigned GetObject URLs (SigV4 query authentication) for clients to fetch bytes from S3
 * directly. Signing sends nothing: the client here only carries the endpoint and credentials.
 */
export class S3Presigner {
  private readonly client: S3Client;

  constructor(private readonly options: S3PresignerOptions) {
    this.client = new S3Client({
      endpoint: options.endpoint,
      region: options.region,
      credentials: options.credentials,
      // MinIO serves buckets by path, not by virtual host.
      forcePathStyle: true,
      // Otherwise GetObject signs `x-amz-checksum-mode`, a header a browser or curl never sends.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  /**
   * A URL for one request method on `key` until it expires, answered with the given headers.
   * The method is part of what is signed, so a HEAD gets a HeadObject URL.
   */
  urlOf(
    key: string,
    { method, expiresInSeconds, contentType, contentDisposition }: PresignOptions,
  ) {
    const input = {
      Bucket: this.options.bucket,
      Key: key,
      // S3 answers a signed request carrying response-content-type / -disposition with them.
      ResponseContentType: contentType,
      ResponseContentDisposition: contentDisposition,
    };
    const command = method === 'HEAD' ? new HeadObjectCommand(input) : new GetObjectCommand(input);
    return getSignedUrl(this.client, command, { expiresIn: expiresInSeconds });
  }

  close(): void {
    this.client.destroy();
  }
}
