import type { Server } from 'node:http';
import type { MetadataValue } from '@tus/s3-store';
import { EVENTS, IoRedisKvStore, Server as TusServer, Uid, Upload } from '@tus/server';
import type { Express } from 'express';
import { Redis } from 'ioredis';
import { LinkSigner } from '../auth/links.ts';
import { createTokenVerifier } from '../auth/tokens.ts';
import { checksumVerification } from '../checksum/routes.ts';
import { Concatenation } from '../concat/Concatenation.ts';
import { concatCreation, concatHeaderOf, finalUploadPatch } from '../concat/routes.ts';
import { MemoryContentIndex, RedisContentIndex } from '../dedupe/contentIndex.ts';
import { Dedupe } from '../dedupe/Dedupe.ts';
import { DedupeStore } from '../dedupe/DedupeStore.ts';
import { InProgressHashes } from '../dedupe/hashing.ts';
import { MemoryProofBudget, RedisProofBudget } from '../dedupe/proofBudget.ts';
import { ProofFloor } from '../dedupe/proofTiming.ts';
import { dedupeCreation, dedupeLinkedPatch, dedupeProof } from '../dedupe/routes.ts';
import { DownloadHandler } from '../download/DownloadHandler.ts';
import type { DownloadRedirect } from '../download/redirect.ts';
import { entryOf } from '../errors/answer.ts';
import { ERRORS, jsonError, outageOf } from '../errors/catalogue.ts';
import { HttpHookSender } from '../hooks/http/HttpHookSender.ts';
import { UploadLifecycle } from '../hooks/lifecycle.ts';
import { postReceive, preCreate, preTerminate, stoppedUpload } from '../hooks/routes.ts';
import { UploadHooks } from '../hooks/UploadHooks.ts';
import { HOOK_TYPES } from '../hooks/wire.ts';
import { DrainableLocker } from '../lockers/DrainableLocker.ts';
import { InProcessLocker } from '../lockers/InProcessLocker.ts';
import { RedisLocker } from '../lockers/RedisLocker.ts';
import { listenForMetrics, type MetricsExposure, metricsRoute } from '../metrics/exposure.ts';
import { Metrics, S3_OPERATIONS } from '../metrics/Metrics.ts';
import { contextOf } from '../request/context.ts';
import { FileStorage } from '../storage/file/FileStorage.ts';
import { S3Storage } from '../storage/s3/S3Storage.ts';
import type { UploadStorage } from '../storage/types.ts';
import { uploadPageRoutes } from '../web/routes.ts';
import { accessControl } from './access.ts';
import { createApp } from './app.ts';
import type { Config } from './config.ts';
import { ALLOWED_REQUEST_HEADERS, corsPolicy } from './cors.ts';
import { type ExpirySweep, redisLeadership, soleInstance, startExpirySweep } from './expiry.ts';
import { createHooks } from './lifecycleCallbacks.ts';
import { createLinkRoute } from './links.ts';
import type { Logger } from './logger.ts';
import { openUploadLimit } from './openUploads.ts';
import { createUrlBuilder } from './publicUrl.ts';
import { creationRateLimit, identityOf } from './rateLimit.ts';
import { createReadinessCheck } from './readiness.ts';
import { uploadIdIn } from './requests.ts';

/** How long a request asked to give up its lock keeps reading before it persists and unlocks. */
const LOCK_DRAIN_MS = 500;

export type Composition = {
  app: Express;
  storage: UploadStorage;
  locker: DrainableLocker;
  redis?: Redis;
  tus: TusServer;
  dedupe: Dedupe;
  /** One line that says what this instance runs on. */
  summary: string;
  /** Connects Redis (a failure only warns: readiness reports it) and starts background work. */
  start(): Promise<void>;
  /**
   * Starts the metrics' own listener, when there is one; resolves with its address. Rejects with
   * the listen error (EADDRINUSE …).
   */
  serveMetrics(): Promise<{ host: string; port: number } | undefined>;
  close(): Promise<void>;
};

