import { createHash, type Hash } from 'node:crypto';
import type { ContentRecord } from '../storage/types.ts';

/**
 * The digests of an upload computed as its bytes arrive (OpenSSL): always sha256, md5 only when
 * the upload claimed one. md5 costs more than sha256 on CPUs with SHA extensions, and nothing
 * but an md5 claim needs it.
 */
export class ContentHasher {
  private readonly sha256: Hash = createHash('sha256');
  private readonly md5: Hash | undefined;
  offset = 0;

  constructor({ md5 = false }: { md5?: boolean } = {}) {
    this.md5 = md5 ? createHash('md5') : undefined;
  }

  get computesMd5(): boolean {
    return this.md5 !== undefined;
  }

  update(chunk: Uint8Array): void {
    this.sha256.update(chunk);
    this.md5?.update(chunk);
    this.offset += chunk.length;
  }

  /** Ends the hasher: it cannot take more bytes afterwards. */
  digest(): ContentRecord {
    const record: ContentRecord = { sha256: this.sha256.digest('hex'), size: this.offset };
    if (this.md5) record.md5 = this.md5.digest('hex');
    return record;
  }
}

/**
 * Hashers of the uploads this instance is receiving, kept between PATCHes. A PATCH that
 * continues an upload at the hasher's offset continues the hasher; anything else (another
 * instance took the previous PATCH, a restart, a failed write) leaves no hasher, and the upload
 * is read back once when it finishes.
 */
export class InProgressHashes {
  /** An entry without a hasher marks an upload whose bytes are not hashed (skip). */
  private readonly hashers = new Map<string, { hasher?: ContentHasher; touched: number }>();

  constructor(
    private readonly maxEntries = 10_000,
    private readonly idleMs = 24 * 3600 * 1000,
  ) {}

  /** Removes and returns the hasher that stopped exactly at `offset`, if any. */
  take(id: string, offset: number): ContentHasher | undefined {
    const entry = this.hashers.get(id);
    this.hashers.delete(id);
    return entry?.hasher && entry.hasher.offset === offset ? entry.hasher : undefined;
  }

  /** Marks an upload whose writes pass unhashed, until it is deleted (or evicted). */
  skip(id: string): void {
    this.put(id, undefined);
  }

  isSkipped(id: string): boolean {
    const entry = this.hashers.get(id);
    return entry !== undefined && entry.hasher === undefined;
  }

  put(id: string, hasher: ContentHasher | undefined): void {
    this.hashers.delete(id);
    this.hashers.set(id, { hasher, touched: Date.now() });
    // Oldest first: Map keeps insertion order, and put() re-inserts.
    for (const [key, { touched }] of this.hashers) {
      if (this.hashers.size <= this.maxEntries && Date.now() - touched < this.idleMs) break;
      this.hashers.delete(key);
    }
  }

  delete(id: string): void {
    this.hashers.delete(id);
  }
}
