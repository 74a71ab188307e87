import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Locker } from '@tus/utils';
import { Upload } from '@tus/utils';
import type { Logger } from 'pino';
import { ERRORS, type ErrorEntry } from '../errors/catalogue.ts';
import { CHALLENGE_KEY, OWNER_KEY } from '../request/metadata.ts';
import type { ContentRecord, ContentSource, UploadStorage } from '../storage/types.ts';
import { type Claims, claimsOf, type HashAlgorithm } from './claims.ts';
import type { ContentIndex, IndexEntry, OwnedEntry } from './contentIndex.ts';
import { ContentHasher, type InProgressHashes } from './hashing.ts';
import {
  answerOfStream,
  answersMatch,
  type Challenge,
  newChallenge,
  parseChallenge,
} from './proof.ts';
import type { ProofBudget } from './proofBudget.ts';

export type DedupeParts = {
  storage: UploadStorage;
  index: ContentIndex;
  hashes: InProgressHashes;
  locker: Locker;
  logger: Logger;
  /** How many proofs each identity may have verified (DEDUPE_PROOF_BUDGET). */
  proofBudget: ProofBudget;
  /** Told of each hit and miss (metrics). */
  counters?: { hit(kind: 'owner' | 'proof' | 'content'): void; miss(): void };
};

/**
 * Content-hash dedupe. The server hashes every byte it stores, indexes only digests it computed,
 * and lets uploads share stored content through references kept in storage.
 */
export class Dedupe {
  constructor(private readonly parts: DedupeParts) {}

  /** The hit and miss counters, for the routes that answer hits. */
  get counted(): DedupeParts['counters'] {
    return this.parts.counters;
  }

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

  /** Whether an entry has every digest the client claimed. */
  private static matches(entry: ContentRecord, claims: Claims): boolean {
    return (Object.keys(claims) as HashAlgorithm[]).every((a) => claims[a] === entry[a]);
  }

  /**
   * Content the subject `sub` already uploaded that matches every claim and the length: it may
   * be reused without sending or proving anything. The subject's upload must still exist and
   * still reference that content; a stale entry is dropped.
   */
  async findOwned(
    sub: string,
    size: number,
    metadata: Upload['metadata'],
  ): Promise<IndexEntry | undefined> {
    const claims = claimsOf(metadata);
    const algorithm: HashAlgorithm | undefined = claims.sha256
      ? 'sha256'
      : claims.md5
        ? 'md5'
        : undefined;
    const digest = algorithm && claims[algorithm];
    if (!algorithm || !digest) return undefined;
    const { index, storage } = this.parts;
    const owned = await this.safely('lookup', () => index.lookupOwned(sub, algorithm, digest));
    if (!owned || owned.size !== size || !Dedupe.matches(owned, claims)) return undefined;
    const key = await storage.contentKeyOf(owned.uploadId).catch(() => undefined);
    const record = key ? await storage.refs.get(key, owned.uploadId) : undefined;
    if (!key || !record || record.sub !== sub || record.sha256 !== owned.sha256) {
      await this.safely('removing a stale entry', () => index.removeOwned(sub, owned));
      return undefined;
    }
    return { sha256: record.sha256, md5: record.md5, size: record.size, owner: key };
  }

  /**
   * Verified content a proof of ownership is checked against: it must have the claimed sha256
   * (an md5 claim alone is never enough across owners), the claimed md5 if one is claimed too,
   * and the length.
   */
  private async findShared(
    size: number,
    metadata: Upload['metadata'],
  ): Promise<IndexEntry | undefined> {
    const claims = claimsOf(metadata);
    const sha256 = claims.sha256;
    if (!sha256) return undefined;
    const entry = await this.safely('lookup', () => this.parts.index.lookup('sha256', sha256));
    if (!entry || entry.size !== size || !Dedupe.matches(entry, claims)) return undefined;
    return this.liveEntry(entry);
  }

