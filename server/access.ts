import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import type { LinkSigner } from '../auth/links.ts';
import { AuthFailure, KeysUnavailable, type TokenVerifier } from '../auth/tokens.ts';
import { answerError, HttpError, isNotFoundError } from '../errors/answer.ts';
import { ERRORS, type ErrorEntry, outageOf } from '../errors/catalogue.ts';
import { contextOf } from '../request/context.ts';
import { OWNER_KEY } from '../request/metadata.ts';
import type { UploadStorage } from '../storage/types.ts';
import { UPLOAD_ID } from '../storage/uploadId.ts';
import { isPreflight } from './methodOverride.ts';
import { isDownloadRequest, takesUploadLock } from './requests.ts';

type AccessParts = {
  /** Undefined when auth is off: every request is anonymous and no upload has an owner. */
  verify?: TokenVerifier;
  links: LinkSigner;
  storage: UploadStorage;
  logger: Logger;
};

/** Answers an error the way the request's route answers (decided at the edge): tus text, or JSON. */
function reject(req: Request, res: Response, entry: ErrorEntry, headers = {}): void {
  answerError(req, res, HttpError.of(entry, headers));
}

/** The one answer for an upload that is missing or another owner's (auth on). */
function notFound(req: Request, res: Response): void {
  reject(req, res, isDownloadRequest(req) ? ERRORS.NOT_FOUND : ERRORS.FILE_NOT_FOUND);
}

/**
 * Who may do what under `/files`. With auth on, every request but a CORS preflight needs a valid
 * Bearer token, whose `sub` owns the uploads it creates; another owner's upload does not exist
 * for it (404). A signed link serves its one upload's download without a token.
 */
export function accessControl({ verify, links, storage, logger }: AccessParts) {
  const authenticate: RequestHandler = async (req, res, next: NextFunction) => {
    if (isPreflight(req)) return next();
    const { expires, signature } = req.query;
    if (typeof signature === 'string' || typeof expires === 'string') {
      const id = String(req.params.id ?? '');
      const check =
        isDownloadRequest(req) && typeof signature === 'string' && typeof expires === 'string'
          ? links.check(id, expires, signature)
          : 'invalid';
      if (check !== 'valid') return reject(req, res, ERRORS.LINK_REFUSED);
      contextOf(req).viaLink = true;
      contextOf(req).linkExpires = Number(expires);
      return next();
    }
    if (!verify) return next();
    try {
      contextOf(req).owner = await verify(req.get('authorization'));
      next();
    } catch (error) {
      if (error instanceof AuthFailure) {
        const challenge =
          error.error === 'missing_token'
            ? 'Bearer realm="uploads"'
            : `Bearer realm="uploads", error="invalid_token", error_description="${error.reason}"`;
        return reject(req, res, ERRORS.UNAUTHENTICATED, { 'WWW-Authenticate': challenge });
      }
      if (error instanceof KeysUnavailable) {
        logger.error({ err: error }, 'auth: the JWKS could not be fetched');
        return reject(req, res, ERRORS.KEYS_UNAVAILABLE);
      }
      next(error);
    }
  };

  /**
   * With auth on, an upload of another owner (or of none) answers as if it did not exist. A
   * request that takes its upload's lock is checked once it holds it (server/uploadLock.ts), or,
   * when another owner holds it, before it waits.
   */
  const ownership: RequestHandler = async (req, res, next) => {
    const facts = contextOf(req);
    if (!verify || facts.viaLink) return next();
    if (isPreflight(req)) return next();
    if (takesUploadLock(req) && !facts.uploadLock) return next();
    const id = req.params.id;
    if (typeof id !== 'string' || !UPLOAD_ID.test(id)) return next();
    try {
      // The record alone: the offset (on S3 a listing of parts) is not needed to know the owner.
      const upload = await storage.recordOf(id);
      if (upload.metadata?.[OWNER_KEY] === facts.owner) return next();
      return notFound(req, res);
    } catch (error) {
      // Missing answers here too, from the same line as another owner's upload: byte for byte
      // the same status, headers and body, so a stranger cannot tell the two apart.
      if (isNotFoundError(error)) return notFound(req, res);
      if (!outageOf(error)) return next(error);
      answerError(req, res, error, {
        failed: (err, outage) => logger.error({ err, uploadId: id }, outage?.body.trimEnd()),
      });
    }
  };

  return { authenticate, ownership };
}
