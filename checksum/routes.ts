import type { Upload } from '@tus/utils';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import { answerError, isNotFoundError, refuse } from '../errors/answer.ts';
import { ERRORS, type ErrorEntry } from '../errors/catalogue.ts';
import { contextOf, type RequestContext } from '../request/context.ts';
import { Spool } from '../storage/spool.ts';
import type { UploadStorage } from '../storage/types.ts';
import { spoolRefusal } from './chunkLimit.ts';
import {
  CHECKSUM_ALGORITHMS,
  ChecksumVerifier,
  parseUploadChecksum,
  type UploadChecksum,
} from './uploadChecksum.ts';

/** A request body that matched its Upload-Checksum, held in a spool file until tus writes it. */
type VerifiedBody = NonNullable<RequestContext['verifiedBody']>;

type ChecksumParts = {
  storage: UploadStorage;
  maxSize: number;
  /** CHECKSUM_MAX_CHUNK_SIZE: the most one checksummed request may carry (and spool). */
  maxChunkSize: number;
  logger: Logger;
};

/**
 * The checksum extension. A PATCH (or a creation with upload) that carries Upload-Checksum is
 * read whole into a spool file and hashed before any of it reaches tus: only a body that
 * matches is written, so a mismatch (460) leaves the upload's offset, its parts and its tail
 * as they were. The spool is bounded by what the upload may still take and by `maxChunkSize`:
 * a Content-Length over either is refused (413) before any byte is read, and a chunked body the
 * moment it passes one (the spool removed, the connection closed so that no more is read).
 */
export function checksumVerification({
  storage,
  maxSize,
  maxChunkSize,
  logger,
}: ChecksumParts): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const header = req.get('upload-checksum');
    const trailer = header === undefined && declaresChecksumTrailer(req.get('trailer'));
    const carriesBody = req.get('content-type') === 'application/offset+octet-stream';
    if (
      (header === undefined && !trailer) ||
      !carriesBody ||
      !['PATCH', 'POST'].includes(req.method)
    ) {
      return next();
    }
    const expected = header === undefined ? undefined : parseUploadChecksum(header);
    if (expected && 'status_code' in expected) return refuse(req, res, expected);
    bodyLimit(req)
      .then((limit) => {
        if (typeof limit !== 'number') return refuse(req, res, limit);
        return verify(req, res, expected, limit).then(onVerified);
      })
      .catch(onFailure);

    function onVerified(verified: VerifiedBody | undefined): void {
      if (!verified) return;
      contextOf(req).verifiedBody = verified;
      next();
    }
    function onFailure(error: unknown): void {
      if (res.headersSent || res.destroyed) return;
      answerError(req, res, error, {
        failed: (err) =>
          logger.error({ err, uploadId: req.params.id }, 'checksum: spooling the body failed'),
      });
    }
  };

  /**
   * How many bytes the request may carry: what is left of the upload's length (or the limit).
   * An upload that does not exist or has expired is answered here (404, 410), as tus would
   * answer it, without reading the body: passed on, it could be written unverified.
   */
  async function bodyLimit(req: Request): Promise<number | ErrorEntry> {
    const ceiling = maxSize > 0 ? maxSize : Number.POSITIVE_INFINITY;
    if (req.method === 'POST') {
      const length = req.get('upload-length');
      return length !== undefined && /^\d+$/.test(length) ? Number(length) : ceiling;
    }
    // The upload as tus sees it (its offset included).
    const upload = await storage.datastore
      .getUpload(String(req.params.id))
      .catch((error: unknown) => {
        if (isNotFoundError(error)) return undefined;
        throw error;
      });
    if (!upload) return ERRORS.FILE_NOT_FOUND;
    if (isExpired(upload)) return ERRORS.FILE_NO_LONGER_EXISTS;
    return upload.size === undefined ? ceiling : Math.max(0, upload.size - upload.offset);
  }

  /** tus's own test (PatchHandler): created longer than the expiration ago. */
  function isExpired(upload: Upload): boolean {
    const expiration = storage.datastore.getExpiration();
    if (expiration <= 0 || !upload.creation_date) return false;
    return Date.now() > new Date(upload.creation_date).getTime() + expiration;
  }

  /**
   * Spools and hashes the body, then compares it with `header` (the Upload-Checksum header) or,
   * without one, with the Upload-Checksum trailer that came after the body.
   */
  async function verify(
    req: Request,
    res: Response,
    header: UploadChecksum | undefined,
    limit: number,
  ): Promise<VerifiedBody | undefined> {
    const verifier = new ChecksumVerifier(header ? [header.algorithm] : CHECKSUM_ALGORITHMS);
    const declared = req.get('content-length');
    const refused =
      declared === undefined ? undefined : spoolRefusal(Number(declared), limit, maxChunkSize);
    if (refused) {
      refuse(req, res, refused);
      return undefined;
    }
    const spool = await Spool.open();
    const facts = contextOf(req);
    let kept = false;
    try {
      // Leaving the loop early must not destroy the request (and its socket) before the 413 is
      // sent: `Connection: close` ends the connection once it is.
      for await (const chunk of req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
        const over = spoolRefusal(spool.length + chunk.length, limit, maxChunkSize);
        if (over) {
          req.pause();
          // Removed before the answer, so that a client that sees the 413 sees no spool either.
          await spool.discard();
          refuse(req, res, over, { Connection: 'close' });
          return undefined;
        }
        verifier.update(chunk);
        facts.bodyBytes = (facts.bodyBytes ?? 0) + chunk.length;
        await spool.append(chunk);
      }
      if (declared !== undefined && spool.length !== Number(declared)) {
        refuse(req, res, ERRORS.CHECKSUM_BODY_INCOMPLETE);
        return undefined;
      }
      // Node has the trailers once the body has ended.
      const expected = header ?? trailerChecksum(req.trailers['upload-checksum']);
      if ('status_code' in expected) {
        refuse(req, res, expected);
        return undefined;
      }
      if (!verifier.matches(expected)) {
        logger.warn(
          { uploadId: req.params.id, bytes: spool.length },
          'checksum mismatch: the chunk is not stored',
        );
        res.statusMessage = 'Checksum Mismatch';
        refuse(req, res, ERRORS.CHECKSUM_MISMATCH);
        return undefined;
      }
      kept = true;
      res.once('close', () => void spool.discard());
      return { length: spool.length, open: () => spool.reader() };
    } catch (error) {
      // The client went away mid-body: there is nothing to verify and no one to answer.
      if (req.destroyed || (error as { code?: string }).code === 'ECONNRESET') return undefined;
      throw error;
    } finally {
      if (!kept) await spool.discard();
    }
  }
}

/**
 * checksum-trailer: "If the hash cannot be calculated at the beginning of the upload, it MAY be
 * included as a trailer", announced with `Trailer: Upload-Checksum` (RFC 9110 §6.6.2).
 */
function declaresChecksumTrailer(trailer: string | undefined): boolean {
  return (trailer ?? '').split(',').some((name) => name.trim().toLowerCase() === 'upload-checksum');
}

/** The Upload-Checksum trailer of a body that announced one, parsed; a 400 when it is missing. */
function trailerChecksum(value: string | undefined): UploadChecksum | ErrorEntry {
  return value === undefined ? ERRORS.CHECKSUM_TRAILER_MISSING : parseUploadChecksum(value);
}
