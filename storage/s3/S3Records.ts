import { DeleteObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { MetadataValue } from '@tus/s3-store';
import { TUS_RESUMABLE, Upload } from '@tus/utils';
import { finishedNow, stampFinished } from '../types.ts';
import type { MetadataCache } from './MetadataCache.ts';
import { notFoundAsTus } from './outages.ts';
import type { S3Http } from './S3Http.ts';

/**
 * The upload records (`<id>.info`) in @tus/s3-store's format, read and written here only: the
 * object's body is the upload as JSON, its `x-amz-meta-upload-id` the multipart upload's id, its
 * `x-amz-meta-tus-version` the protocol, its tag `Tus-Completed=<bool>` when unfinished uploads
 * expire. @tus/s3-store reads records through this class too (TusS3Store.getMetadata), so both
 * sides always agree; the storage contract test checks the format against @tus/s3-store's own
 * reading of it, so an upstream change of format fails there.
 *
 * Every read goes through the metadata cache (Redis, or in-process) and the request's records
 * (MetadataCache), every write replaces both.
 */
export class S3Records {
  constructor(
    private readonly parts: {
      http: S3Http;
      client: S3Client;
      bucket: string;
      cache: MetadataCache;
      /** Whether records carry the `Tus-Completed` tag (unfinished uploads expire). */
      tagged: boolean;
    },
  ) {}

  /** The key of an upload's record, as @tus/s3-store names it. */
  static keyOf(id: string): string {
    return `${id}.info`;
  }

  /** The record with its multipart upload's id; rejects with S3's NoSuchKey when missing. */
  async read(id: string): Promise<MetadataValue> {
    const { http, cache } = this.parts;
    const cached = await cache.get(id);
    if (cached) return cached;
    const { text, headers } = await http.object(S3Records.keyOf(id));
    const file = JSON.parse(text) as Partial<Upload> & { size?: unknown; offset?: unknown };
    const value: MetadataValue = {
      'tus-version': String(headers['x-amz-meta-tus-version'] ?? ''),
      'upload-id': String(headers['x-amz-meta-upload-id'] ?? ''),
      file: new Upload({
        id,
        size: Number.isFinite(file.size) ? Number.parseInt(String(file.size), 10) : undefined,
        offset: Number.parseInt(String(file.offset), 10),
        metadata: file.metadata,
        creation_date: file.creation_date,
        storage: file.storage,
      }),
    };
    await cache.set(id, value);
    return value;
  }

  /** The upload's record (length, metadata) as stored; a missing one is tus's 404. */
  async recordOf(id: string): Promise<Upload> {
    return (await this.read(id).catch(notFoundAsTus)).file;
  }

  /**
   * Writes the record and caches it, unless `cached` is false (the record tagged complete on
   * the way to being dropped from the cache: @tus/s3-store's completion); `complete` is the tag
   * it carries when tags are used.
   */
  async write(upload: Upload, uploadId: string, complete: boolean, cached = true): Promise<void> {
    const { http, cache, tagged } = this.parts;
    const headers: Record<string, string> = {
      'x-amz-meta-upload-id': uploadId,
      'x-amz-meta-tus-version': TUS_RESUMABLE,
    };
    if (tagged) headers['x-amz-tagging'] = `Tus-Completed=${complete}`;
    await http.put(S3Records.keyOf(upload.id), JSON.stringify(upload), headers);
    if (!cached) return;
    await cache.set(upload.id, {
      'tus-version': TUS_RESUMABLE,
      'upload-id': uploadId,
      file: new Upload({ ...upload }),
    });
  }

  /** The record of an upload with bytes of its own again, finished now (its validators). */
  async saveFinished(upload: Upload): Promise<Upload> {
    const at = new Date();
    const { 'upload-id': uploadId, file } = await this.read(upload.id);
    await this.write(
      new Upload({ ...stampFinished(file, at), offset: upload.offset }),
      uploadId ?? '',
      true,
    );
    return stampFinished(upload, at);
  }

  /** A finished record whose bytes are the owner's (`storage.path`), in @tus/s3-store's format. */
  async saveLinked(upload: Upload, owner: string): Promise<void> {
    const record = new Upload({
      ...finishedNow(upload),
      offset: upload.size ?? 0,
      creation_date: upload.creation_date ?? new Date().toISOString(),
      storage: { type: 's3', path: owner, bucket: this.parts.bucket },
    });
    await this.write(record, '', true);
  }

  /** Deletes the record, then its cache entry. */
  async remove(id: string): Promise<void> {
    const { client, bucket, cache } = this.parts;
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: S3Records.keyOf(id) }));
    await cache.delete(id);
  }
}
