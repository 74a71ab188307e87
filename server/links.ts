import type { RequestHandler } from 'express';
import type { Logger } from 'pino';
import { type LinkSigner, MAX_LINK_SECONDS } from '../auth/links.ts';
import { ERRORS, type ErrorEntry, jsonError, outageOf, retryHeaders } from '../errors/catalogue.ts';
import type { UploadStorage } from '../storage/types.ts';
import type { createUrlBuilder } from './publicUrl.ts';

const DEFAULT_LINK_SECONDS = 3600;

/**
 * POST /files/:id/links `{"expiresIn": seconds}` (owner only: access control runs first) →
 * `201 {"url", "expiresAt"}`: a URL that downloads the finished upload (GET, HEAD, ranges)
 * without a token until it expires, on any instance that shares the signing key.
 */
export function createLinkRoute(parts: {
  links: LinkSigner;
  storage: UploadStorage;
  urlFor: ReturnType<typeof createUrlBuilder>;
  logger: Logger;
}): RequestHandler {
  const { links, storage, urlFor, logger } = parts;
  const fail = (entry: ErrorEntry) => ({ status: entry.status_code, body: jsonError(entry) });
  return async (req, res) => {
    const id = String(req.params.id);
    const requested = (req.body as { expiresIn?: unknown } | undefined)?.expiresIn;
    const expiresIn = requested ?? DEFAULT_LINK_SECONDS;
    let outcome: { status: number; body: object };
    if (
      !Number.isInteger(expiresIn) ||
      Number(expiresIn) < 1 ||
      Number(expiresIn) > MAX_LINK_SECONDS
    ) {
      outcome = fail(ERRORS.INVALID_LINK_REQUEST);
    } else {
      try {
        const upload = await storage.datastore.getUpload(id);
        if (upload.size === undefined || upload.offset !== upload.size) {
          outcome = fail(ERRORS.UPLOAD_NOT_FINISHED);
        } else {
          const expires = Math.floor(Date.now() / 1000) + Number(expiresIn);
          const query = `expires=${expires}&signature=${links.sign(id, expires)}`;
          outcome = {
            status: 201,
            body: {
              url: urlFor((name) => req.get(name), `/files/${id}?${query}`),
              expiresAt: new Date(expires * 1000).toISOString(),
            },
          };
        }
      } catch (error) {
        const outage = outageOf(error);
        if (outage) logger.error({ err: error, uploadId: id }, outage.body.trimEnd());
        const missing = (error as { status_code?: number }).status_code === 404;
        outcome = fail(missing ? ERRORS.NOT_FOUND : (outage ?? ERRORS.INTERNAL_ERROR));
        if (!missing && !outage) logger.error({ err: error, uploadId: id }, 'link failed');
      }
    }
    res.status(outcome.status).set(retryHeaders(outcome.status)).json(outcome.body);
  };
}
