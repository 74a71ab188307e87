import type { Upload } from '@tus/utils';
import type { RequestHandler } from 'express';
import type { Logger } from 'pino';
import { type LinkSigner, MAX_LINK_SECONDS } from '../auth/links.ts';
import { answerError, refuse } from '../errors/answer.ts';
import { ERRORS } from '../errors/catalogue.ts';
import type { UploadStorage } from '../storage/types.ts';
import type { createUrlBuilder } from './publicUrl.ts';

const DEFAULT_LINK_SECONDS = 3600;

/** Whether a parsed JSON body is an object (not an array, not null). */
export function isJsonObject(body: unknown): body is Record<string, unknown> {
  return typeof body === 'object' && body !== null && !Array.isArray(body);
}

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
  return async (req, res) => {
    const id = String(req.params.id);
    // No body asks for the default; a body is a JSON object (express.json answers non-JSON).
    if (req.body !== undefined && !isJsonObject(req.body)) {
      return refuse(req, res, ERRORS.INVALID_JSON_BODY);
    }
    const expiresIn =
      (req.body as { expiresIn?: unknown } | undefined)?.expiresIn ?? DEFAULT_LINK_SECONDS;
    if (
      !Number.isInteger(expiresIn) ||
      Number(expiresIn) < 1 ||
      Number(expiresIn) > MAX_LINK_SECONDS
    ) {
      return refuse(req, res, ERRORS.INVALID_LINK_REQUEST);
    }
    let upload: Upload;
    try {
      upload = await storage.datastore.getUpload(id);
    } catch (error) {
      return answerError(req, res, error, {
        failed: (err, outage) =>
          logger.error({ err, uploadId: id }, outage?.body.trimEnd() ?? 'link failed'),
      });
    }
    if (upload.size === undefined || upload.offset !== upload.size) {
      return refuse(req, res, ERRORS.UPLOAD_NOT_FINISHED);
    }
    const expires = Math.floor(Date.now() / 1000) + Number(expiresIn);
    const query = `expires=${expires}&signature=${links.sign(id, expires)}`;
    res.status(201).json({
      url: urlFor((name) => req.get(name), `/files/${id}?${query}`),
      expiresAt: new Date(expires * 1000).toISOString(),
    });
  };
}
