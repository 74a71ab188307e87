import { type DataStore, TUS_RESUMABLE, type Upload } from '@tus/utils';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { refuse } from '../errors/answer.ts';
import { ERRORS } from '../errors/catalogue.ts';

/** Whether an upload has all its bytes: its length is known and its offset has reached it. */
function isFinished(upload: Upload): boolean {
  return upload.size !== undefined && upload.offset === upload.size;
}

/**
 * A PATCH of a finished upload at its final offset with an empty body is a no-op: `204` with
 * `Upload-Offset`, as tusd answers ("do not proxy the call to the data store if the upload is
 * already completed"). @tus/server would hand the empty body to storage, which on S3 completes
 * the multipart upload a second time (an error) and then finishes the upload again (dedupe would
 * read it back). A PATCH with `Content-Length` above 0 goes on to tus, which answers 413 before
 * any storage write; a chunked body is read here, and a single byte of it is a 413 as well.
 */
export function finishedUploadPatch(datastore: DataStore): RequestHandler {
  return async (req: Request, res: Response, next: NextFunction) => {
    const length = req.get('content-length');
    if (req.method !== 'PATCH' || (length !== undefined && length !== '0')) return next();
    // Declaring a length is tus's to answer (400: it is known already).
    if (req.get('upload-length') !== undefined) return next();
    const upload = await datastore.getUpload(String(req.params.id)).catch(() => undefined);
    // Missing, unreachable or unfinished: tus answers (404, 503, or the write).
    if (!upload || !isFinished(upload) || req.get('upload-offset') !== String(upload.offset)) {
      return next();
    }
    if (length === undefined) {
      for await (const chunk of req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
        if (chunk.length === 0) continue;
        req.pause();
        return refuse(req, res, ERRORS.ERR_SIZE_EXCEEDED, { Connection: 'close' });
      }
    }
    res.status(204).set({ 'Tus-Resumable': TUS_RESUMABLE, 'Upload-Offset': String(upload.offset) });
    res.end();
  };
}

/**
 * Headers of a tus answer that come from the upload's record, where @tus/server leaves them out:
 * - a 409 to a PATCH carries the current `Upload-Offset`, so the client resumes without a HEAD
 *   (tusd does not send it; tus 1.0.0 neither asks nor forbids it);
 * - a tus HEAD of an unfinished upload carries `Upload-Expires` ("The Server SHOULD include the
 *   Upload-Expires header in the response if the upload is going to expire"), as PATCH and
 *   creation answers do, in RFC 9110's IMF-fixdate format.
 */
export async function completeFromRecord(
  datastore: DataStore,
  req: Request,
  response: globalThis.Response,
): Promise<void> {
  const { status, headers } = response;
  const conflict = req.method === 'PATCH' && status === 409;
  const unfinishedHead =
    req.method === 'HEAD' &&
    status === 200 &&
    datastore.getExpiration() > 0 &&
    (headers.has('upload-defer-length') ||
      headers.get('upload-offset') !== headers.get('upload-length'));
  if (!conflict && !unfinishedHead) return;
  const upload = await datastore.getUpload(String(req.params.id)).catch(() => undefined);
  if (!upload) return;
  if (conflict) headers.set('Upload-Offset', String(upload.offset));
  if (unfinishedHead && upload.creation_date) {
    const expires = new Date(upload.creation_date).getTime() + datastore.getExpiration();
    headers.set('Upload-Expires', new Date(expires).toUTCString());
  }
}
