import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { Server as TusServer } from '@tus/server';
import type { Locker } from '@tus/utils';
import express, {
  type Express,
  type NextFunction,
  type Request,
  type RequestHandler,
  type Response,
} from 'express';
import { pinoHttp } from 'pino-http';
import { NodeRequest, sendNodeResponse } from 'srvx/node';
import { CHECKSUM_ALGORITHMS } from '../checksum/uploadChecksum.ts';
import type { DownloadHandler } from '../download/DownloadHandler.ts';
import { answerError, HttpError } from '../errors/answer.ts';
import { ERRORS, retryHeaders } from '../errors/catalogue.ts';
import { beginRequest, contextOf, declaredLength } from '../request/context.ts';
import { publicMetadataHeader } from '../request/metadata.ts';
import { preflight } from './cors.ts';
import type { Logger } from './logger.ts';
import { decideMethod, refuseBadOverride } from './methodOverride.ts';
import type { ReadinessCheck } from './readiness.ts';
import { answerFormatOf, bodyStreamOf, isDownloadRequest, uploadIdIn } from './requests.ts';
import { tusGuards } from './tusGuards.ts';
import { uploadLock } from './uploadLock.ts';
import { completeFromRecord, finishedUploadPatch } from './uploadRecord.ts';

export type AppParts = {
  tus: TusServer;
  logger: Logger;
  readiness: ReadinessCheck;
  download: DownloadHandler;
  /** Middleware that may answer a creation (or a PATCH) before tus does: dedupe hits. */
  beforeTus?: { creation: RequestHandler; upload: RequestHandler };
  /** Who may do what: authentication (token or signed link) and upload ownership. */
  access: { authenticate: RequestHandler; ownership: RequestHandler };
  /** The locker tus uses: a PATCH, tus HEAD or DELETE takes its upload's lock at the edge. */
  locker: Locker;
  /** CORS for every route. */
  cors: RequestHandler;
  /** Runs before a PATCH or a creation with a body is read: the caps on open uploads. */
  openUploads: RequestHandler;
  /** Runs before a creation (and a dedupe proof): the per-owner creation rate limit. */
  beforeCreation: RequestHandler;
  /** POST /files/:id/links and POST /files/:id/proof (the latter only with dedupe on). */
  links: RequestHandler;
  proof?: RequestHandler;
  /** Whether the address of the client is the one the proxy in front forwards. */
  trustProxy: boolean;
  /** The upload page at / and its assets. */
  uploadPage?: RequestHandler;
  /**
   * The concatenation extension: creations with Upload-Concat (final ones answered there),
   * the 403 for a PATCH of a final upload, and the Upload-Concat of a tus HEAD answer.
   */
  concat: {
    creation: RequestHandler;
    patch: RequestHandler;
    headerOf(req: Request, metadataHeader: string): string | undefined;
  };
  /** The checksum extension: a body with Upload-Checksum is verified before tus sees it. */
  checksum: RequestHandler;
  /** Prometheus metrics; undefined with METRICS=off. */
  metrics?: AppMetrics;
  /** tusd-compatible hooks that act on requests (pre-create, pre-terminate, post-receive). */
  hooks?: {
    preCreate: RequestHandler;
    preTerminate: RequestHandler;
    postReceive: RequestHandler;
    /** Answers a request whose upload post-receive stopped; false when it was not stopped. */
    stopped(req: Request, res: Response): Promise<boolean>;
  };
};

/** Prometheus metrics: GET /metrics, and what the HTTP layer measures. */
type AppMetrics = {
  /** GET /metrics on the public port: only with METRICS_TOKEN (metrics have their own listener). */
  route?: RequestHandler;
  request(method: string, route: string, status: number, seconds: number): void;
  bytesReceived(bytes: number): void;
  uploading(delta: 1 | -1): void;
};

/** The route a request is counted under: a template, never an upload id (bounded labels). */
export function routeLabel(path: string): string {
  if (/^\/files\/?$/.test(path)) return '/files';
  const sub = /^\/files\/[^/]+(\/links|\/proof)?\/?$/.exec(path);
  if (sub) return `/files/:id${sub[1] ?? ''}`;
  if (['/healthz', '/readyz', '/metrics'].includes(path)) return path;
  return 'other';
}

/** Tus-Checksum-Algorithm of the checksum extension. */
const CHECKSUM_ALGORITHM_HEADER = CHECKSUM_ALGORITHMS.join(',');