  /**
   * The challenge a creation claiming a sha256 is answered with. Every such claim gets one while
   * the requester's proof budget lasts, whether or not the content is stored, so the answer
   * reveals nothing about other uploads. Once the budget is spent (or cannot be read) the
   * creation is an ordinary one: the client uploads the bytes.
   */
  async challengeFor(
    identity: string,
    size: number,
    metadata: Upload['metadata'],
  ): Promise<Challenge | undefined> {
    if (!claimsOf(metadata).sha256 || size === 0) return undefined;
    const left = await this.safely('reading the proof budget', () =>
      this.parts.proofBudget.hasLeft(identity),
    );
    return left ? newChallenge() : undefined;
  }

  /**
   * Checks a client's answer to the challenge of an upload it created and has not started
   * sending. A right answer replaces the empty upload by one linked to the stored content.
   * Every attempt draws on the identity's proof budget, stored content or not; beyond it the
   * proof is refused like a wrong one.
   */
  async prove(
    id: string,
    answer: string,
    identity: string,
  ): Promise<{ outcome: 'linked' | 'refused' | 'no-challenge'; size: number }> {
    const { storage, locker } = this.parts;
    const upload = await storage.datastore.getUpload(id);
    const challenge = parseChallenge(upload.metadata?.[CHALLENGE_KEY]);
    const size = upload.size ?? 0;
    if (!challenge || upload.offset !== 0 || size === 0) return { outcome: 'no-challenge', size };
    if (!(await this.parts.proofBudget.draw(identity))) return { outcome: 'refused', size };
    const entry = await this.findShared(size, upload.metadata);
    // Without such content the answer cannot match: the client learns only that it must upload.
    if (!entry) return { outcome: 'refused', size };
    // The answer covers every byte: the stored content is read whole.
    const expected = await this.answerOver(entry, challenge.nonce);
    // Content deleted since it was found answers nothing, as content never stored.
    if (!expected || !answersMatch(answer, expected)) return { outcome: 'refused', size };

    const lock = locker.newLock(id);
    await lock.lock(new AbortController().signal, () => undefined);
    try {
      const current = await storage.datastore.getUpload(id);
      if (current.offset !== 0) return { outcome: 'no-challenge', size };
      const metadata = { ...current.metadata };
      delete metadata[CHALLENGE_KEY];
      const linked = await this.createLinkedUpload(
        new Upload({ ...current, metadata }),
        entry,
        // The empty upload (a multipart upload on S3) makes way for the linked record.
        () => storage.datastore.remove(id),
      );
      if (linked) this.parts.counters?.hit('proof');
      return { outcome: linked ? 'linked' : 'refused', size };
    } finally {
      await lock.unlock();
    }
  }

  /** The answer over the entry's stored bytes; undefined when they were deleted meanwhile. */
  private async answerOver(entry: IndexEntry, nonce: string): Promise<string | undefined> {
    const { storage } = this.parts;
    try {
      return await answerOfStream(nonce, await storage.readContent(entry.owner));
    } catch (error) {
      if ((await storage.contentSize(entry.owner)) === undefined) return undefined;
      throw error;
    }
  }

  /**
   * Creates a finished upload that shares the entry's bytes; undefined if they vanished
   * meanwhile. `replacing` removes what the upload id held before, once the bytes are known live.
   */
  async createLinkedUpload(
    upload: Upload,
    entry: IndexEntry,
    replacing?: () => Promise<void>,
  ): Promise<Upload | undefined> {
    const sub = upload.metadata?.[OWNER_KEY] ?? undefined;
    return this.withContentLock(entry.sha256, async () => {
      if (!(await this.liveEntry(entry))) return undefined;
      await replacing?.();
      const record: ContentRecord = { sha256: entry.sha256, md5: entry.md5, size: entry.size, sub };
      await this.parts.storage.refs.add(entry.owner, upload.id, record);
      await this.parts.storage.createLinked(upload, entry.owner);
      await this.indexOwned(sub, { ...record, uploadId: upload.id });
      return new Upload({ ...upload, offset: entry.size });
    });
  }

  private async indexOwned(sub: string | undefined, entry: OwnedEntry): Promise<void> {
    if (sub) await this.safely('indexing', () => this.parts.index.putOwned(sub, entry));
  }

