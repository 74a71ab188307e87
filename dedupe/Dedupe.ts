import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Locker } from '@tus/utils';
import { Upload } from '@tus/utils';
import type { Logger } from 'pino';
import { ERRORS, type ErrorEntry } from '../errors/catalogue.ts';
import type { ContentRecord, UploadStorage } from '../storage/types.ts';
import { claimsOf, type HashAlgorithm } from './claims.ts';
import type { ContentIndex, IndexEntry } from './contentIndex.ts';
import { ContentHasher, type InProgressHashes } from './hashing.ts';

export type DedupeParts = {
  storage: UploadStorage;
  index: ContentIndex;
  hashes: InProgressHashes;
  locker: Locker;
  logger: Logger;
};

/**
 * Content-hash dedupe. The server hashes every byte it stores, indexes only digests it computed,
 * and lets uploads share stored content through references kept in storage.
 */
export class Dedupe {
  constructor(private readonly parts: DedupeParts) {}

  /** Serialises every change to one content's references, index entry and bytes. */
  private async withContentLock<T>(sha256: string, work: () => Promise<T>): Promise<T> {
    const lock = this.parts.locker.newLock(`content-${sha256}`);
    await lock.lock(new AbortController().signal, () => undefined);
    try {
      return await work();
    } finally {
      await lock.unlock();
    }
  }

  /** Index problems never fail an upload: they make dedupe miss. */
  private async safely<T>(what: string, work: () => Promise<T>): Promise<T | undefined> {
    try {
      return await work();
    } catch (error) {
      this.parts.logger.warn(
        { err: { message: (error as Error).message } },
        `dedupe: ${what} failed`,
      );
      return undefined;
    }
  }

  /** An index entry counts only while its bytes are still in storage; a stale one is dropped. */
  private async liveEntry(entry: IndexEntry | undefined): Promise<IndexEntry | undefined> {
    if (!entry) return undefined;
    if ((await this.parts.storage.contentSize(entry.owner)) === entry.size) return entry;
    await this.safely('removing a stale entry', () => this.parts.index.remove(entry));
    return undefined;
  }

  /**
   * The stored content a creation request may reuse: same claimed digest and same length.
   * Whether its bytes still exist is checked under the lock, when the upload is linked.
   */
  async findHit(size: number, metadata: Upload['metadata']): Promise<IndexEntry | undefined> {
    for (const [algorithm, digest] of Object.entries(claimsOf(metadata)) as [
      HashAlgorithm,
      string,
    ][]) {
      const entry = await this.safely('lookup', () => this.parts.index.lookup(algorithm, digest));
      if (entry && entry.size === size) return entry;
    }
    return undefined;
  }

  /** Creates a finished upload that shares the entry's bytes; undefined if they vanished meanwhile. */
  async createLinkedUpload(upload: Upload, entry: IndexEntry): Promise<Upload | undefined> {
    return this.withContentLock(entry.sha256, async () => {
      if (!(await this.liveEntry(entry))) return undefined;
      const record: ContentRecord = { sha256: entry.sha256, md5: entry.md5, size: entry.size };
      await this.parts.storage.refs.add(entry.owner, upload.id, record);
      await this.parts.storage.createLinked(upload, entry.owner);
      return new Upload({ ...upload, offset: entry.size });
    });
  }

  /**
   * Hashes the bytes of a write as they pass to storage, continuing this instance's hasher when
   * the write starts where it stopped. Without one the bytes pass unhashed, and the digest is
   * computed from storage when the upload finishes.
   */
  async hashWrite(
    id: string,
    offset: number,
    src: Readable,
    write: (stream: Readable) => Promise<number>,
  ): Promise<number> {
    const { hashes } = this.parts;
    const hasher = offset === 0 ? new ContentHasher() : hashes.take(id, offset);
    if (!hasher) return write(src);

    const tap = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        hasher.update(chunk);
        callback(null, chunk);
      },
    });
    const piped = pipeline(src, tap).catch(() => undefined);
    const newOffset = await write(tap);
    await piped;
    // The hasher is kept only if it covers exactly what storage now holds.
    if (newOffset === hasher.offset) hashes.put(id, hasher);
    return newOffset;
  }

  /** The digests of a finished upload: from this instance's hasher, or read back from storage. */
  private async digestOf(upload: Upload): Promise<ContentRecord> {
    const hasher = this.parts.hashes.take(upload.id, upload.size ?? -1);
    if (hasher) return hasher.digest();
    this.parts.logger.info(
      { uploadId: upload.id },
      'dedupe: no hash state, reading the upload back',
    );
    const reread = new ContentHasher();
    for await (const chunk of await this.parts.storage.read(upload.id))
      reread.update(chunk as Buffer);
    return reread.digest();
  }

  /**
   * onUploadFinish: checks the client's claimed digests against the stored bytes, then indexes
   * them or, when the same content is already stored, links this upload to it and frees the copy.
   */
  async finish(upload: Upload): Promise<ErrorEntry | undefined> {
    const { storage, index } = this.parts;
    const digest = await this.digestOf(upload);

    const claims = claimsOf(upload.metadata);
    const mismatched = (Object.keys(claims) as HashAlgorithm[]).filter(
      (a) => claims[a] !== digest[a],
    );
    if (mismatched.length > 0) {
      // The bytes are not what the client said they are: they are never served or indexed.
      await storage.datastore.remove(upload.id);
      if (mismatched.length === 2) return ERRORS.SHA256_AND_MD5_MISMATCH;
      return mismatched[0] === 'sha256' ? ERRORS.SHA256_MISMATCH : ERRORS.MD5_MISMATCH;
    }

    await this.withContentLock(digest.sha256, async () => {
      const existing = await this.liveEntry(
        await this.safely('lookup', () => index.lookup('sha256', digest.sha256)),
      );
      if (existing && existing.owner !== upload.id) {
        await storage.refs.add(existing.owner, upload.id, digest);
        await storage.createLinked(upload, existing.owner);
        await storage.removeContent(upload.id);
        return;
      }
      await storage.refs.add(upload.id, upload.id, digest);
      await this.safely('indexing', () => index.put({ ...digest, owner: upload.id }));
    });
    return undefined;
  }

  /**
   * Terminates an upload without breaking others that share its bytes: the bytes go only with
   * the last reference. Returns false when the upload holds no reference (never finished).
   */
  async remove(id: string): Promise<boolean> {
    const { storage, index } = this.parts;
    // A terminated upload's hasher would otherwise wait for eviction.
    this.parts.hashes.delete(id);
    const owner = await storage.contentKeyOf(id).catch(() => id);
    const record = await storage.refs.get(owner, id);
    if (!record) return false;
    await this.withContentLock(record.sha256, async () => {
      await storage.refs.remove(owner, id);
      const referenced = await storage.refs.isReferenced(owner);
      if (owner === id && !referenced) {
        await storage.datastore.remove(id);
      } else {
        await storage.removeRecord(id);
        if (!referenced) await storage.removeContent(owner);
      }
      if (!referenced) await this.safely('unindexing', () => index.remove({ ...record, owner }));
    });
    return true;
  }

  /** Rebuilds the index from the references kept in storage; returns how many entries it wrote. */
  async reindex(): Promise<number> {
    const seen = new Set<string>();
    let written = 0;
    for await (const { owner, record } of this.parts.storage.refs.all()) {
      if (seen.has(owner)) continue;
      seen.add(owner);
      if ((await this.parts.storage.contentSize(owner)) !== record.size) continue;
      await this.parts.index.put({ ...record, owner });
      written += 1;
    }
    return written;
  }
}