function createStorage(
  config: Config,
  redis: Redis | undefined,
  observe: ((operation: string, seconds: number) => void) | undefined,
): UploadStorage {
  const expirySeconds = config.uploadExpirySeconds;
  if (!config.s3) return new FileStorage({ directory: config.dataDir, expirySeconds });
  // With Redis every instance sees the same upload metadata; in-process it would go stale.
  const metadataCache = redis ? new IoRedisKvStore<MetadataValue>(redis, 'tus:s3meta:') : undefined;
  return new S3Storage({ ...config.s3, expirySeconds, metadataCache, observe });
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

/**
 * Presigned download redirects, where the storage can make URLs clients fetch from directly;
 * the embedded store serves every download itself, with one warning that the setting is ignored.
 */
function downloadRedirect(
  config: Config,
  storage: UploadStorage,
  logger: Logger,
  onRedirect: (() => void) | undefined,
): DownloadRedirect | undefined {
  if (!config.downloadRedirect) return undefined;
  const presign = storage.presignedUrlOf?.bind(storage);
  if (!presign) {
    logger.warn(
      'DOWNLOAD_REDIRECT=presigned is ignored: the embedded file store has no URLs of its own (set S3_ENDPOINT)',
    );
    return undefined;
  }
  return {
    urlOf: presign,
    expiresInSeconds: config.downloadRedirect.ttlSeconds,
    onRedirect,
  };
}

/** Where /metrics is, for the start-up line. */
function metricsSummary(exposure: MetricsExposure | undefined): string {
  if (!exposure) return 'off';
  const where = [
    exposure.listener && `own listener on ${exposure.listener.host}`,
    exposure.token && 'public port with METRICS_TOKEN',
  ].filter(Boolean);
  return `${where.join(' and ')}${exposure.token ? '' : ' (no token)'}`;
}

/** config → storage → locker → tus server → express app, decided here and only here. */
export function compose(config: Config, logger: Logger): Composition {
  const metrics = config.metrics
    ? new Metrics({ hookTypes: HOOK_TYPES, s3Operations: config.s3 ? S3_OPERATIONS : [] })
    : undefined;
  // What shares one Redis but not one storage must not share keys: they name the bucket.
  const namespace = config.s3?.bucket ?? 'file-store';
  const redis = config.redisUrl ? createRedis(config.redisUrl, logger) : undefined;
  const storage = createStorage(config, redis, metrics?.s3Request);
  // With Redis, locks hold across instances; without it, one instance is all there can be.
  const redisLocker = redis
    ? new RedisLocker({
        redis,
        ttlMs: config.lockTtlSeconds * 1000,
        // Long enough to wait out a crashed holder's lease, not much longer.
        acquireTimeoutMs: (config.lockTtlSeconds + 5) * 1000,
      })
    : undefined;
  const locker = new DrainableLocker(redisLocker ?? new InProcessLocker(), metrics?.locks);

  const dedupe = new Dedupe({
    storage,
    index: redis ? new RedisContentIndex(redis, namespace) : new MemoryContentIndex(),
    hashes: new InProgressHashes(),
    locker,
    logger,
    // Shared by every instance when they share Redis, like the creation rate limit.
    proofBudget: redis
      ? new RedisProofBudget(redis, namespace, config.dedupeProofBudget)
      : new MemoryProofBudget(config.dedupeProofBudget),
    counters: metrics?.dedupe,
  });
  const urlFor = createUrlBuilder(config);
  const verify = createTokenVerifier(config.auth);
  const { signer: links, stable: stableLinks } = LinkSigner.fromSecrets(
    config.linkSigningKey,
    config.auth.secret,
  );
  // Every creation, finish and termination, whichever route did it (post-* hooks, metrics).
  const lifecycle = new UploadLifecycle();
  if (metrics) lifecycle.listen(metrics.lifecycle);
  const routeParts = {
    dedupe,
    storage,
    logger,
    maxSize: config.maxUploadSize,
    urlFor,
    lifecycle,
    proofs: config.dedupeProof,
    identityOf,
    proofFloor: new ProofFloor(config.dedupeProofFloorMs),
  };

  // Termination is reference-aware even with dedupe off, so shared bytes are never lost.
  const datastore = new DedupeStore(storage.datastore, dedupe, config.dedupe);
  // Partial uploads are tus's to create: @tus/server lets Upload-Concat through only when the
  // store lists the extension, under its (misspelled) name; final uploads are answered before
  // tus (concat/). Checksums, in a header or a trailer, are verified before tus (checksum/).
  datastore.extensions = [
    ...datastore.extensions,
    'concatentation',
    'checksum',
    'checksum-trailer',
  ];
  const uploadHooks = config.hooks
    ? new UploadHooks({
        sender: new HttpHookSender(config.hooks),
        events: config.hooks.events,
        storage,
        logger,
        counters: metrics?.hooks,
      })
    : undefined;
  if (uploadHooks) {
    // post-* hooks: sent by the instance that did the work, in the background.
    lifecycle.listen({
      created: (req, upload) =>
        uploadHooks.notify('post-create', req, uploadHooks.fileInfoOf(upload)),
      finished: (req, upload) =>
        uploadHooks.notify('post-finish', req, uploadHooks.fileInfoOf(upload)),
      terminated: (req, upload) =>
        uploadHooks.notify('post-terminate', req, uploadHooks.fileInfoOf(upload, false)),
    });
  }
  const hooks = createHooks(config.dedupe ? dedupe : undefined, uploadHooks);
  const tus = new TusServer({
    path: '/files',
    datastore,
    // A pre-create hook may choose the id (ChangeFileInfo.ID); otherwise tus's own.
    namingFunction: (req) => {
      const context = contextOf(req);
      context.createdId = context.hookChanges?.id ?? Uid.rand();
      return context.createdId;
    },
    locker,
    lockDrainTimeout: LOCK_DRAIN_MS,
    maxSize: config.maxUploadSize > 0 ? config.maxUploadSize : undefined,
    allowedHeaders: ALLOWED_REQUEST_HEADERS,
    generateUrl: (req, { path, id }) => urlFor((name) => req.headers.get(name), `${path}/${id}`),
    ...hooks,
    onResponseError(req, error) {
      const uploadId = uploadIdIn(req.url);
      const known = entryOf(error);
      if (known === ERRORS.UPLOAD_LOCKED) return known;
      const outage = outageOf(error);
      if (outage) logger.error({ err: error, uploadId }, outage.body.trimEnd());
      else if (!('status_code' in error))
        logger.error({ err: error, uploadId }, 'tus request failed');
      // What went wrong stays in the log: the client learns only that it was not its fault.
      const entry = known ?? ('status_code' in error ? error : ERRORS.INTERNAL_ERROR);
      if (entry.status_code < 500) return undefined;
      // Server-side failures answer in JSON, like every other route's errors.
      return { status_code: entry.status_code, body: JSON.stringify(jsonError(entry)) };
    },
  });

  tus.on(EVENTS.POST_CREATE, (req: object, upload: Upload) => lifecycle.created(req, upload));
  tus.on(EVENTS.POST_FINISH, (req: object, _res: unknown, upload: Upload) =>
    lifecycle.finished(req, upload),
  );
  tus.on(EVENTS.POST_TERMINATE, (req: object, _res: unknown, id: string) => {
    const upload = contextOf(req).terminating;
    lifecycle.terminated(req, upload ?? new Upload({ id, offset: 0 }));
  });

  const hookParts = uploadHooks && {
    hooks: uploadHooks,
    storage,
    remove: (id: string) => datastore.remove(id),
    lifecycle,
    logger,
  };
  const concatParts = {
    concatenation: new Concatenation({
      storage,
      remove: (id) => datastore.remove(id),
      locker,
      hooks,
      lifecycle,
      preCreate: uploadHooks && ((req, upload) => uploadHooks.preCreate(req, upload)),
      hashSources: config.dedupe
        ? (upload, sources) => dedupe.hashSources(upload, sources)
        : undefined,
      maxSize: config.maxUploadSize,
      logger,
    }),
    storage,
    logger,
    urlFor,
  };
  const redirect = downloadRedirect(config, storage, logger, metrics?.http.downloadRedirected);
  const app = createApp({
    tus,
    logger,
    readiness: createReadinessCheck(storage, redis),
    download: new DownloadHandler(storage, logger, metrics?.http.bytesServed, redirect),
    beforeTus: config.dedupe
      ? { creation: dedupeCreation(routeParts), upload: dedupeLinkedPatch(routeParts) }
      : undefined,
    uploadPage: uploadPageRoutes(logger),
    access: accessControl({ verify, links, storage, logger }),
    locker,
    cors: corsPolicy(config.corsOrigins),
    openUploads: openUploadLimit(config.maxOpenUploads),
    beforeCreation: creationRateLimit({
      perMinute: config.createRateLimit,
      redis,
      keyPrefix: `tus:ratelimit:${namespace}:create`,
      logger,
    }),
    links: createLinkRoute({ links, storage, urlFor, logger }),
    proof: config.dedupeProof ? dedupeProof(routeParts) : undefined,
    trustProxy: config.trustProxy,
    concat: {
      creation: concatCreation(concatParts),
      patch: finalUploadPatch(concatParts),
      headerOf: concatHeaderOf(urlFor),
    },
    checksum: checksumVerification({
      storage,
      maxSize: config.maxUploadSize,
      maxChunkSize: config.checksumMaxChunkSize,
      logger,
    }),
    metrics: metrics && {
      // The public port serves /metrics only to the token's holder.
      route: config.metrics?.token
        ? metricsRoute(metrics.registry, config.metrics.token)
        : undefined,
      request: metrics.http.request,
      bytesReceived: metrics.http.bytesReceived,
      uploading: metrics.http.uploading,
    },
    hooks: hookParts && {
      preCreate: preCreate(hookParts),
      preTerminate: preTerminate(hookParts),
      postReceive: postReceive(hookParts),
      stopped: stoppedUpload(hookParts),
    },
  });
  let sweep: ExpirySweep | undefined;

  const summary = [
    `storage: ${storage.kind === 'file' ? 'embedded default, ' : ''}${storage.description}`,
    `locks: ${redisLocker ? 'redis' : 'in-process'}`,
    `redis: ${redis ? 'configured' : 'not configured'}`,
    `dedupe: ${config.dedupe ? `on (index ${redis ? 'in redis' : 'in process, rebuilt from storage at start'})` : 'off'}`,
    `dedupe proofs across owners: ${config.dedupeProof ? `on (${config.dedupeProofBudget} per identity per 30 days)` : 'off'}`,
    `max upload size: ${config.maxUploadSize || 'unlimited'}`,
    `unfinished uploads expire after ${config.uploadExpirySeconds}s`,
    `auth: ${config.auth.secret ? 'HS256 tokens' : config.auth.jwksUrl ? 'tokens from JWKS' : 'off (anonymous)'}`,
    `download links: ${stableLinks ? 'signed with a stable key' : 'signed with a per-process key (set LINK_SIGNING_KEY for several instances)'}`,
    `CORS origins: ${config.corsOrigins === '*' ? '*' : config.corsOrigins.join(' ')}`,
    `creations per minute per owner: ${config.createRateLimit}`,
    `open uploads in this process: ${config.maxOpenUploads.perClient || 'unlimited'} per client, ${config.maxOpenUploads.total || 'unlimited'} in total`,
    `metrics: ${metricsSummary(config.metrics)}`,
    ...(redirect
      ? [`downloads: 307 to presigned S3 URLs valid ${redirect.expiresInSeconds}s`]
      : []),
  ].join('; ');
  let metricsServer: Server | undefined;

  return {
    app,
    storage,
    locker,
    redis,
    tus,
    dedupe,
    summary,
    async start() {
      try {
        await redis?.connect();
        await redisLocker?.listen();
      } catch (error) {
        logger.warn({ err: { message: (error as Error).message } }, 'redis is not reachable yet');
      }
      // Without Redis the index lives in this process: rebuild it from the references in storage.
      if (config.dedupe && !redis) {
        dedupe.reindex().then(
          (entries) => logger.info({ entries }, 'dedupe index rebuilt from storage'),
          (error: Error) =>
            logger.warn({ err: { message: error.message } }, 'dedupe reindex failed'),
        );
      }
      if (config.uploadExpirySeconds > 0) {
        sweep = startExpirySweep(
          storage.datastore,
          config.expirySweepSeconds * 1000,
          logger,
          redis ? redisLeadership(redis, `tus:sweep:${namespace}:leader`) : soleInstance,
        );
      }
    },
    async serveMetrics() {
      const listener = config.metrics?.listener;
      if (!metrics || !listener) return undefined;
      const served = await listenForMetrics(metrics.registry, listener, config.metrics?.token);
      metricsServer = served.server;
      return { host: listener.host, port: served.port };
    },
    async close() {
      sweep?.stop();
      metricsServer?.close();
      // After the drain (no lock held any more), before Redis goes.
      await redisLocker?.close();
      await storage.close();
      if (redis) await redis.quit().catch(() => redis.disconnect());
    },
  };
}
