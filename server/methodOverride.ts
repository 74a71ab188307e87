import { TUS_RESUMABLE } from '@tus/utils';
import type { NextFunction, Request, Response } from 'express';
import onHeaders from 'on-headers';
import { ERRORS, type ErrorEntry, sendTusError } from '../errors/catalogue.ts';
import { contextOf } from '../request/context.ts';

/** What a POST may stand in for: the tus methods a proxy that passes only GET and POST blocks. */
const OVERRIDABLE = new Set(['POST', 'PATCH', 'HEAD', 'DELETE']);

const HEADER = 'x-http-method-override';

/**
 * The method a request is, decided once from its request line and X-HTTP-Method-Override.
 * Clients behind proxies that pass only GET and POST send the real method in that header
 * (tus-js-client's overridePatchMethod sends a POST); only a POST may carry it. An OPTIONS, GET
 * or HEAD with it is refused: a preflight or a download must never turn into a write.
 */
export function effectiveMethod(
  method: string,
  override: string | undefined,
): { method: string } | { error: ErrorEntry } {
  const wanted = override?.trim().toUpperCase();
  if (!wanted) return { method };
  if (method !== 'POST') return { error: ERRORS.METHOD_OVERRIDE_NOT_POST };
  if (!OVERRIDABLE.has(wanted)) return { error: ERRORS.UNSUPPORTED_METHOD_OVERRIDE };
  return { method: wanted };
}

/**
 * The first middleware of the app: every later layer (CORS, auth, rate limits, routing, tus)
 * sees the effective method, and none applies the header again (it is removed). A refused
 * override is answered by refuseBadOverride once the request is authenticated, so that a
 * stranger's request is a 401 whatever it carries.
 */
export function decideMethod(req: Request, res: Response, next: NextFunction): void {
  const decided = effectiveMethod(req.method, req.get(HEADER));
  if ('error' in decided) {
    contextOf(req).methodRefusal = decided.error;
    next();
    return;
  }
  if (decided.method === 'HEAD' && req.method !== 'HEAD') {
    // Node chose from the request line that this answer has a body; Express and tus send none
    // for a HEAD. The client sent a POST and reads the body Content-Length announces: none.
    onHeaders(res, function emptyBody(this: Response) {
      this.setHeader('Content-Length', '0');
    });
  }
  if (req.get(HEADER) !== undefined) {
    contextOf(req).methodOverridden = decided.method !== req.method;
    delete req.headers[HEADER];
    for (let i = req.rawHeaders.length - 2; i >= 0; i -= 2) {
      if (req.rawHeaders[i]?.toLowerCase() === HEADER) req.rawHeaders.splice(i, 2);
    }
  }
  req.method = decided.method;
  next();
}

/** A CORS preflight: answered with capabilities only, the one request auth lets through. */
export function isPreflight(req: Request): boolean {
  return (
    req.method === 'OPTIONS' &&
    req.get('access-control-request-method') !== undefined &&
    !contextOf(req).methodRefusal
  );
}

/** Answers a request whose override decideMethod refused; nothing else has acted on it. */
export function refuseBadOverride(req: Request, res: Response, next: NextFunction): void {
  const refusal = contextOf(req).methodRefusal;
  if (refusal) sendTusError(res, refusal, { 'Tus-Resumable': TUS_RESUMABLE });
  else next();
}
