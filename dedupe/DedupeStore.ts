import type stream from 'node:stream';
import { DataStore, type Upload } from '@tus/utils';
import type { Dedupe } from './Dedupe.ts';

/**
 * The DataStore tus writes through: the storage's own store, with every write hashed and every
 * termination reference-aware, so shared content outlives the upload that first stored it.
 */
export class DedupeStore extends DataStore {
  constructor(
    private readonly inner: DataStore,
    private readonly dedupe: Dedupe,
    private readonly hashing: boolean,
  ) {
    super();
    this.extensions = inner.extensions;
  }

  override create(upload: Upload): Promise<Upload> {
    return this.inner.create(upload);
  }

  override write(src: stream.Readable, id: string, offset: number): Promise<number> {
    if (!this.hashing) return this.inner.write(src, id, offset);
    return this.dedupe.hashWrite(id, offset, src, (tapped) => this.inner.write(tapped, id, offset));
  }

  override getUpload(id: string): Promise<Upload> {
    return this.inner.getUpload(id);
  }

  override async remove(id: string): Promise<void> {
    if (!(await this.dedupe.remove(id))) await this.inner.remove(id);
  }

  override declareUploadLength(id: string, length: number): Promise<void> {
    return this.inner.declareUploadLength(id, length);
  }

  override deleteExpired(): Promise<number> {
    return this.inner.deleteExpired();
  }

  override getExpiration(): number {
    return this.inner.getExpiration();
  }
}
