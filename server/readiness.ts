import type { Redis } from 'ioredis';
import type { UploadStorage } from '../storage/types.ts';

/** Resolves to the list of reasons the server cannot serve; empty when it can. */
export type ReadinessCheck = () => Promise<string[]>;

const TIMEOUT_MS = 2000;

async function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} did not answer within ${TIMEOUT_MS} ms`)),
      TIMEOUT_MS,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function createReadinessCheck(storage: UploadStorage, redis?: Redis): ReadinessCheck {
  return async () => {
    const checks: Array<Promise<string | undefined>> = [
      within(storage.check(), 'storage').then(
        () => undefined,
        (error: Error) => `storage: ${error.message}`,
      ),
    ];
    if (redis) {
      checks.push(
        within(redis.ping(), 'redis').then(
          () => undefined,
          (error: Error) => `redis: ${error.message}`,
        ),
      );
    }
    return (await Promise.all(checks)).filter((reason): reason is string => reason !== undefined);
  };
}
