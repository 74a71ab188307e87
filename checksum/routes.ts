import type { Readable } from 'node:stream';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import { factsOf } from '../auth/context.ts';
import { ERRORS, outageOf, sendTusError } from '../errors/catalogue.ts';
import { Spool } from '../storage/spool.ts';
import type { UploadStorage } from '../storage/types.ts';
import { ChecksumVerifier, parseUploadChecksum } from './uploadChecksum.ts';

/** A request body that matched its Upload-Checksum, held in a spool file until tus writes it. */
export type VerifiedBody = { readonly length: number; open(): Promise<Readable> };

const verifiedBodies = new WeakMap<object, VerifiedBody>();

/** The verified body of a request that carried Upload-Checksum, if it had one. */
export function verifiedBodyOf(req: object): VerifiedBody | undefined {
  return verifiedBodies.get(req);
}

type ChecksumParts = { storage: UploadStorage; maxSize: number; logger: Logger };

/**
 * The checksum extension. A PATCH (or a creation with upload) that carries Upload-Checksum is
 * read whole into a spool file and hashed before any of it reaches tus: only a body that
 * matches is written, so a mismatch (460) leaves the upload's offset, its parts and its tail
 * as they were. The spool is bounded by what the upload may still take.
 */
export function checksumVerification({ storage, maxSize, logger }: ChecksumParts): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const header = req.get('upload-checksum');
    const carriesBody = req.get('content-type') === 'application/offset+octet-stream';
    if (header === undefined || !carriesBody || !['PATCH', 'POST'].includes(req.method)) {
      return next();
    }
    const expected = parseUploadChecksum(header);
    if ('status_code' in expected) return sendTusError(res, expected);
    verify(req, res, new ChecksumVerifier(expected)).then(
      (verified) => {
        if (!verified) return;
        verifiedBodies.set(req, verified);
        next();
      },
      (error: unknown) => {
        if (res.headersSent || res.destroyed) return;
        const outage = outageOf(error);
        logger.error({ err: error, uploadId: req.params.id }, 'checksum: spooling the body failed');
        sendTusError(res, outage ?? ERRORS.INTERNAL_ERROR);
      },
    );
  };

  /** How many bytes the request may carry: what is left of the upload's length (or the limit). */
  async function bodyLimit(req: Request): Promise<number> {
    const ceiling = maxSize > 0 ? maxSize : Number.POSITIVE_INFINITY;
    if (req.method === 'POST') {
      const length = req.get('upload-length');
      return length !== undefined && /^\d+$/.test(length) ? Number(length) : ceiling;
    }
    const id = String(req.params.id);
    const record = await storage.recordOf(id).catch((error: { status_code?: number }) => {
      // A missing upload is tus's to answer (404); the body is not read.
      if (error.status_code === 404) return undefined;
      throw error;
    });
    return record?.size ?? ceiling;
  }

  async function verify(
    req: Request,
    res: Response,
    verifier: ChecksumVerifier,
  ): Promise<VerifiedBody | undefined> {
    const limit = await bodyLimit(req);
    const declared = req.get('content-length');
    if (declared !== undefined && Number(declared) > limit) {
      sendTusError(res, ERRORS.ERR_SIZE_EXCEEDED);
      return undefined;
    }
    const spool = await Spool.open();
    const facts = factsOf(req);
    let kept = false;
    try {
      for await (const chunk of req as AsyncIterable<Buffer>) {
        if (spool.length + chunk.length > limit) {
          sendTusError(res, ERRORS.ERR_SIZE_EXCEEDED);
          return undefined;
        }
        verifier.update(chunk);
        facts.bodyBytes = (facts.bodyBytes ?? 0) + chunk.length;
        await spool.append(chunk);
      }
      if (declared !== undefined && spool.length !== Number(declared)) {
        sendTusError(res, ERRORS.CHECKSUM_BODY_INCOMPLETE);
        return undefined;
      }
      if (!verifier.matches()) {
        logger.warn(
          { uploadId: req.params.id, bytes: spool.length },
          'checksum mismatch: the chunk is not stored',
        );
        res.statusMessage = 'Checksum Mismatch';
        sendTusError(res, ERRORS.CHECKSUM_MISMATCH);
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
