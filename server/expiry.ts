import type { DataStore } from '@tus/utils';
import type { Logger } from './logger.ts';

export type ExpirySweep = { stop(): void; runOnce(): Promise<number> };

/** Periodically deletes expired unfinished uploads: their state, parts and multipart uploads. */
export function startExpirySweep(
  store: DataStore,
  intervalMs: number,
  logger: Logger,
): ExpirySweep {
  let running: Promise<number> | undefined;
  const runOnce = () => {
    running ??= store
      .deleteExpired()
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