/** What tus answers, completed where @tus/server leaves something out. */
function completeTusResponse(
  req: Request,
  response: globalThis.Response,
  concatHeaderOf: AppParts['concat']['headerOf'],
): void {
  const { headers, status } = response;
  const { method } = req;
  const metadata = headers.get('upload-metadata');
  if (metadata !== null) {
    // The Server MUST include the Upload-Concat header in HEAD responses of partial and final
    // uploads; it is kept with the server's own metadata.
    const concat = concatHeaderOf(req, metadata);
    if (concat) headers.set('Upload-Concat', concat);
    // The server's own metadata (owner, challenge, concatenation) stays with the server. The
    // header MUST consist of one or more key-value pairs: with none left it is omitted (as tusd).
    const visible = publicMetadataHeader(metadata);
    if (visible) headers.set('Upload-Metadata', visible);
    else headers.delete('Upload-Metadata');
  }
  const extensions = headers.get('tus-extension');
  if (extensions !== null) {
    // @tus/server looks for concatenation under a misspelled name; clients read it spelled right.
    headers.set('Tus-Extension', extensions.replace('concatentation', 'concatenation'));
    headers.set('Tus-Checksum-Algorithm', CHECKSUM_ALGORITHM_HEADER);
  }
  const { challenge, hookHeaders } = contextOf(req);
  // Headers the pre-create hook asked for (tusd merges its HTTPResponse into the answer).
  for (const [name, value] of Object.entries(hookHeaders ?? {})) headers.set(name, value);
  if (method === 'POST' && status === 201 && challenge) {
    headers.set('Upload-Dedupe-Challenge', challenge);
  }
  // tus-js-client with uploadDataDuringCreation reads Upload-Offset from every creation answer,
  // also when it sent no body (deferred length): the offset of a new upload is 0.
  if (method === 'POST' && status === 201 && !headers.has('upload-offset')) {
    headers.set('Upload-Offset', '0');
  }
  // Busy (423) and unavailable (503) are retryable; say when to come back.
  for (const [name, value] of Object.entries(retryHeaders(status))) {
    if (!headers.has(name)) headers.set(name, value);
  }
  if (status >= 500) headers.set('Content-Type', 'application/json; charset=utf-8');
}

/**
 * What an error of Express's own refuses: a JSON body (links, proofs) express.json() could not
 * take says why (not JSON, its strict mode refusing a bare null too → 400; over the limit →
 * 413); any other 4xx (a path it cannot decode) names no upload. Undefined for a failure.
 */
function expressRefusal(error: Error & { status?: number; type?: string }): HttpError | undefined {
  if (error.type === 'entity.parse.failed') return HttpError.of(ERRORS.INVALID_JSON_BODY);
  if (error.type === 'entity.too.large') return HttpError.of(ERRORS.JSON_BODY_TOO_LARGE);
  const status = error.status ?? 500;
  return status >= 400 && status < 500 ? HttpError.of(ERRORS.NOT_FOUND) : undefined;
}

/** Bytes a PATCH (or a creation with upload) added to its upload, from the offsets. */
function acceptedBytes(req: Request, response: globalThis.Response): number {
  const after = Number(response.headers.get('upload-offset'));
  if (!Number.isSafeInteger(after)) return 0;
  if (req.method === 'POST') return response.status === 201 ? after : 0;
  const before = Number(req.get('upload-offset'));
  return response.status === 204 && Number.isSafeInteger(before) ? Math.max(0, after - before) : 0;
}

function uploadIdOf(req: IncomingMessage): string | undefined {
  return uploadIdIn(req.url) ?? contextOf(req).createdId;
}

