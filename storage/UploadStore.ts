import type { Readable } from 'node:stream';
import { type DataStore, Upload } from '@tus/utils';
import { currentContext } from '../request/context.ts';
import { DelegatingStore } from './DelegatingStore.ts';
import { linkedOwner } from './types.ts';

/** What the wrapper needs of a backend besides its DataStore: its records. */
export type UploadRecords = {
  /** The record as stored, without working out the offset; a missing one is tus's 404. */
  recordOf(id: string): Promise<Upload>;
  /** Deletes the record alone (a linked upload has no bytes of its own). */
  removeRecord(id: string): Promise<void>;
};

/**
 * The DataStore of every backend, around its tus store (@tus/file-store's, @tus/s3-store's),
 * with what the project adds to an upload's life and neither store knows:
 *
 * - linked uploads (dedupe): a finished record whose bytes are another upload's
 *   (`storage.path`, see linkedOwner) has no bytes, parts or file of its own: it is finished at
 *   its size, and removing it removes its record alone;
 * - finished uploads never expire (as in tusd): they are read without their creation date, so
 *   tus neither expires them nor sends Upload-Expires;
 * - an upload this request created or wrote has the offset it was left at (the request's
 *   context knows it; the creation answer asks again).
 */
export class UploadStore extends DelegatingStore {
  constructor(
    inner: DataStore,
    private readonly records: UploadRecords,
  ) {
    super(inner);
  }

  override async create(upload: Upload): Promise<Upload> {
    const created = await this.inner.create(upload);
    // A new upload holds no bytes yet (a 0-byte one is finished at that offset).
    currentContext()?.offsets.set(created.id, 0);
    return created;
  }

  override async write(src: Readable, id: string, offset: number): Promise<number> {
    const written = await this.inner.write(src, id, offset);
    currentContext()?.offsets.set(id, written);
    return written;
  }

  override async getUpload(id: string): Promise<Upload> {
    const record = await this.records.recordOf(id);
    let upload: Upload;
    if (linkedOwner(record, id)) upload = new Upload({ ...record, offset: record.size ?? 0 });
    else {
      const known = currentContext()?.offsets.get(id);
      upload =
        known === undefined
          ? await this.inner.getUpload(id)
          : new Upload({ ...record, offset: known });
    }
    if (upload.size !== undefined && upload.offset === upload.size)
      upload.creation_date = undefined;
    return upload;
  }

  override async remove(id: string): Promise<void> {
    const record = await this.records.recordOf(id);
    if (linkedOwner(record, id)) await this.records.removeRecord(id);
    else await this.inner.remove(id);
  }
}
