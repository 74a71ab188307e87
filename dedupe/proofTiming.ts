/**
 * A proof against stored content reads all of it; a proof against content nobody stored reads
 * nothing. So that the time of the answer does not tell them apart, every verified proof is
 * answered no earlier than a floor after its request arrived: a configured minimum plus the time
 * reading the claimed length takes at FLOOR_BYTES_PER_MS. Both paths await the same deadline;
 * only work that overruns it shows (and is logged, so the floor can be raised).
 */

/** 64 MiB/s: well below what MinIO, a local disk and HMAC-SHA256 sustain together. */
export const FLOOR_BYTES_PER_MS = (64 * 1024 * 1024) / 1000;

/** The per-byte part's ceiling: content up to 3.75 GiB is equalised (see README, Dedupe). */
export const MAX_FLOOR_MS = 60_000;

export type Clock = { now(): number; sleep(ms: number): Promise<void> };

const systemClock: Clock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

export class ProofFloor {
  constructor(
    private readonly minimumMs: number,
    private readonly clock: Clock = systemClock,
  ) {}

  /** The moment a request arrived, in the clock's time. */
  arrived(): number {
    return this.clock.now();
  }

  /**
   * When the answer to a proof over `size` bytes that arrived at `arrivedAt` may go. The per-byte
   * part stops at MAX_FLOOR_MS: a claimed length of 2^53 would otherwise hold the answer (and its
   * socket) for years.
   */
  deadlineOf(arrivedAt: number, size: number): number {
    const perByte = Math.min(Math.ceil(size / FLOOR_BYTES_PER_MS), MAX_FLOOR_MS);
    return arrivedAt + this.minimumMs + perByte;
  }

  /** Waits until the deadline; true when it had passed already (the work overran the floor). */
  async wait(arrivedAt: number, size: number): Promise<boolean> {
    const left = this.deadlineOf(arrivedAt, size) - this.clock.now();
    if (left <= 0) return true;
    await this.clock.sleep(left);
    return false;
  }
}