/** The HTTP surface: health, readiness and the tus routes. */
export function createApp({
  tus,
  logger,
  readiness,
  beforeTus,
  download,
  uploadPage,
  access,
  locker,
  cors,
  openUploads,
  beforeCreation,
  links,
  proof,
  trustProxy,
  concat,
  checksum,
  hooks,
  metrics,
}: AppParts): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // One proxy hop is believed for the client address (rate limits) when TRUST_PROXY is on.
  app.set('trust proxy', trustProxy ? 1 : false);
  // The request's context (its id echoed back), then what the request is (its method after
  // X-HTTP-Method-Override), before any layer acts on it.
  app.use(beginRequest);
  app.use(decideMethod);
  app.use((req, _res, next) => {
    contextOf(req).answers = answerFormatOf(req);
    next();
  });
  app.use(cors);
  if (metrics) {
    app.use((req, res, next) => {
      const started = performance.now();
      res.once('close', () => {
        const seconds = (performance.now() - started) / 1000;
        metrics.request(req.method, routeLabel(req.path), res.statusCode, seconds);
      });
      next();
    });
  }

  app.use(
    pinoHttp({
      logger,
      quietReqLogger: true,
      wrapSerializers: false,
      serializers: {
        req: (req: IncomingMessage) => ({ method: req.method, path: req.url?.split('?')[0] }),
        res: (res: ServerResponse) => ({ status: res.statusCode }),
      },
      // The request id is on every line the request logs (server/logger.ts); not twice here.
      genReqId: (req) => contextOf(req).requestId,
      customAttributeKeys: { reqId: 'requestId' },
      customProps: (req) => ({ uploadId: uploadIdOf(req) }),
      customSuccessMessage: (req, res, ms) =>
        `${req.method} ${req.url?.split('?')[0]} ${res.statusCode} ${Math.round(ms)}ms`,
      customErrorMessage: (req, res) =>
        `${req.method} ${req.url?.split('?')[0]} ${res.statusCode} failed`,
      customLogLevel: (_req, res, err) =>
        err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info',
    }),
  );

  if (metrics?.route) app.get('/metrics', metrics.route);

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  app.get('/readyz', async (_req, res) => {
    const failures = await readiness();
    if (failures.length === 0) {
      res.json({ status: 'ready' });
    } else {
      res.status(503).json({ status: 'unavailable', reasons: failures });
    }
  });

  if (uploadPage) app.use(uploadPage);

  // Who may do what, before anything under /files is read or written.
  app.all(['/files', '/files/:id', '/files/:id/links', '/files/:id/proof'], access.authenticate);
  app.use(refuseBadOverride);
  // Whose upload it is; a request that takes its upload's lock is checked under it (below).
  app.all(['/files/:id', '/files/:id/links', '/files/:id/proof'], access.ownership);
  // A tus request the protocol refuses (Tus-Resumable, malformed headers) is answered before it
  // is counted or read: "the Server MUST NOT process the request". Downloads are not tus's.
  app.all(['/files', '/files/:id'], tusGuards);
  // Once it is known who sends the request, before anything of its body is read (or counted).
  app.all(['/files', '/files/:id'], openUploads);
  // A PATCH, tus HEAD or DELETE takes its upload's lock before anything reads the upload, and
  // its owner is checked under it: every layer after this shares one read of the record.
  app.all('/files/:id', uploadLock({ locker, ownership: access.ownership, logger }));
  app.post('/files', beforeCreation);

  const json = express.json({ limit: '1kb', type: () => true });
  app.options(['/files/:id/links', '/files/:id/proof'], preflight('POST'));
  app.post('/files/:id/links', json, links);
  // A proof reads up to 32 KiB of storage: it draws on the creation budget.
  if (proof) app.post('/files/:id/proof', beforeCreation, json, proof);

  // GET, and a HEAD without Tus-Resumable, download the upload; a HEAD with it is the tus HEAD.
  app.get('/files/:id', (req, res, next) => {
    if (isDownloadRequest(req)) return download.handle(req, res);
    next();
  });
  const handleTus = async (req: express.Request, res: express.Response) => {
    // A post-receive hook stopped the upload while its checksummed body was read.
    if (await hooks?.stopped(req, res)) return;
    const request = new NodeRequest({ req, res });
    // A body with Upload-Checksum was read and verified already: tus reads it from its spool.
    const context = contextOf(req);
    const verified = context.verifiedBody;
    if (req.method === 'PATCH' || req.method === 'POST') {
      const body = verified
        ? (Readable.toWeb(await verified.open()) as ReadableStream<Uint8Array>)
        : bodyStreamOf(req, context.hookStop?.controller.signal);
      Object.defineProperty(request, 'body', { value: body });
    }
    // Storage learns the body's declared length, so it can stream parts without spooling them.
    const length = verified ? verified.length : declaredLength(req.get('content-length'));
    const writes = req.method === 'PATCH' || (req.method === 'POST' && Boolean(length));
    if (writes) metrics?.uploading(1);
    context.bodyLength = length;
    // tus writes a creation's body only when it says it is one (creation-with-upload).
    context.creationWithoutBody =
      req.method === 'POST' && req.get('content-type') !== 'application/offset+octet-stream';
    const response = await tus.handleWeb(request).finally(() => {
      if (writes) metrics?.uploading(-1);
    });
    if (metrics && writes) metrics.bytesReceived(acceptedBytes(req, response));
    // Stopped by a post-receive hook while tus wrote: the hook's answer, not tus's.
    if (await hooks?.stopped(req, res)) return;
    await completeFromRecord(tus.datastore, req, response);
    completeTusResponse(req, response, concat.headerOf);
    await sendNodeResponse(res, response);
  };
  const pass: RequestHandler = (_req, _res, next) => next();
  app.all(
    '/files',
    concat.creation,
    hooks?.preCreate ?? pass,
    beforeTus?.creation ?? pass,
    checksum,
    handleTus,
  );
  app.all(
    '/files/:id',
    concat.patch,
    finishedUploadPatch(tus.datastore),
    hooks?.preTerminate ?? pass,
    hooks?.postReceive ?? pass,
    beforeTus?.upload ?? pass,
    checksum,
    handleTus,
  );

  app.use((req, res) => {
    answerError(req, res, ERRORS.NOT_FOUND);
  });
  // Express's own errors leave by the same exit as every other: its error page would show a
  // stack trace.
  app.use((error: Error, req: Request, res: Response, _next: NextFunction) => {
    answerError(req, res, expressRefusal(error) ?? error, {
      failed: (err) => logger.error({ err }, 'request failed'),
    });
  });
  return app;
}
