import type stream from 'node:stream';
import type { DataStore } from '@tus/utils';
import { DelegatingStore } from '../storage/DelegatingStore.ts';
import type { Dedupe } from './Dedupe.ts';

/**
 * The DataStore tus writes through: the storage's own store, with every write hashed and every
 * termination reference-aware, so shared content outlives the upload that first stored it.
 */
export class DedupeStore extends DelegatingStore {
  constructor(
    inner: DataStore,
    private readonly dedupe: Dedupe,
    private readonly hashing: boolean,
  ) {
    super(inner);
  }

  override write(src: stream.Readable, id: string, offset: number): Promise<number> {
    if (!this.hashing) return this.inner.write(src, id, offset);
    return this.dedupe.hashWrite(id, offset, src, (tapped) => this.inner.write(tapped, id, offset));
  }

  override async remove(id: string): Promise<void> {
    if (!(await this.dedupe.remove(id))) await this.inner.remove(id);
  }
}
