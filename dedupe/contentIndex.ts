import type { Redis } from 'ioredis';
import type { ContentRecord } from '../storage/types.ts';
import type { HashAlgorithm } from './claims.ts';

/** A verified piece of content: its digests, its size and the key its bytes live under. */
export type IndexEntry = ContentRecord & { owner: string };

/**
 * Maps verified digests to stored content. Only server-computed digests enter it. The scope
 * ("global" today) is part of every key so that per-tenant indexes can be added later.
 */
export interface ContentIndex {
  lookup(algorithm: HashAlgorithm, digest: string): Promise<IndexEntry | undefined>;
  put(entry: IndexEntry): Promise<void>;
  /** Removes the entry's keys, but only where they still point at the same owner. */
  remove(entry: IndexEntry): Promise<void>;
}

export class MemoryContentIndex implements ContentIndex {
  private readonly entries = new Map<string, IndexEntry>();

  async lookup(algorithm: HashAlgorithm, digest: string) {
    return this.entries.get(`${algorithm}:${digest}`);
  }

  async put(entry: IndexEntry) {
    this.entries.set(`sha256:${entry.sha256}`, entry);
    this.entries.set(`md5:${entry.md5}`, entry);
  }

  async remove(entry: IndexEntry) {
    for (const key of [`sha256:${entry.sha256}`, `md5:${entry.md5}`]) {
      if (this.entries.get(key)?.owner === entry.owner) this.entries.delete(key);
    }
  }
}

// Deletes KEYS[1] only while it still names the owner ARGV[1]: a newer entry is never removed.
const REMOVE_IF_OWNER = `
local value = redis.call('GET', KEYS[1])
if value and cjson.decode(value).owner == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

export class RedisContentIndex implements ContentIndex {
  constructor(
    private readonly redis: Redis,
    private readonly scope = 'global',
  ) {}

  // One key per digest, each its own Redis Cluster slot; no command spans two keys.
  private key(algorithm: HashAlgorithm, digest: string) {
    return `tus:dedupe:${this.scope}:{${algorithm}:${digest}}`;
  }

  async lookup(algorithm: HashAlgorithm, digest: string) {
    const raw = await this.redis.get(this.key(algorithm, digest));
    return raw ? (JSON.parse(raw) as IndexEntry) : undefined;
  }

  async put(entry: IndexEntry) {
    const value = JSON.stringify(entry);
    await Promise.all([
      this.redis.set(this.key('sha256', entry.sha256), value),
      this.redis.set(this.key('md5', entry.md5), value),
    ]);
  }

  async remove(entry: IndexEntry) {
    await Promise.all(
      (['sha256', 'md5'] as const).map((algorithm) =>
        this.redis.eval(REMOVE_IF_OWNER, 1, this.key(algorithm, entry[algorithm]), entry.owner),
      ),
    );
  }
}
