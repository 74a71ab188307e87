import { createMD5, createSHA256, type IHasher } from 'hash-wasm';
import type { Redis } from 'ioredis';
import type { ContentRecord } from '../../server/storage/types.ts';

/** The sha256 and md5 of the first `offset` bytes of an upload, resumable by any instance. */
export type SavedHashState = { offset: number; sha256: string; md5: string };

/** Where hash states live between PATCHes: Redis when instances share uploads, else this process. */
export interface HashStateStore {
  get(id: string): Promise<SavedHashState | undefined>;
  set(id: string, state: SavedHashState): Promise<void>;
  delete(id: string): Promise<void>;
}

export class MemoryHashStateStore implements HashStateStore {
  private readonly states = new Map<string, SavedHashState>();
  async get(id: string) {
    return this.states.get(id);
  }
  async set(id: string, state: SavedHashState) {
    this.states.set(id, state);
  }
  async delete(id: string) {
    this.states.delete(id);
  }
}

export class RedisHashStateStore implements HashStateStore {
  constructor(
    private readonly redis: Redis,
    private readonly ttlSeconds: number,
    private readonly prefix = 'tus:hash:',
  ) {}

  // The braces are a Redis Cluster hash tag: all keys of one upload share a slot.
  private key(id: string) {
    return `${this.prefix}{${id}}`;
  }

  async get(id: string) {
    const raw = await this.redis.get(this.key(id));
    return raw ? (JSON.parse(raw) as SavedHashState) : undefined;
  }

  async set(id: string, state: SavedHashState) {
    await this.redis.set(this.key(id), JSON.stringify(state), 'EX', this.ttlSeconds);
  }

  async delete(id: string) {
    await this.redis.del(this.key(id));
  }
}

/** sha256 and md5 computed together, incrementally, with a state that can be saved and resumed. */
export class ContentHasher {
  private constructor(
    private readonly sha256: IHasher,
    private readonly md5: IHasher,
    public offset: number,
  ) {}

  static async fresh(): Promise<ContentHasher> {
    const [sha256, md5] = await Promise.all([createSHA256(), createMD5()]);
    return new ContentHasher(sha256.init(), md5.init(), 0);
  }

  static async resume(state: SavedHashState): Promise<ContentHasher> {
    const hasher = await ContentHasher.fresh();
    hasher.sha256.load(Buffer.from(state.sha256, 'base64'));
    hasher.md5.load(Buffer.from(state.md5, 'base64'));
    hasher.offset = state.offset;
    return hasher;
  }

  update(chunk: Uint8Array): void {
    this.sha256.update(chunk);
    this.md5.update(chunk);
    this.offset += chunk.length;
  }

  save(): SavedHashState {
    return {
      offset: this.offset,
      sha256: Buffer.from(this.sha256.save()).toString('base64'),
      md5: Buffer.from(this.md5.save()).toString('base64'),
    };
  }

  digest(): ContentRecord {
    return { sha256: this.sha256.digest('hex'), md5: this.md5.digest('hex'), size: this.offset };
  }
}
