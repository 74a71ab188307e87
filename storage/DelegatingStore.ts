import type { Readable } from 'node:stream';
import { DataStore, type Upload } from '@tus/utils';

/**
 * A DataStore that hands every call to the store it wraps: the base of the wrappers that add
 * something to a backend's store (storage/UploadStore.ts, dedupe/DedupeStore.ts), each
 * overriding only what it changes.
 */
export class DelegatingStore extends DataStore {
  constructor(protected readonly inner: DataStore) {
    super();
    this.extensions = inner.extensions;
  }

  override create(upload: Upload): Promise<Upload> {
    return this.inner.create(upload);
  }

  override write(src: Readable, id: string, offset: number): Promise<number> {
    return this.inner.write(src, id, offset);
  }

  override getUpload(id: string): Promise<Upload> {
    return this.inner.getUpload(id);
  }

  override remove(id: string): Promise<void> {
    return this.inner.remove(id);
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
