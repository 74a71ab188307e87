import { createHash, type Hash } from 'node:crypto';
import { ERRORS, type ErrorEntry } from '../errors/catalogue.ts';

/** The algorithms of the checksum extension this server verifies, as Tus-Checksum-Algorithm says. */
export const CHECKSUM_ALGORITHMS = ['sha1', 'md5', 'sha256', 'sha512'] as const;
type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];

const DIGEST_BYTES: Record<ChecksumAlgorithm, number> = {
  sha1: 20,
  md5: 16,
  sha256: 32,
  sha512: 64,
};

/** What an Upload-Checksum header says the request body hashes to. */
export type UploadChecksum = { algorithm: ChecksumAlgorithm; digest: Buffer };

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * Parses `Upload-Checksum: <algorithm> <Base64 digest>`. An algorithm the server does not
 * support is a 400 (tus: "the Server MUST respond with the 400 Bad Request status"); so is a
 * digest that is not Base64 of the algorithm's length.
 */
export function parseUploadChecksum(value: string): UploadChecksum | ErrorEntry {
  const match = /^\s*(\S+) +(\S+)\s*$/.exec(value);
  if (!match) return ERRORS.INVALID_UPLOAD_CHECKSUM;
  const [, name = '', encoded = ''] = match;
  const algorithm = CHECKSUM_ALGORITHMS.find((known) => known === name.toLowerCase());
  if (!algorithm) return ERRORS.CHECKSUM_ALGORITHM_UNSUPPORTED;
  if (!BASE64.test(encoded) || encoded.length % 4 !== 0) return ERRORS.INVALID_UPLOAD_CHECKSUM;
  const digest = Buffer.from(encoded, 'base64');
  if (digest.length !== DIGEST_BYTES[algorithm]) return ERRORS.INVALID_UPLOAD_CHECKSUM;
  return { algorithm, digest };
}

/** A hash of the request body, compared with its Upload-Checksum once the body has ended. */
export class ChecksumVerifier {
  private readonly hash: Hash;

  constructor(private readonly expected: UploadChecksum) {
    this.hash = createHash(expected.algorithm);
  }

  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
  }

  matches(): boolean {
    return this.hash.digest().equals(this.expected.digest);
  }
}