  /**
   * onUploadCreate: an upload that claims an md5 gets a hasher that computes one; every other
   * upload is hashed with sha256 alone.
   */
  expect(upload: Upload): void {
    if (claimsOf(upload.metadata).md5) {
      this.parts.hashes.put(upload.id, new ContentHasher({ md5: true }));
    }
  }

  /** A partial upload of a concatenation: its bytes pass unhashed (its final is hashed). */
  skipHashing(id: string): void {
    this.parts.hashes.skip(id);
  }

  /** Drops what this instance keeps for an upload that will not be indexed (a finished partial). */
  forget(id: string): void {
    this.parts.hashes.delete(id);
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
    if (hashes.isSkipped(id)) return write(src);
    const hasher =
      offset === 0 ? (hashes.take(id, 0) ?? new ContentHasher()) : hashes.take(id, offset);
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

  /**
   * Hashes the bytes a final upload is being made of (concatenation), read from its sources in
   * order while storage puts them together, so that finishing it needs no second read. A failure
   * only leaves no hasher: the final is then read back when it finishes.
   */
  async hashSources(upload: Upload, sources: ContentSource[]): Promise<void> {
    const hasher = new ContentHasher({ md5: Boolean(claimsOf(upload.metadata).md5) });
    try {
      for (const { key } of sources) {
        for await (const chunk of await this.parts.storage.readContent(key)) {
          hasher.update(chunk as Buffer);
        }
      }
      this.parts.hashes.put(upload.id, hasher);
    } catch (error) {
      this.parts.logger.warn(
        { uploadId: upload.id, err: { message: (error as Error).message } },
        'dedupe: hashing the partial uploads failed; the final will be read back',
      );
    }
  }

  /**
   * The digests of a finished upload: from this instance's hasher, or read back from storage
   * (also when an md5 is claimed and the hasher that saw the bytes did not compute one).
   */
  private async digestOf(upload: Upload): Promise<ContentRecord> {
    const md5 = Boolean(claimsOf(upload.metadata).md5);
    const hasher = this.parts.hashes.take(upload.id, upload.size ?? -1);
    if (hasher && (!md5 || hasher.computesMd5)) return hasher.digest();
    this.parts.logger.info(
      { uploadId: upload.id },
      'dedupe: no hash state, reading the upload back',
    );
    const reread = new ContentHasher({ md5 });
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
    const sub = upload.metadata?.[OWNER_KEY] ?? undefined;
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
    // The upload's own validators come from this time, whether it keeps its bytes or shares.
    const finished = await storage.markFinished(upload);

    await this.withContentLock(digest.sha256, async () => {
      const existing = await this.liveEntry(
        await this.safely('lookup', () => index.lookup('sha256', digest.sha256)),
      );
      const record: ContentRecord = { ...digest, sub };
      if (existing && existing.owner !== upload.id) {
        this.parts.counters?.hit('content');
        await storage.refs.add(existing.owner, upload.id, record);
        await storage.createLinked(finished, existing.owner);
        await storage.removeContent(upload.id);
        // Content first stored without an md5 claim becomes findable by its md5 as well.
        if (digest.md5 && !existing.md5) {
          await this.safely('indexing', () => index.put({ ...existing, md5: digest.md5 }));
        }
      } else {
        this.parts.counters?.miss();
        await storage.refs.add(upload.id, upload.id, record);
        await this.safely('indexing', () => index.put({ ...digest, owner: upload.id }));
      }
      await this.indexOwned(sub, { ...record, uploadId: upload.id });
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
    for await (const { owner, uploadId, record } of this.parts.storage.refs.all()) {
      if (record.sub) await this.parts.index.putOwned(record.sub, { ...record, uploadId });
      if (seen.has(owner)) continue;
      seen.add(owner);
      if ((await this.parts.storage.contentSize(owner)) !== record.size) continue;
      const { sha256, md5, size } = record;
      await this.parts.index.put({ sha256, md5, size, owner });
      written += 1;
    }
    return written;
  }
}
