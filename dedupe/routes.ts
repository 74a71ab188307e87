import { Metadata, TUS_RESUMABLE, Uid, Upload } from '@tus/utils';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import { answerError } from '../errors/answer.ts';
import { ERRORS, type ErrorEntry, outageOf, sendJsonError } from '../errors/catalogue.ts';
import { contextOf } from '../request/context.ts';
import { stampMetadata } from '../request/metadata.ts';
import type { UploadStorage } from '../storage/types.ts';
import { checkUploadMetadata } from './claims.ts';

/** Makes the absolute URL of a path from the request's headers (the server's URL builder). */
type UrlBuilder = (header: (name: string) => string | undefined, path: string) => string;

import type { Dedupe } from './Dedupe.ts';
import { formatChallenge } from './proof.ts';
import type { ProofFloor } from './proofTiming.ts';

// CORS headers are the server's one policy's (server/cors.ts), set on every answer.
const TUS_HEADERS = { 'Tus-Resumable': TUS_RESUMABLE };

type DedupeRouteParts = {
  dedupe: Dedupe;
  storage: UploadStorage;
  logger: Logger;
  maxSize: number;
  urlFor: UrlBuilder;
  /** Told of uploads these routes create or finish (post-* hooks, metrics). */
  lifecycle?: {
    created(req: object, upload: Upload): void;
    finished(req: object, upload: Upload): void;
  };
  /** DEDUPE_PROOF: creations claiming a sha256 get a challenge another owner's content answers. */
  proofs?: boolean;
  /** Whose proof budget a request draws on: its token's `sub`, or the client's address key. */
  identityOf: (req: Request) => string;
  /** The earliest moment a verified proof is answered (DEDUPE_PROOF_FLOOR_MS). */
  proofFloor: ProofFloor;
};

/** Requests the dedupe routes cannot answer go on to tus unchanged, errors included. */
function orTus(
  logger: Logger,
  handler: (req: Request, res: Response) => Promise<boolean>,
): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    handler(req, res).then(
      (handled) => {
        if (!handled) next();
      },
      (error: Error) => {
        if (res.headersSent) return;
        if (!outageOf(error)) {
          logger.warn(
            { err: { message: error.message } },
            'dedupe: falling back to a normal upload',
          );
          return next();
        }
        answerError(req, res, error, {
          failed: (err, outage) =>
            logger.error({ err, uploadId: req.params.id }, outage?.body.trimEnd()),
        });
      },
    );
  };
}

/**
 * POST /files/ announcing a sha256 or md5. When the requester (its token's `sub`) already
 * uploaded content with every claimed digest and the same length, the upload is created
 * finished, sharing those bytes, and nothing needs to be sent. Otherwise a sha256 claim gets a
 * challenge with the creation (Upload-Dedupe-Challenge), which a client holding the bytes may
 * answer at POST /files/:id/proof; a hash alone never hands out bytes.
 */
export function dedupeCreation({
  dedupe,
  logger,
  maxSize,
  urlFor,
  lifecycle,
  proofs,
  identityOf,
}: DedupeRouteParts): RequestHandler {
  return orTus(logger, async (req, res) => {
    const length = req.get('upload-length');
    const rawMetadata = req.get('upload-metadata');
    if (req.method !== 'POST' || !length || !rawMetadata || !/^\d+$/.test(length)) return false;
    if (req.get('upload-concat')) return false;
    const size = Number(length);
    if (maxSize > 0 && size > maxSize) return false;
    let metadata: Upload['metadata'];
    try {
      metadata = Metadata.parse(rawMetadata);
    } catch {
      return false;
    }
    const facts = contextOf(req);
    // A pre-create hook may have chosen the id (and the metadata: stampMetadata applies it).
    const id = facts.hookChanges?.id ?? Uid.rand();
    const upload = new Upload({ id, size, offset: 0, metadata });
    if (checkUploadMetadata(upload)) return false;

    const entry = facts.owner && (await dedupe.findOwned(facts.owner, size, upload.metadata));
    if (!entry) {
      // Off by default: a proof tells whether anyone stored a guessable file (README, Dedupe).
      const challenge = proofs
        ? await dedupe.challengeFor(identityOf(req), size, upload.metadata)
        : undefined;
      // tus creates the upload; the challenge goes into its record and its answer.
      if (challenge) facts.challenge = formatChallenge(challenge);
      return false;
    }
    upload.creation_date = new Date().toISOString();
    upload.metadata = stampMetadata(upload.metadata, req);
    const linked = await dedupe.createLinkedUpload(upload, entry);
    if (!linked) return false;
    logger.info(
      { uploadId: upload.id, owner: entry.owner, size },
      'dedupe hit: upload created finished',
    );
    upload.offset = size;
    dedupe.counted?.hit('owner');
    lifecycle?.created(req, upload);
    lifecycle?.finished(req, upload);
    res
      .status(201)
      .set({
        ...TUS_HEADERS,
        Location: urlFor((name) => req.get(name), `/files/${upload.id}`),
        'Upload-Offset': String(size),
      })
      .end();
    return true;
  });
}

