import { DeleteObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import type { ContentRecord, ContentRefs } from '../types.ts';
import { isNotFound } from './outages.ts';
import type { S3Http } from './S3Http.ts';

const REFS_PREFIX = 'refs/';

/** References as small JSON objects: `refs/<owner>/<uploadId>`. */
export class S3ContentRefs implements ContentRefs {
  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    /** Reads and writes go around the SDK: one of each on every dedupe hit. */
    private readonly http: S3Http,
  ) {}

  private key(owner: string, uploadId: string): string {
    return `${REFS_PREFIX}${owner}/${uploadId}`;
  }

  async add(owner: string, uploadId: string, record: ContentRecord): Promise<void> {
    await this.http.put(this.key(owner, uploadId), JSON.stringify(record), {
      'content-type': 'application/json',
    });
  }

  async get(owner: string, uploadId: string): Promise<ContentRecord | undefined> {
    try {
      return JSON.parse(await this.http.text(this.key(owner, uploadId)));
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async remove(owner: string, uploadId: string): Promise<void> {
    await this.client.send(
      new DeleteObjectCommand({ Bucket: this.bucket, Key: this.key(owner, uploadId) }),
    );
  }

  /** One key is enough to know, however many references there are. */
  async isReferenced(owner: string): Promise<boolean> {
    const listed = await this.client.send(
      new ListObjectsV2Command({
        Bucket: this.bucket,
        Prefix: `${REFS_PREFIX}${owner}/`,
        MaxKeys: 1,
      }),
    );
    return (listed.KeyCount ?? 0) > 0;
  }

  async *all() {
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: REFS_PREFIX,
          ContinuationToken: token,
        }),
      );
      for (const object of page.Contents ?? []) {
        const [owner, uploadId] = (object.Key ?? '').slice(REFS_PREFIX.length).split('/');
        if (!owner || !uploadId) continue;
        const record = await this.get(owner, uploadId);
        if (record) yield { owner, uploadId, record };
      }
      token = page.NextContinuationToken;
    } while (token);
  }
}
