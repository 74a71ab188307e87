import type { IncomingMessage, ServerResponse } from 'node:http';
import { EVENTS, type Server as TusServer, type Upload } from '@tus/server';
import express, {
  type Express,
  type NextFunction,
  type Request,
  type RequestHandler,
  type Response,
} from 'express';
import { pinoHttp } from 'pino-http';
import { NodeRequest, sendNodeResponse } from 'srvx/node';
import type { DownloadHandler } from '../download/DownloadHandler.ts';
import { ERRORS, jsonError, retryHeaders } from '../errors/catalogue.ts';
import type { Logger } from './logger.ts';
import type { ReadinessCheck } from './readiness.ts';
import { tusGuards } from './tusGuards.ts';

export type AppParts = {
  tus: TusServer;
  logger: Logger;
  readiness: ReadinessCheck;
  download: DownloadHandler;
  /** Middleware that may answer a creation (or a PATCH) before tus does: dedupe hits. */
  beforeTus?: { creation: RequestHandler; upload: RequestHandler };
  /** The upload page at / and its assets. */
  uploadPage?: RequestHandler;
};

/** What tus answers, completed where @tus/server leaves something out. */
function completeTusResponse(method: string, response: globalThis.Response): void {
  const { headers, status } = response;
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

/** The id a creation request was given, kept on the Node request for its log line. */
const createdIds = new WeakMap<object, string>();

/** @tus/server hands hooks a web Request that carries the Node request it came from. */
type WrappedRequest = { runtime?: { node?: { req: object } } };

function uploadIdOf(req: IncomingMessage): string | undefined {
  return /^\/files\/([^/?]+)/.exec(req.url ?? '')?.[1] ?? createdIds.get(req);
}

/** The HTTP surface: health, readiness and the tus routes. */
export function createApp({
  tus,
  logger,
  readiness,
  beforeTus,
  download,
  uploadPage,
}: AppParts): Express {
  tus.on(EVENTS.POST_CREATE, (req: WrappedRequest, upload: Upload) => {
    const nodeReq = req.runtime?.node?.req;
    if (nodeReq) createdIds.set(nodeReq, upload.id);
  });

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.use(
    pinoHttp({
      logger,
      quietReqLogger: true,
      wrapSerializers: false,
      serializers: {
        req: (req: IncomingMessage) => ({ method: req.method, path: req.url?.split('?')[0] }),
        res: (res: ServerResponse) => ({ status: res.statusCode }),
      },
      customProps: (req) => ({ uploadId: uploadIdOf(req) }),
      customSuccessMessage: (req, res, ms) =>
        `${req.method} ${req.url?.split('?')[0]} ${res.statusCode} ${Math.round(ms)}ms`,
      customErrorMessage: (req, res) =>
        `${req.method} ${req.url?.split('?')[0]} ${res.statusCode} failed`,
      customLogLevel: (_req, res, err) =>
        err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info',
    }),
  );

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

  // GET, and a HEAD without Tus-Resumable, download the upload; a HEAD with it is the tus HEAD.
  app.get('/files/:id', (req, res, next) => {
    const isDownload = req.method === 'GET' || req.get('tus-resumable') === undefined;
    if (isDownload && req.get('x-http-method-override') === undefined)
      return download.handle(req, res);
    next();
  });
  const handleTus = async (req: express.Request, res: express.Response) => {
    const response = await tus.handleWeb(new NodeRequest({ req, res }));
    completeTusResponse(req.method, response);
    await sendNodeResponse(res, response);
  };
  const pass: RequestHandler = (_req, _res, next) => next();
  app.all('/files', tusGuards, beforeTus?.creation ?? pass, handleTus);
  app.all('/files/:id', tusGuards, beforeTus?.upload ?? pass, handleTus);

  app.use((_req, res) => {
    res.status(404).json(jsonError(ERRORS.NOT_FOUND));
  });
  // Express's own error page would show a stack trace; a path it cannot decode names no upload.
  app.use(
    (error: Error & { status?: number }, _req: Request, res: Response, _next: NextFunction) => {
      const status = error.status && error.status >= 400 && error.status < 500 ? error.status : 500;
      if (status === 500) logger.error({ err: error }, 'request failed');
      if (res.headersSent) return void res.destroy();
      const entry = status === 500 ? ERRORS.INTERNAL_ERROR : ERRORS.NOT_FOUND;
      res.status(entry.status_code).json(jsonError(entry));
    },
  );
  return app;
}
