import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server as TusServer } from '@tus/server';
import express, { type Express } from 'express';
import { pinoHttp } from 'pino-http';
import type { Logger } from './logger.ts';
import type { ReadinessCheck } from './readiness.ts';
import { tusGuards } from './tusGuards.ts';

export type AppParts = {
  tus: TusServer;
  logger: Logger;
  readiness: ReadinessCheck;
};

function uploadIdOf(req: IncomingMessage, res: ServerResponse): string | undefined {
  const fromPath = /^\/files\/([^/?]+)/.exec(req.url ?? '')?.[1];
  if (fromPath) return fromPath;
  const location = res.getHeader('location');
  return typeof location === 'string' ? location.split('/').pop() : undefined;
}

/** The HTTP surface: health, readiness and the tus routes. */
export function createApp({ tus, logger, readiness }: AppParts): Express {
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
      customProps: (req, res) => ({ uploadId: uploadIdOf(req, res) }),
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

  const handleTus = (req: express.Request, res: express.Response) => tus.handle(req, res);
  app.all('/files', tusGuards, handleTus);
  app.all('/files/:id', tusGuards, handleTus);

  app.use((_req, res) => {
    res.status(404).json({ error: 'not found' });
  });
  return app;
}
