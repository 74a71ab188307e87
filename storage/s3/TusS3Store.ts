import { Readable } from 'node:stream';
import { S3Store } from '@tus/s3-store';
import { TUS_RESUMABLE, Upload } from '@tus/utils';
import { linkedOwner } from '../types.ts';
import { notFoundAsTus, reportOutages } from './outages.ts';

/**
 * @tus/s3-store with linked (deduplicated) uploads, and two gaps closed: empty uploads and the
 * incomplete tail on termination.
 */
export class TusS3Store extends S3Store {
  constructor(options: ConstructorParameters<typeof S3Store>[0]) {
    super(options);
    reportOutages(this.client);
  }

  /** A linked upload is finished and has no multipart upload to list. */
  override async getUpload(id: string): Promise<Upload> {
    const { file } = await this.getMetadata(id).catch(notFoundAsTus);
    if (linkedOwner(file, id)) return new Upload({ ...file, offset: file.size ?? 0 });
    return super.getUpload(id);
  }

  /** The upload's record as stored in `<id>.info` (cached), without asking S3 for its parts. */
  async recordOf(id: string): Promise<Upload> {
    return (await this.getMetadata(id)).file;
  }

  async contentKeyOf(id: string): Promise<string> {
    return linkedOwner(await this.recordOf(id), id) ?? id;
  }

  /** Writes `<id>.info` in S3Store's own format, finished, with the owner as storage path. */
  async saveLinked(upload: Upload, owner: string): Promise<void> {
    const record = new Upload({
      ...upload,
      offset: upload.size ?? 0,
      creation_date: upload.creation_date ?? new Date().toISOString(),
      storage: { type: 's3', path: owner, bucket: this.bucket },
    });
    await this.client.putObject({
      Bucket: this.bucket,
      Key: this.infoKey(upload.id),
      Body: JSON.stringify(record),
      Tagging: this.useCompleteTag('true'),
      Metadata: { 'upload-id': '', 'tus-version': TUS_RESUMABLE },
    });
    await this.clearCache(upload.id);
  }

  async removeRecord(id: string): Promise<void> {
    await this.client.deleteObject({ Bucket: this.bucket, Key: this.infoKey(id) });
    await this.clearCache(id);
  }

  /** A 0-byte upload is finished at creation, but nothing would complete its multipart upload. */
  override async create(upload: Upload): Promise<Upload> {
    const created = await super.create(upload);
    if (created.size === 0) await super.write(Readable.from([]), created.id, 0);
    return created;
  }

  /** A 0-byte upload was completed by create(); a creation-with-upload body adds nothing. */
  override async write(src: Readable, id: string, offset: number): Promise<number> {
    if (offset === 0 && (await this.getMetadata(id)).file.size === 0) return 0;
    return super.write(src, id, offset);
  }

  /**
   * S3Store changes the cached record in place and saves `<id>.info`, but never refreshes the
   * cache: an in-process cache shares that object and sees the length, Redis keeps a copy that
   * still has none. A length of 0 finishes the upload, as a 0-byte creation does.
   */
  override async declareUploadLength(id: string, length: number): Promise<void> {
    await super.declareUploadLength(id, length);
    await this.clearCache(id);
    if (length === 0) await super.write(Readable.from([]), id, 0);
  }

  /**
   * S3Store's sweep deletes an expired upload's objects but leaves its record in the metadata
   * cache, where HEAD still found it (200 for an upload that is gone). Each expired upload loses
   * its record first, then its cache entry, its multipart upload and its incomplete tail.
   */
  override async deleteExpired(): Promise<number> {
    const period = this.getExpiration();
    if (period === 0) return 0;
    let deleted = 0;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      const page = await this.client.listMultipartUploads({
        Bucket: this.bucket,
        KeyMarker: keyMarker,
        UploadIdMarker: uploadIdMarker,
      });
      for (const { Key, UploadId, Initiated } of page.Uploads ?? []) {
        if (!Key || !UploadId || !Initiated || Date.now() <= Initiated.getTime() + period) continue;
        await this.client.deleteObject({ Bucket: this.bucket, Key: this.infoKey(Key) });
        await this.clearCache(Key);
        await this.client.abortMultipartUpload({ Bucket: this.bucket, Key, UploadId });
        await this.deleteIncompletePart(Key);
        deleted += 1;
      }
      keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
    } while (keyMarker);
    return deleted;
  }

  /** Termination also removes the incomplete tail (`<id>.part`), which S3Store leaves behind. */
  override async remove(id: string): Promise<void> {
    const { file } = await this.getMetadata(id).catch(notFoundAsTus);
    // A linked upload has no bytes and no multipart upload of its own.
    if (linkedOwner(file, id)) return this.removeRecord(id);
    await super.remove(id);
    await this.deleteIncompletePart(id);
  }
}
