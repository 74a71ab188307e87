import { type Lock, type Locker, Uid, Upload } from '@tus/utils';
import type { Logger } from 'pino';
import { HttpError, isNotFoundError } from '../errors/answer.ts';
import { ERRORS } from '../errors/catalogue.ts';
import { contextOf } from '../request/context.ts';
import { concatOf, OWNER_KEY, storedConcat } from '../request/metadata.ts';
import type { ContentSource, UploadStorage } from '../storage/types.ts';

/** What finishing adds to the creation's answer (a pre-finish hook's HTTPResponse). */
type FinishAnswer = { status_code?: number; body?: string; headers?: Record<string, string> };

/** The lifecycle callbacks every creation runs through (hooks/): validation, owner, dedupe. */
type CreationHooks = {
  onUploadCreate(req: object, upload: Upload): Promise<{ metadata?: Upload['metadata'] }>;
  onUploadFinish(req: object, upload: Upload): Promise<FinishAnswer>;
};

export type ConcatenationParts = {
  storage: UploadStorage;
  /** The tus DataStore (reference-aware termination): partials are removed through it. */
  remove(id: string): Promise<void>;
  locker: Locker;
  hooks: CreationHooks;
  /**
   * With dedupe on: hashes the sources while storage concatenates them, so the final's digest
   * is ready when it finishes (dedupe's hashSources).
   */
  hashSources?: (upload: Upload, sources: ContentSource[]) => Promise<void>;
  /**
   * The pre-create hook, told of the final once its length is known: it may refuse it, or
   * choose its id and metadata (applied through the request's facts).
   */
  preCreate?: (req: object, upload: Upload) => Promise<void>;
  /** Told of the final once it is made and once it is finished (post-* hooks, metrics). */
  lifecycle?: {
    created(req: object, upload: Upload): void;
    finished(req: object, upload: Upload): void;
  };
  /** MAX_UPLOAD_SIZE; 0 = unlimited. */
  maxSize: number;
  logger: Logger;
};

/**
 * The final upload of the concatenation extension: a new upload whose bytes are those of its
 * partial uploads, in the order named, made inside storage (S3 copies parts itself). The
 * partials are removed once the final exists; the final is then finished like any upload
 * (dedupe, hooks).
 */
export class Concatenation {
  constructor(private readonly parts: ConcatenationParts) {}

  /** Creates the final upload of `ids` for the request's owner, with `metadata`. */
  async createFinal(
    req: object,
    ids: string[],
    metadata: Upload['metadata'],
  ): Promise<{ upload: Upload; answer: FinishAnswer }> {
    const { storage, hooks, logger } = this.parts;
    const upload = new Upload({ id: Uid.rand(), offset: 0, metadata });
    contextOf(req).concat = storedConcat({ kind: 'final', ids });

    // Every partial is locked (in one order, so two finals cannot deadlock), then the final:
    // no PATCH, termination or other final touches them while the bytes are put together.
    // A partial named more than once (tus allows it) is locked, and later removed, once.
    const partials = [...new Set(ids)].sort();
    const locks = await this.lockAll(partials);
    try {
      const sources = await this.sourcesOf(ids, contextOf(req).owner);
      upload.size = sources.reduce((sum, { size }) => sum + size, 0);
      const { maxSize } = this.parts;
      if (maxSize > 0 && upload.size > maxSize) throw HttpError.of(ERRORS.ERR_MAX_SIZE_EXCEEDED);
      await this.parts.preCreate?.(req, upload);
      const chosen = contextOf(req).hookChanges?.id;
      if (chosen) upload.id = chosen;
      locks.push(...(await this.lockAll([upload.id])));
      // Like any creation, once its length is known (tusd, too, checks the partials first).
      const created = await hooks.onUploadCreate(req, upload);
      if (created.metadata) upload.metadata = created.metadata;
      await Promise.all([
        storage.concatenate(upload, sources),
        this.parts.hashSources?.(upload, sources),
      ]);
      upload.offset = upload.size;
      // The partials' bytes now live in the final: they are removed (README, concatenation).
      // The final exists whatever happens here: a partial left behind is only logged.
      for (const id of partials) {
        await this.parts.remove(id).catch((error: Error) => {
          logger.warn(
            { uploadId: id, err: { message: error.message } },
            'concatenation: a partial upload could not be removed',
          );
        });
      }
    } finally {
      await Promise.all(locks.map((lock) => lock.unlock().catch(() => undefined)));
    }
    logger.info(
      { uploadId: upload.id, partials: ids.length, size: upload.size },
      'concatenation: final upload created',
    );
    this.parts.lifecycle?.created(req, upload);
    const answer = await hooks.onUploadFinish(req, upload);
    this.parts.lifecycle?.finished(req, upload);
    return { upload, answer };
  }

  private async lockAll(ids: string[]): Promise<Lock[]> {
    const locks: Lock[] = [];
    try {
      for (const id of ids) {
        const lock = this.parts.locker.newLock(id);
        // A holder asked to let go (a PATCH draining at shutdown) is waited for; this work is short.
        await lock.lock(new AbortController().signal, () => undefined);
        locks.push(lock);
      }
      return locks;
    } catch (error) {
      await Promise.all(locks.map((lock) => lock.unlock().catch(() => undefined)));
      throw error;
    }
  }

  /** Each partial's stored bytes, once it is known to be a finished partial of this owner. */
  private async sourcesOf(ids: string[], owner: string | undefined): Promise<ContentSource[]> {
    const { storage } = this.parts;
    const sources: ContentSource[] = [];
    for (const id of ids) {
      const record = await storage.recordOf(id).catch((error: unknown) => {
        if (isNotFoundError(error)) return undefined;
        throw error;
      });
      // Another owner's upload does not exist for this one, as everywhere else.
      if (!record || record.metadata?.[OWNER_KEY] !== owner) {
        throw HttpError.of(ERRORS.CONCAT_PARTIAL_UNKNOWN);
      }
      if (concatOf(record.metadata)?.kind !== 'partial') {
        throw HttpError.of(ERRORS.CONCAT_NOT_PARTIAL);
      }
      const content = await storage.stat(id);
      if (!content || content.size !== record.size) {
        throw HttpError.of(ERRORS.CONCAT_PARTIAL_UNFINISHED);
      }
      sources.push({ key: content.key, size: content.size });
    }
    return sources;
  }
}
