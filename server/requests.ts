import type { IncomingMessage } from 'node:http';
import { finished } from 'node:stream';
import { contextOf } from '../request/context.ts';

/** The upload id in a `/files/<id>…` path or URL, if there is one. */
export function uploadIdIn(url: string | undefined): string | undefined {
  return /\/files\/([^/?]+)/.exec(url ?? '')?.[1];
}

/**
 * GET, and a HEAD without Tus-Resumable, download a finished upload; a HEAD with it is the tus
 * HEAD, and a POST overridden to HEAD is always tus's.
 */
export function isDownloadRequest(req: {
  method: string;
  get(name: string): string | undefined;
}): boolean {
  if (contextOf(req).methodOverridden) return false;
  return req.method === 'GET' || (req.method === 'HEAD' && req.get('tus-resumable') === undefined);
}

/**
 * The requests tus serves under their upload's lock: a PATCH, a tus HEAD, a DELETE. They take
 * it at the edge (server/uploadLock.ts), and their owner is checked under it.
 */
export function takesUploadLock(req: {
  method: string;
  get(name: string): string | undefined;
}): boolean {
  if (req.method === 'HEAD') return !isDownloadRequest(req);
  return req.method === 'PATCH' || req.method === 'DELETE';
}

/**
 * The body of a Node request as a web stream, chunk by chunk as they arrive. Readable.toWeb
 * (what srvx uses) copies every chunk to detach it from a buffer pool; a request body's chunks
 * are slices of its socket's own reads, which nothing else uses, so they pass as they are. On an
 * upload that copy was the largest single cost after the socket writes.
 */
export function bodyStreamOf(req: IncomingMessage, stop?: AbortSignal): ReadableStream<Uint8Array> {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  // Stopped by the server (a hook): the body ends with an error, the connection stays to answer.
  let stopped = false;
  stop?.addEventListener('abort', () => {
    stopped = true;
    req.pause();
    controller.error(new DOMException('the upload was stopped', 'AbortError'));
  });
  req.pause();
  const facts = contextOf(req);
  req.on('data', (chunk: Buffer) => {
    if (stopped) return;
    facts.bodyBytes = (facts.bodyBytes ?? 0) + chunk.length;
    controller.enqueue(chunk);
    if ((controller.desiredSize ?? 0) <= 0) req.pause();
  });
  const cleanup = finished(req, (error) => {
    cleanup();
    if (stopped) return;
    // A client that goes away mid-body is an abort, as Readable.toWeb reports it.
    if (error) {
      const reason =
        (error as { code?: string }).code === 'ERR_STREAM_PREMATURE_CLOSE'
          ? new DOMException('the client went away', 'AbortError')
          : error;
      controller.error(reason);
    } else controller.close();
  });
  return new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c;
      },
      pull() {
        req.resume();
      },
      cancel(reason) {
        req.destroy(reason instanceof Error ? reason : undefined);
      },
    },
    new ByteLengthQueuingStrategy({ highWaterMark: 64 * 1024 }),
  );
}

/**
 * How a request's route answers errors, decided once at the edge: the tus routes (`/files`,
 * `/files/:id` but downloads) in tus's text, every other route in JSON.
 */
export function answerFormatOf(req: {
  method: string;
  path: string;
  get(name: string): string | undefined;
}): 'tus' | 'json' {
  if (!/^\/files(\/[^/]+)?\/?$/.test(req.path)) return 'json';
  return /^\/files\/[^/]+/.test(req.path) && isDownloadRequest(req) ? 'json' : 'tus';
}
