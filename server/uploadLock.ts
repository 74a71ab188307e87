import type { Locker } from '@tus/utils';
import type { RequestHandler } from 'express';
import type { Logger } from 'pino';
import { answerError } from '../errors/answer.ts';
import { HeldByAnotherOwner } from '../lockers/owners.ts';
import { contextOf, type EdgeLock } from '../request/context.ts';
import { takesUploadLock } from './requests.ts';

type UploadLockParts = {
  locker: Locker;
  /** Whether the request may touch the upload (server/access.ts): next() when it may. */
  ownership: RequestHandler;
  logger: Logger;
};

/**
 * Takes the upload's lock for a request tus would lock, before any layer reads the upload, then
 * checks the upload's owner under it, so the record is read once, under the lock, by everything
 * that serves the request: ownership, concatenation, dedupe, checksums, hooks and tus itself
 * (lockers/DrainableLocker.ts lets tus re-enter it; tus's unlock ends it, and so does the end of
 * the response).
 *
 * Another request that wants the lock asks this one to release it; before tus's handler runs
 * the request cannot stop, so the ask is kept and tus is told as soon as it takes the lock
 * (tusd does the same: its handler takes the lock before reading the upload). With auth on, a
 * holder of another owner is not asked (lockers/owners.ts): the upload's owner is checked first,
 * from the record read before waiting, so a stranger gets its 404 at once.
 */
export function uploadLock({ locker, ownership, logger }: UploadLockParts): RequestHandler {
  return (req, res, next) => {
    if (!takesUploadLock(req)) return next();
    const context = contextOf(req);
    const id = String(req.params.id);
    const lock = locker.newLock(id);
    const stop = new AbortController();
    let closed = false;
    let unlocking: Promise<void> | undefined;
    const edge: EdgeLock = {
      id,
      state: 'taking',
      releaseAsked: false,
      unlock() {
        if (edge.state === 'held') {
          edge.state = 'released';
          unlocking = lock.unlock();
        }
        return unlocking ?? Promise.resolve();
      },
    };
    context.uploadLock = edge;
    res.once('close', () => {
      closed = true;
      stop.abort();
      // Once tus holds it, tus unlocks it when its write is persisted, which may be after the
      // client left: a resuming client then sees every byte that was received.
      if (edge.onRelease) return;
      edge.unlock().catch((error: unknown) => {
        logger.error({ err: error, uploadId: id }, 'unlocking the upload failed');
      });
    });
    const release = () => {
      edge.releaseAsked = true;
      return edge.onRelease?.();
    };
    const fail = (error: unknown) => {
      if (closed) return;
      answerError(req, res, error, {
        failed: (err, outage) =>
          logger.error(
            { err, uploadId: id },
            outage?.body.trimEnd() ?? 'locking the upload failed',
          ),
      });
    };
    // True once held by a request still waiting for its answer.
    const take = () =>
      lock.lock(stop.signal, release).then(async () => {
        edge.state = 'held';
        if (closed) await edge.unlock();
        return !closed;
      });
    const proceed = (held: boolean) => {
      if (held) void ownership(req, res, next);
    };
    take().then(proceed, (error: unknown) => {
      if (!(error instanceof HeldByAnotherOwner) || closed) return fail(error);
      ownership(req, res, (refusal?: unknown) => {
        if (refusal) return fail(refusal);
        context.ownerVerified = true;
        take().then(proceed, fail);
      });
    });
  };
}
