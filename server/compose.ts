import { MemoryLocker, Server as TusServer } from '@tus/server';
import type { Express } from 'express';
import { Redis } from 'ioredis';
import { createHooks } from '../hooks/index.ts';
import { createApp } from './app.ts';
import type { Config } from './config.ts';
import { type ExpirySweep, startExpirySweep } from './expiry.ts';
import { DrainableLocker } from './lockers/DrainableLocker.ts';
import type { Logger } from './logger.ts';
import { createReadinessCheck } from './readiness.ts';
import { FileStorage } from './storage/filestorage.ts';
import { S3Storage } from './storage/s3storage.ts';
import type { UploadStorage } from './storage/types.ts';

/** How long a request asked to give up its lock keeps reading before it persists and unlocks. */
const LOCK_DRAIN_MS = 500;

export type Composition = {
  app: Express;
  storage: UploadStorage;
  locker: DrainableLocker;
  redis?: Redis;
  tus: TusServer;
  /** One line that says what this instance runs on. */
  summary: string;
  startBackground(): void;
  close(): Promise<void>;
};

export function createStorage(config: Config): UploadStorage {
  const expirySeconds = config.uploadExpirySeconds;
  return config.s3
    ? new S3Storage({ ...config.s3, expirySeconds })
    : new FileStorage({ directory: config.dataDir, expirySeconds });
}

function createRedis(url: string, logger: Logger): Redis {
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 2000,
    maxRetriesPerRequest: 1,
    // Fail fast while disconnected instead of queueing commands without bound.
    enableOfflineQueue: false,
  });
  redis.on('error', (error) => logger.warn({ err: { message: error.message } }, 'redis error'));
  return redis;
}

/** config → storage → locker → tus server → express app, decided here and only here. */
export function compose(config: Config, logger: Logger): Composition {
  const storage = createStorage(config);
  const redis = config.redisUrl ? createRedis(config.redisUrl, logger) : undefined;
  const locker = new DrainableLocker(new MemoryLocker());

  const tus = new TusServer({
    path: '/files',
    datastore: storage.datastore,
    locker,
    lockDrainTimeout: LOCK_DRAIN_MS,
    maxSize: config.maxUploadSize > 0 ? config.maxUploadSize : undefined,
    ...createHooks(),
    onResponseError(_req, error) {
      if ('status_code' in error) return undefined;
      logger.error({ err: error }, 'tus request failed');
      return undefined;
    },
  });

  const app = createApp({ tus, logger, readiness: createReadinessCheck(storage, redis) });
  let sweep: ExpirySweep | undefined;

  const summary = [
    `storage: ${storage.kind === 'file' ? 'embedded default, ' : ''}${storage.description}`,
    `locks: in-process`,
    `redis: ${redis ? 'configured' : 'not configured'}`,
    `max upload size: ${config.maxUploadSize || 'unlimited'}`,
    `unfinished uploads expire after ${config.uploadExpirySeconds}s`,
  ].join('; ');

  return {
    app,
    storage,
    locker,
    redis,
    tus,
    summary,
    startBackground() {
      redis?.connect().catch((error: Error) => {
        logger.warn({ err: { message: error.message } }, 'redis is not reachable yet');
      });
      if (config.uploadExpirySeconds > 0) {
        sweep = startExpirySweep(storage.datastore, config.expirySweepSeconds * 1000, logger);
      }
    },
    async close() {
      sweep?.stop();
      await storage.close();
      if (redis) await redis.quit().catch(() => redis.disconnect());
    },
  };
}
