import type { Redis } from 'ioredis';
import { ServiceUnavailable } from '../storage/types.ts';

/**
 * How many proofs of ownership one identity (a token's `sub`, or an anonymous client's address
 * key) may have verified per window. Each proof tells whether someone stored one candidate
 * file, so the budget is what bounds guessing a low-entropy file by trying candidates
 * (confirmation-of-file). Windows are fixed: the first proof opens one, it closes `windowMs`
 * later.
 */
export interface ProofBudget {
  /** Whether the identity has a proof left; nothing is drawn. Creations offer challenges only then. */
  hasLeft(identity: string): Promise<boolean>;
  /** Draws one proof; false when the identity's budget was already spent (the proof is refused). */
  draw(identity: string): Promise<boolean>;
}

const PROOF_WINDOW_MS = 30 * 24 * 3600 * 1000;

/** One instance: counts in the process (lost at a restart, which only gives budgets back early). */
export class MemoryProofBudget implements ProofBudget {
  private readonly windows = new Map<string, { count: number; endsAt: number }>();

  constructor(
    private readonly perWindow: number,
    private readonly windowMs = PROOF_WINDOW_MS,
    private readonly now: () => number = Date.now,
  ) {}

  private current(identity: string) {
    const window = this.windows.get(identity);
    if (window && window.endsAt > this.now()) return window;
    this.windows.delete(identity);
    return undefined;
  }

  async hasLeft(identity: string) {
    return (this.current(identity)?.count ?? 0) < this.perWindow;
  }

  async draw(identity: string) {
    const window = this.current(identity) ?? { count: 0, endsAt: this.now() + this.windowMs };
    window.count += 1;
    this.windows.set(identity, window);
    if (this.windows.size % 1024 === 0) this.prune();
    return window.count <= this.perWindow;
  }

  /** Closed windows go, so the map holds only identities that proved within the window. */
  private prune() {
    const now = this.now();
    for (const [identity, { endsAt }] of this.windows) {
      if (endsAt <= now) this.windows.delete(identity);
    }
  }
}

// INCR and the window's expiry in one step: a counter can never be left without one.
const DRAW = `local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`;

/**
 * Every instance shares the budget: one counter per identity,
 * `tus:dedupe:<namespace>:proofs:{<base64url identity>}`, expiring with its window.
 */
export class RedisProofBudget implements ProofBudget {
  constructor(
    private readonly redis: Redis,
    private readonly namespace: string,
    private readonly perWindow: number,
    private readonly windowMs = PROOF_WINDOW_MS,
  ) {}

  private keyOf(identity: string) {
    return `tus:dedupe:${this.namespace}:proofs:{${Buffer.from(identity).toString('base64url')}}`;
  }

  async hasLeft(identity: string) {
    return Number((await this.redis.get(this.keyOf(identity))) ?? 0) < this.perWindow;
  }

  async draw(identity: string) {
    // Redis away: the proof answers 503 (retry later) rather than going uncounted.
    const count = await this.redis
      .eval(DRAW, 1, this.keyOf(identity), String(this.windowMs))
      .catch((error: Error) => {
        throw new ServiceUnavailable('redis', error);
      });
    return Number(count) <= this.perWindow;
  }
}
