import { Metadata, ERRORS as TUS_ERRORS, TUS_RESUMABLE, type Upload } from '@tus/utils';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import { answerError, refuse } from '../errors/answer.ts';
import { ERRORS } from '../errors/catalogue.ts';
import { contextOf } from '../request/context.ts';
import { concatOf } from '../request/metadata.ts';
import type { UploadStorage } from '../storage/types.ts';
import type { Concatenation } from './Concatenation.ts';
import { parseUploadConcat, uploadConcatHeader } from './header.ts';

/** Makes the absolute URL of a path from the request's headers (the server's URL builder). */
type UrlBuilder = (header: (name: string) => string | undefined, path: string) => string;

type ConcatRouteParts = {
  concatenation: Concatenation;
  storage: UploadStorage;
  logger: Logger;
  urlFor: UrlBuilder;
};

/**
 * POST /files with Upload-Concat (tus concatenation). `partial` is a normal creation, marked
 * as a partial, that tus carries out; `final;<urls>` is answered here: @tus/server has no
 * concatenation of its own.
 */
export function concatCreation({
  concatenation,
  logger,
  urlFor,
}: ConcatRouteParts): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const header = req.get('upload-concat');
    if (req.method !== 'POST' || header === undefined) return next();
    const request = parseUploadConcat(header);
    if ('status_code' in request) return refuse(req, res, request);
    if (request.kind === 'partial') {
      contextOf(req).concat = 'partial';
      return next();
    }
    // The Client MUST NOT include the Upload-Length header in the final upload creation.
    if (req.get('upload-length') !== undefined || req.get('upload-defer-length') !== undefined) {
      return refuse(req, res, ERRORS.CONCAT_FINAL_WITH_LENGTH);
    }
    let metadata: Upload['metadata'];
    const metadataHeader = req.get('upload-metadata');
    try {
      // Upload-Metadata is optional, as in any creation.
      metadata = metadataHeader === undefined ? undefined : Metadata.parse(metadataHeader);
    } catch {
      return refuse(req, res, TUS_ERRORS.INVALID_METADATA);
    }
    // In the request's context: a lock it loses fences its writes off storage.
    concatenation.createFinal(req, request.ids, metadata).then(
      ({ upload, answer }) => {
        res
          .status(answer.status_code ?? 201)
          .set({
            ...contextOf(req).hookHeaders,
            ...answer.headers,
            'Tus-Resumable': TUS_RESUMABLE,
            Location: urlFor((name) => req.get(name), `/files/${upload.id}`),
            'Upload-Offset': String(upload.size ?? 0),
          })
          .send(answer.body ?? '');
      },
      (error: unknown) =>
        answerError(req, res, error, {
          failed: (err, outage) =>
            logger.error({ err }, outage?.body.trimEnd() ?? 'concatenation failed'),
        }),
    );
  };
}

/**
 * PATCH /files/:id of a final upload: the Server MUST respond with the 403 Forbidden status
 * (its bytes are its partials'). Anything else about the request is tus's to answer.
 */
export function finalUploadPatch({ storage }: ConcatRouteParts): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    if (req.method !== 'PATCH') return next();
    storage.recordOf(String(req.params.id)).then(
      (record) => {
        if (concatOf(record.metadata)?.kind === 'final') {
          return refuse(req, res, ERRORS.CONCAT_FINAL_PATCH);
        }
        next();
      },
      () => next(),
    );
  };
}

/** The Upload-Concat of a tus HEAD answer, from the upload's metadata as tus sends it. */
export function concatHeaderOf(
  urlFor: UrlBuilder,
): (req: Request, metadataHeader: string) => string | undefined {
  return (req, metadataHeader) => {
    let metadata: Upload['metadata'];
    try {
      metadata = Metadata.parse(metadataHeader);
    } catch {
      return undefined;
    }
    return uploadConcatHeader(metadata, (id) => urlFor((name) => req.get(name), `/files/${id}`));
  };
}
