import { TUS_RESUMABLE } from '@tus/utils';
import type { NextFunction, Request, Response } from 'express';
import { asksForFinal } from '../concat/header.ts';
import { refuse } from '../errors/answer.ts';
import { ERRORS, type ErrorEntry } from '../errors/catalogue.ts';
import { UPLOAD_ID } from '../storage/uploadId.ts';
import { carriesUploadBody } from './openUploads.ts';
import { isDownloadRequest } from './requests.ts';

/** The subset of a request the guards read: its method (decided at the edge) and headers. */
export type TusRequestView = {
  method: string;
  get(name: string): string | undefined;
  params: Record<string, unknown>;
};

/**
 * What @tus/server leaves out or answers differently from the tus 1.0.0 text; returns the error
 * for a request that must stop. X-HTTP-Method-Override was applied at the edge already.
 */
export function checkTusRequest(req: TusRequestView): ErrorEntry | undefined {
  if (req.method === 'OPTIONS') return undefined;

  const resumable = req.get('tus-resumable');
  // If the version specified by the Client is not supported by the Server, it MUST respond
  // with the 412 Precondition Failed status and MUST include the Tus-Version header.
  if (resumable === undefined && req.method !== 'GET') return ERRORS.MISSING_TUS_RESUMABLE;
  if (resumable !== undefined && resumable !== TUS_RESUMABLE) return ERRORS.UNSUPPORTED_TUS_VERSION;

  // Lengths and offsets are byte counts JavaScript holds exactly: at most 2^53 - 1.
  if (!safeCount(req.get('upload-length'))) return ERRORS.UPLOAD_LENGTH_TOO_LARGE;
  if (!safeCount(req.get('upload-offset'))) return ERRORS.UPLOAD_OFFSET_TOO_LARGE;

  const id: unknown = req.params.id;
  if (id !== undefined && !(typeof id === 'string' && UPLOAD_ID.test(id))) {
    return ERRORS.FILE_NOT_FOUND;
  }
  // Uploads are created at the creation URL only; @tus/server would create one at any URL
  // (tusd: 405).
  if (req.method === 'POST' && id !== undefined) return ERRORS.METHOD_NOT_ALLOWED;

  // All PATCH requests MUST use Content-Type: application/offset+octet-stream,
  // otherwise the server SHOULD return a 415 Unsupported Media Type status.
  const octetStream = req.get('content-type') === 'application/offset+octet-stream';
  if (req.method === 'PATCH' && !octetStream) return ERRORS.PATCH_CONTENT_TYPE;
  // The Request MUST include a Upload-Offset header (400, as tusd: the header is missing, not
  // forbidden).
  if (req.method === 'PATCH' && req.get('upload-offset') === undefined) {
    return ERRORS.MISSING_UPLOAD_OFFSET;
  }
  // creation-with-upload: the body of a creation is the upload's first chunk, so it is typed as a
  // PATCH's is; a body of another type is refused rather than silently dropped.
  if (req.method === 'POST' && carriesUploadBody(req) && !octetStream) {
    return ERRORS.CREATION_CONTENT_TYPE;
  }
  // A final upload's bytes are its partials': a body would modify it, which tus forbids its
  // PATCH (403), and it would be dropped unread. tusd answers this creation 403 too.
  if (req.method === 'POST' && asksForFinal(req.get('upload-concat')) && carriesUploadBody(req)) {
    return ERRORS.CONCAT_FINAL_WITH_BODY;
  }
  return undefined;
}

/** False only for a whole number too large to hold exactly; other malformations are tus's to answer. */
function safeCount(value: string | undefined): boolean {
  return value === undefined || !/^\d+$/.test(value) || Number.isSafeInteger(Number(value));
}

/** What an upload URL answers (its 405's Allow). */
const UPLOAD_METHODS = 'OPTIONS, HEAD, PATCH, DELETE, GET';

/**
 * Express middleware running checkTusRequest before anything acts on a tus request (open-upload
 * caps, rate limits, the tus handler); a download (GET, HEAD without Tus-Resumable) is not one.
 */
export function tusGuards(req: Request, res: Response, next: NextFunction): void {
  const rejection = isDownloadRequest(req) ? undefined : checkTusRequest(req);
  if (!rejection) {
    next();
    return;
  }
  refuse(req, res, rejection, {
    'Access-Control-Allow-Origin': '*',
    'Access-Control-Expose-Headers': 'Tus-Resumable, Tus-Version',
    ...(rejection.status_code === 412 ? { 'Tus-Version': TUS_RESUMABLE } : {}),
    ...(rejection === ERRORS.METHOD_NOT_ALLOWED ? { Allow: UPLOAD_METHODS } : {}),
  });
}
