import type { Redis } from 'ioredis';
import type { ContentRecord } from '../storage/types.ts';
import type { HashAlgorithm } from './claims.ts';

/**
 * A verified piece of content: its digests, its size and the key its bytes live under (`owner`,
 * the id of the upload that stored them; not a person).
 */
export type IndexEntry = ContentRecord & { owner: string };

/** An upload of one token subject (`sub`) whose verified content has these digests. */
export type OwnedEntry = ContentRecord & { uploadId: string };

/**
 * Maps verified digests to stored content; only server-computed digests enter it. Two views:
 * the shared one (any verified content: what proofs of ownership and finished uploads are
 * linked against) and one per token subject (what that subject already uploaded, which it may
 * reuse without sending or proving anything).
 */
export interface ContentIndex {
  lookup(algorithm: HashAlgorithm, digest: string): Promise<IndexEntry | undefined>;
  put(entry: IndexEntry): Promise<void>;
  /** Removes the entry's keys, but only where they still point at the same owner. */
  remove(entry: IndexEntry): Promise<void>;
  lookupOwned(
    sub: string,
    algorithm: HashAlgorithm,
    digest: string,
  ): Promise<OwnedEntry | undefined>;
  putOwned(sub: string, entry: OwnedEntry): Promise<void>;
  /** Removes the subject's keys, but only where they still name the same upload. */
  removeOwned(sub: string, entry: OwnedEntry): Promise<void>;
}

const ALGORITHMS = ['sha256', 'md5'] as const;

/** The algorithms an entry has a digest for, with that digest (md5 is optional). */
function digestsOf(entry: ContentRecord): Array<[HashAlgorithm, string]> {
  return ALGORITHMS.flatMap((a) => (entry[a] ? [[a, entry[a]] as [HashAlgorithm, string]] : []));
}

export class MemoryContentIndex implements ContentIndex {
  private readonly entries = new Map<string, IndexEntry>();
  private readonly owned = new Map<string, OwnedEntry>();

  async lookup(algorithm: HashAlgorithm, digest: string) {
    return this.entries.get(`${algorithm}:${digest}`);
  }

  async put(entry: IndexEntry) {
    for (const [algorithm, digest] of digestsOf(entry)) {
      this.entries.set(`${algorithm}:${digest}`, entry);
    }
  }

  async remove(entry: IndexEntry) {
    for (const [algorithm, digest] of digestsOf(entry)) {
      const key = `${algorithm}:${digest}`;
      if (this.entries.get(key)?.owner === entry.owner) this.entries.delete(key);
    }
  }

  async lookupOwned(sub: string, algorithm: HashAlgorithm, digest: string) {
    return this.owned.get(JSON.stringify([sub, algorithm, digest]));
  }

  async putOwned(sub: string, entry: OwnedEntry) {
    for (const [algorithm, digest] of digestsOf(entry)) {
      this.owned.set(JSON.stringify([sub, algorithm, digest]), entry);
    }
  }

  async removeOwned(sub: string, entry: OwnedEntry) {
    for (const [algorithm, digest] of digestsOf(entry)) {
      const key = JSON.stringify([sub, algorithm, digest]);
      if (this.owned.get(key)?.uploadId === entry.uploadId) this.owned.delete(key);
    }
  }
}

// Deletes KEYS[1] only while its JSON value still has ARGV[2] under the field ARGV[1].
const REMOVE_IF_SAME = `
local value = redis.call('GET', KEYS[1])
if value and cjson.decode(value)[ARGV[1]] == ARGV[2] then return redis.call('DEL', KEYS[1]) end
return 0`;

/**
 * Keys: `tus:dedupe:<namespace>:global:{<algorithm>:<digest>}` (shared) and
 * `tus:dedupe:<namespace>:owned:{<sub>}:<algorithm>:<digest>` (per subject; base64url of the
 * sub). The namespace names the storage (the bucket), so deployments sharing one Redis never
 * see each other's content. Each shared key is its own Redis Cluster slot; one subject's keys
 * share a slot.
 */
export class RedisContentIndex implements ContentIndex {
  constructor(
    private readonly redis: Redis,
    private readonly namespace: string,
  ) {}

  private key(algorithm: HashAlgorithm, digest: string) {
    return `tus:dedupe:${this.namespace}:global:{${algorithm}:${digest}}`;
  }

  private ownedKey(sub: string, algorithm: HashAlgorithm, digest: string) {
    const owner = Buffer.from(sub).toString('base64url');
    return `tus:dedupe:${this.namespace}:owned:{${owner}}:${algorithm}:${digest}`;
  }

  async lookup(algorithm: HashAlgorithm, digest: string) {
    const raw = await this.redis.get(this.key(algorithm, digest));
    return raw ? (JSON.parse(raw) as IndexEntry) : undefined;
  }

  async put(entry: IndexEntry) {
    const value = JSON.stringify(entry);
    await Promise.all(digestsOf(entry).map(([a, d]) => this.redis.set(this.key(a, d), value)));
  }

  async remove(entry: IndexEntry) {
    await Promise.all(
      digestsOf(entry).map(([a, d]) =>
        this.redis.eval(REMOVE_IF_SAME, 1, this.key(a, d), 'owner', entry.owner),
      ),
    );
  }

  async lookupOwned(sub: string, algorithm: HashAlgorithm, digest: string) {
    const raw = await this.redis.get(this.ownedKey(sub, algorithm, digest));
    return raw ? (JSON.parse(raw) as OwnedEntry) : undefined;
  }

  async putOwned(sub: string, entry: OwnedEntry) {
    const value = JSON.stringify(entry);
    await Promise.all(
      digestsOf(entry).map(([a, d]) => this.redis.set(this.ownedKey(sub, a, d), value)),
    );
  }

  async removeOwned(sub: string, entry: OwnedEntry) {
    await Promise.all(
      digestsOf(entry).map(([a, d]) =>
        this.redis.eval(REMOVE_IF_SAME, 1, this.ownedKey(sub, a, d), 'uploadId', entry.uploadId),
      ),
    );
  }
}
