import { Metadata, TUS_RESUMABLE, Upload } from '@tus/utils';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import { answerError, HttpError, isNotFoundError } from '../errors/answer.ts';
import { outageOf } from '../errors/catalogue.ts';
import { contextOf } from '../request/context.ts';
import type { UploadStorage } from '../storage/types.ts';
import type { UploadLifecycle } from './lifecycle.ts';
import type { UploadHooks } from './UploadHooks.ts';
import type { HookHttpResponse } from './wire.ts';

type HookRouteParts = {
  hooks: UploadHooks;
  storage: UploadStorage;
  /** The tus DataStore (reference-aware termination): a stopped upload is removed through it. */
  remove(id: string): Promise<void>;
  lifecycle: UploadLifecycle;
  logger: Logger;
};

/** Sends what a hook decided (tusd's HTTPResponse), as tus answers: with Tus-Resumable. */
function sendHookResponse(res: Response, response: HookHttpResponse): void {
  res
    .status(response.StatusCode || 200)
    .set({ ...response.Header, 'Tus-Resumable': TUS_RESUMABLE })
    .send(response.Body);
}

/** A hook refused (its answer), or its receiver is away (503); anything else goes on. */
function answerFailure(req: Request, res: Response, next: NextFunction, error: unknown): void {
  if (error instanceof HttpError || outageOf(error)) answerError(req, res, error);
  else next(error);
}

/**
 * pre-create for creations tus makes (and dedupe hits): the hook sees the upload as the request
 * describes it, before anything is stored. Final uploads run it in their own route.
 */
export function preCreate({ hooks }: HookRouteParts): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    if (req.method !== 'POST' || !hooks.has('pre-create')) return next();
    const length = req.get('upload-length');
    let metadata: Upload['metadata'];
    try {
      const header = req.get('upload-metadata');
      metadata = header === undefined ? {} : Metadata.parse(header);
    } catch {
      // tus answers malformed metadata itself; nothing will be created.
      return next();
    }
    const size = length !== undefined && /^\d+$/.test(length) ? Number(length) : 0;
    const deferred = req.get('upload-defer-length') === '1';
    // The id is tus's to give (or the hook's); this one only carries the request's facts.
    const upload = new Upload({
      id: 'pre-create',
      size: deferred ? undefined : size,
      offset: 0,
      metadata,
    });
    hooks.preCreate(req, upload).then(
      () => next(),
      (error: unknown) => answerFailure(req, res, next, error),
    );
  };
}

/**
 * DELETE /files/:id: pre-terminate may keep the upload; the upload as it was is kept for
 * post-terminate.
 */
export function preTerminate({ hooks, storage }: HookRouteParts): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    if (req.method !== 'DELETE') return next();
    if (!hooks.has('pre-terminate') && !hooks.has('post-terminate')) return next();
    const id = String(req.params.id);
    storage.datastore
      .getUpload(id)
      .then(async (upload) => {
        contextOf(req).terminating = upload;
        await hooks.preTerminate(req, await hooks.fileInfoOf(upload));
        next();
      })
      .catch((error: unknown) => {
        // A missing upload is tus's to answer (404).
        if (isNotFoundError(error)) return next();
        answerFailure(req, res, next, error);
      });
  };
}

/** Progress is told at most once per second per upload (tusd's progress interval). */
const PROGRESS_MS = 1000;

/** Whether an upload's progress may be told now; `told` is when each upload was last told. */
function mayTell(told: Map<string, number>, id: string, now: number): boolean {
  const last = told.get(id);
  if (last !== undefined && now - last < PROGRESS_MS) return false;
  told.delete(id);
  told.set(id, now);
  // Forget uploads not heard of for a while (insertion order is oldest first).
  for (const [key, at] of told) {
    if (now - at < 60_000) break;
    told.delete(key);
  }
  return true;
}

/**
 * post-receive while a PATCH's body arrives: the bytes received so far, once a second and when
 * the request ends. An answer with StopUpload stops the body; the upload is then terminated
 * and the client gets the hook's answer (see stoppedUpload).
 */
export function postReceive({ hooks, storage, logger }: HookRouteParts): RequestHandler {
  const lastTold = new Map<string, number>();
  return (req: Request, res: Response, next: NextFunction) => {
    if (req.method !== 'PATCH' || !hooks.has('post-receive')) return next();
    const id = String(req.params.id);
    const start = Number(req.get('upload-offset'));
    if (!Number.isSafeInteger(start)) return next();
    const facts = contextOf(req);
    const stop: NonNullable<typeof facts.hookStop> = { controller: new AbortController() };
    facts.hookStop = stop;
    let told = 0;
    let record: Promise<Upload | undefined> | undefined;
    // Counted where the body is read (a 'data' listener here would start the body flowing).
    const tell = () => {
      const received = facts.bodyBytes ?? 0;
      if (received === told || stop.response || !mayTell(lastTold, id, Date.now())) return;
      told = received;
      const offset = start + received;
      record ??= storage.recordOf(id).catch(() => undefined);
      void record.then(async (upload) => {
        if (!upload) return;
        const info = await hooks.fileInfoOf({ ...upload, offset } as Upload, false);
        const response = await hooks.postReceive(req, info);
        if (response && !stop.response) {
          logger.info({ uploadId: id }, 'post-receive hook stopped the upload');
          stop.response = response;
          stop.controller.abort();
        }
      });
    };
    const timer = setInterval(tell, PROGRESS_MS);
    res.once('close', () => {
      clearInterval(timer);
      tell();
    });
    next();
  };
}

/**
 * The answer for a request whose upload a post-receive hook stopped: the upload is terminated
 * (tusd does the same) and the client gets the hook's answer. False when it was not stopped.
 */
export function stoppedUpload({ remove, storage, lifecycle, logger }: HookRouteParts) {
  return async (req: Request, res: Response): Promise<boolean> => {
    const response = contextOf(req).hookStop?.response;
    if (!response) return false;
    const id = String(req.params.id);
    const upload = await storage.datastore.getUpload(id).catch(() => undefined);
    try {
      await remove(id);
      if (upload) lifecycle.terminated(req, upload);
    } catch (error) {
      logger.error({ uploadId: id, err: error }, 'stopping the upload: termination failed');
    }
    // The rest of the body is not read: the connection goes with the answer.
    res.set('Connection', 'close');
    sendHookResponse(res, response);
    return true;
  };
}
