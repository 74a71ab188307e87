import type { NextFunction, Request, Response } from 'express';

const TUS_VERSION = '1.0.0';
const OVERRIDABLE = new Set(['GET', 'HEAD', 'POST', 'PATCH', 'DELETE', 'OPTIONS']);
/** Upload ids are the server's own: 32 lower-case hex characters (@tus/server's Uid.rand). */
export const UPLOAD_ID = /^[0-9a-f]{32}$/;

type Rejection = { status: number; reason: string; headers?: Record<string, string> };

/**
 * What @tus/server leaves out or answers differently from the tus 1.0.0 text. Applies
 * X-HTTP-Method-Override to the request; returns the rejection for a request that must stop.
 */
export function checkTusRequest(req: Request): Rejection | undefined {
  // Clients behind proxies that only pass GET and POST send the real method in this header.
  const override = req.get('x-http-method-override')?.trim().toUpperCase();
  if (override) {
    if (!OVERRIDABLE.has(override)) {
      return { status: 400, reason: `X-HTTP-Method-Override ${override} is not supported` };
    }
    req.method = override;
  }
  if (req.method === 'OPTIONS') return undefined;

  const resumable = req.get('tus-resumable');
  // If the version specified by the Client is not supported by the Server, it MUST respond
  // with the 412 Precondition Failed status and MUST include the Tus-Version header.
  if (resumable === undefined && req.method !== 'GET') {
    return {
      status: 412,
      reason: 'Tus-Resumable header is required',
      headers: { 'Tus-Version': TUS_VERSION },
    };
  }
  if (resumable !== undefined && resumable !== TUS_VERSION) {
    return {
      status: 412,
      reason: `Tus-Resumable ${resumable} is not supported`,
      headers: { 'Tus-Version': TUS_VERSION },
    };
  }

  // Lengths and offsets are byte counts JavaScript holds exactly: at most 2^53 - 1.
  for (const name of ['Upload-Length', 'Upload-Offset']) {
    const value = req.get(name);
    if (value !== undefined && /^\d+$/.test(value) && !Number.isSafeInteger(Number(value))) {
      return { status: 400, reason: `${name} must be at most ${Number.MAX_SAFE_INTEGER}` };
    }
  }

  const id: unknown = req.params.id;
  if (id !== undefined && !(typeof id === 'string' && UPLOAD_ID.test(id))) {
    return { status: 404, reason: 'Upload not found' };
  }

  // All PATCH requests MUST use Content-Type: application/offset+octet-stream,
  // otherwise the server SHOULD return a 415 Unsupported Media Type status.
  if (req.method === 'PATCH' && req.get('content-type') !== 'application/offset+octet-stream') {
    return { status: 415, reason: 'PATCH requires Content-Type: application/offset+octet-stream' };
  }
  return undefined;
}

/** Express middleware running checkTusRequest before the tus handler. */
export function tusGuards(req: Request, res: Response, next: NextFunction): void {
  const rejection = checkTusRequest(req);
  if (!rejection) {
    next();
    return;
  }
  res.set({
    'Tus-Resumable': TUS_VERSION,
    'Access-Control-Allow-Origin': '*',
    'Access-Control-Expose-Headers': 'Tus-Resumable, Tus-Version',
    'Content-Type': 'text/plain; charset=utf-8',
    ...rejection.headers,
  });
  res.status(rejection.status).send(`${rejection.reason}\n`);
}
