import { randomUUID } from 'node:crypto';
import type { DataStore } from '@tus/utils';
import type { Redis } from 'ioredis';
import type { Logger } from './logger.ts';

export type ExpirySweep = { stop(): void; runOnce(): Promise<number> };

/** Decides whether this instance runs the sweep now; true when it runs alone. */
export type SweepLeadership = (intervalMs: number) => Promise<boolean>;

export const soleInstance: SweepLeadership = async () => true;

/**
 * With several instances one sweep per interval is enough: the instance that sets the leader
 * key first runs it; the key expires just before the next interval, so leadership moves freely.
 */
export function redisLeadership(redis: Redis, key: string): SweepLeadership {
  const token = randomUUID();
  return async (intervalMs) =>
    (await redis.set(key, token, 'PX', Math.max(1, Math.floor(intervalMs * 0.9)), 'NX')) === 'OK';
}

/** Periodically deletes expired unfinished uploads: their state, parts and multipart uploads. */
export function startExpirySweep(
  store: DataStore,
  intervalMs: number,
  logger: Logger,
  leadership: SweepLeadership = soleInstance,
): ExpirySweep {
  let running: Promise<number> | undefined;
  const runOnce = () => {
    running ??= leadership(intervalMs)
      .then((leader) => (leader ? store.deleteExpired() : 0))
      .then((deleted) => {
        if (deleted > 0) logger.info({ deleted }, 'expired uploads removed');
        return deleted;
      })
      .catch((error: Error) => {
        logger.warn({ err: { message: error.message } }, 'expiry sweep failed');
        return 0;
      })
      .finally(() => {
        running = undefined;
      });
    return running;
  };
  const timer = setInterval(runOnce, intervalMs);
  timer.unref();
  return {
    runOnce,
    stop: () => clearInterval(timer),
  };
}
