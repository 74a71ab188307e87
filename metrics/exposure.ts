import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import express, { type Request, type RequestHandler, type Response } from 'express';
import ipaddr from 'ipaddr.js';
import type { Registry } from 'prom-client';
import { ERRORS, sendJsonError } from '../errors/catalogue.ts';

/**
 * Where /metrics is served. The counters show other users' activity (uploads, bytes, dedupe
 * hits), so they are never open on the public port: either on a listener of their own (loopback
 * by default) or, with a token, on the public port behind `Authorization: Bearer <token>`.
 */
export type MetricsExposure = {
  /** Its own listener: METRICS_HOST:METRICS_PORT (port 0 → a free one). */
  listener?: { host: string; port: number };
  /** Bearer token required wherever metrics are served; with it, the public port serves them. */
  token?: string;
};

const BEARER = /^Bearer +(\S+) *$/i;

const digest = (value: string) => createHash('sha256').update(value).digest();

/** Whether the request carries the metrics token (compared in constant time). */
export function carriesToken(authorization: string | undefined, token: string): boolean {
  const presented = BEARER.exec(authorization ?? '')?.[1];
  return presented !== undefined && timingSafeEqual(digest(presented), digest(token));
}

/** GET /metrics: the registry's text exposition, for the token's holder when a token is set. */
export function metricsRoute(registry: Registry, token: string | undefined): RequestHandler {
  return async (req: Request, res: Response) => {
    if (token && !carriesToken(req.get('authorization'), token)) {
      res.set('WWW-Authenticate', 'Bearer realm="metrics"');
      return sendJsonError(res, ERRORS.METRICS_TOKEN_REQUIRED);
    }
    res.set('Content-Type', registry.contentType).send(await registry.metrics());
  };
}

/** Whether a host name or address names this machine's loopback interface. */
export function isLoopbackName(name: string | undefined): boolean {
  if (name === undefined) return false;
  const bare = name.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (bare === 'localhost' || bare.endsWith('.localhost')) return true;
  return ipaddr.isValid(bare) && ipaddr.process(bare).range() === 'loopback';
}

/** The host name of a Host header (without its port); undefined when it has none. */
function hostnameOf(header: string | undefined): string | undefined {
  if (!header) return undefined;
  return URL.canParse(`http://${header}`) ? new URL(`http://${header}`).hostname : undefined;
}

/**
 * The metrics' own listener: GET/HEAD /metrics (any case, with or without a trailing slash, like
 * the app's routes) and nothing else. Resolves with the port it listens on once it does; rejects
 * with the listen error (EADDRINUSE …).
 */
export async function listenForMetrics(
  registry: Registry,
  { host, port }: { host: string; port: number },
  token: string | undefined,
): Promise<{ server: Server; port: number }> {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // A page in a browser on this machine could point a name of its own at 127.0.0.1 (DNS
  // rebinding) and read the metrics; on loopback only loopback names are answered.
  if (isLoopbackName(host)) {
    app.use((req, res, next) => {
      if (isLoopbackName(hostnameOf(req.headers.host))) return next();
      sendJsonError(res, ERRORS.MISDIRECTED_REQUEST);
    });
  }
  app.get('/metrics', metricsRoute(registry, token));
  app.all('/metrics', (_req, res) => {
    sendJsonError(res, ERRORS.METHOD_NOT_ALLOWED, { Allow: 'GET, HEAD' });
  });
  app.use((_req, res) => {
    sendJsonError(res, ERRORS.NOT_FOUND);
  });
  const server = createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  return { server, port: typeof address === 'object' && address ? address.port : port };
}