/**
 * A client that ignores the creation response's Upload-Offset (stock tus-js-client) PATCHes at
 * offset 0 next. For an upload created finished by dedupe, the answer is its final offset and
 * the body is not stored.
 */
export function dedupeLinkedPatch({ storage, logger }: DedupeRouteParts): RequestHandler {
  return orTus(logger, async (req, res) => {
    const id = String(req.params.id);
    if (req.method !== 'PATCH' || req.get('upload-offset') !== '0') return false;
    if ((await storage.contentKeyOf(id).catch(() => id)) === id) return false;
    const upload = await storage.datastore.getUpload(id);
    // The body is not stored: Node discards what is still arriving once the answer is sent.
    // (Closing the connection instead makes clients fail the request with EPIPE.)
    res
      .status(204)
      .set({ ...TUS_HEADERS, 'Upload-Offset': String(upload.size ?? 0) })
      .end();
    return true;
  });
}

/**
 * POST /files/:id/proof with `{"answer": "<hex>"}`: the answer to the challenge the upload's
 * creation carried. Right: the upload is finished, sharing the stored bytes (204 with its
 * Upload-Offset). Wrong, nothing to match, or the proof budget spent: 403, and the client
 * uploads the bytes as usual. Every verified proof, whatever its outcome, is answered at the
 * same floor after it arrived, so the time does not tell whether the content is stored.
 */
export function dedupeProof({
  dedupe,
  logger,
  storage,
  lifecycle,
  identityOf,
  proofFloor,
}: DedupeRouteParts): RequestHandler {
  const fail = (res: Response, entry: ErrorEntry) => sendJsonError(res, entry, TUS_HEADERS);
  return async (req, res) => {
    const arrivedAt = proofFloor.arrived();
    const id = String(req.params.id);
    const answer = (req.body as { answer?: unknown } | undefined)?.answer;
    if (typeof answer !== 'string' || !/^[0-9a-f]{64}$/i.test(answer)) {
      return fail(res, ERRORS.INVALID_PROOF_REQUEST);
    }
    try {
      const { outcome, size } = await dedupe.prove(id, answer, identityOf(req));
      if (outcome === 'no-challenge') return fail(res, ERRORS.NO_CHALLENGE);
      // Stored content or none, budget left or spent: one deadline for every verified proof.
      if (await proofFloor.wait(arrivedAt, size)) {
        logger.warn({ uploadId: id, size }, 'dedupe: proof verification overran its time floor');
      }
      if (outcome === 'refused') return fail(res, ERRORS.PROOF_REFUSED);
      logger.info({ uploadId: id, size }, 'dedupe: proof of ownership accepted, upload finished');
      const upload = await storage.datastore.getUpload(id).catch(() => undefined);
      if (upload) lifecycle?.finished(req, upload);
      res
        .status(204)
        .set({ ...TUS_HEADERS, 'Upload-Offset': String(size) })
        .end();
    } catch (error) {
      answerError(req, res, error, {
        headers: TUS_HEADERS,
        failed: (err, outage) =>
          logger.error({ err, uploadId: id }, outage?.body.trimEnd() ?? 'dedupe: proof failed'),
      });
    }
  };
}
