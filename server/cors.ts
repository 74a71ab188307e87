import type { NextFunction, Request, RequestHandler, Response } from 'express';
import onHeaders from 'on-headers';

/** Response headers a browser page may read: what tus clients (Uppy) and downloads need. */
const EXPOSED = [
  'Location',
  'Upload-Offset',
  'Upload-Length',
  'Upload-Metadata',
  'Upload-Defer-Length',
  'Upload-Expires',
  'Upload-Dedupe-Challenge',
  'Upload-Concat',
  'Tus-Checksum-Algorithm',
  'Tus-Resumable',
  'Tus-Version',
  'Tus-Extension',
  'Tus-Max-Size',
  'Retry-After',
  'Accept-Ranges',
  'Content-Range',
  'Content-Length',
  'Content-Disposition',
  'ETag',
  'Last-Modified',
  // The id every log line of the request carries: what a page reports when something failed.
  'X-Request-Id',
].join(', ');

/** Request headers a browser page may send beyond the safelisted ones (preflights). */
export const ALLOWED_REQUEST_HEADERS = [
  'Range',
  'If-Range',
  'If-Match',
  'If-None-Match',
  'Upload-Checksum',
];

function appendVary(res: Response, field: string): void {
  const vary = String(res.getHeader('Vary') ?? '');
  if (!vary.split(',').some((v) => v.trim().toLowerCase() === field.toLowerCase())) {
    res.setHeader('Vary', vary ? `${vary}, ${field}` : field);
  }
}

/**
 * One CORS policy for every route, applied just before the headers go out (whatever handler
 * wrote them: tus, downloads, the dedupe and link routes). `*` allows any origin; otherwise
 * only the listed origins are echoed (with `Vary: Origin`) and any other gets no
 * Access-Control-Allow-Origin at all.
 */
export function corsPolicy(origins: '*' | string[]): RequestHandler {
  const allowed = origins === '*' ? undefined : new Set(origins);
  return (req: Request, res: Response, next: NextFunction) => {
    onHeaders(res, function applyCors(this: Response) {
      const origin = req.get('origin');
      if (!allowed) {
        this.setHeader('Access-Control-Allow-Origin', '*');
      } else {
        appendVary(this, 'Origin');
        if (origin && allowed.has(origin)) this.setHeader('Access-Control-Allow-Origin', origin);
        else this.removeHeader('Access-Control-Allow-Origin');
      }
      this.setHeader('Access-Control-Expose-Headers', EXPOSED);
    });
    next();
  };
}

/** Answers the preflight of a JSON POST route of ours (links, proofs); tus answers its own. */
export function preflight(methods: string): RequestHandler {
  return (_req, res) => {
    res
      .status(204)
      .set({
        'Access-Control-Allow-Methods': methods,
        'Access-Control-Allow-Headers': 'Authorization, Content-Type',
        'Access-Control-Max-Age': '86400',
      })
      .end();
  };
}
