import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { type DataStore, Upload } from '@tus/utils';

/** What the download side needs to know about a finished upload's bytes. */
export type StoredContent = {
  /** Where the bytes live: the upload's own id, or the upload it is linked to (dedupe). */
  key: string;
  size: number;
  /** When this upload finished: its own date, never that of bytes it shares (uploadValidators). */
  lastModified: Date;
  /**
   * A strong validator (RFC 9110 §8.8.3), quoted, of this upload (not of bytes it shares), that
   * changes whenever the bytes could.
   */
  etag: string;
  /** The upload's tus metadata (filename, filetype, …) as the client sent it. */
  metadata: Record<string, string | null>;
};

/**
 * The server-computed digests of a finished upload's bytes, kept with every reference to them,
 * and the owner (`sub`) of the referencing upload when auth is on.
 */
export type ContentRecord = {
  sha256: string;
  /** Computed only for uploads that claimed an md5 (or content such an upload stored again). */
  md5?: string;
  size: number;
  sub?: string;
};

/**
 * Which uploads use which stored content, kept in storage itself so it survives a Redis flush:
 * content stays while any reference remains. `owner` is the key the bytes live under.
 */
export interface ContentRefs {
  add(owner: string, uploadId: string, record: ContentRecord): Promise<void>;
  get(owner: string, uploadId: string): Promise<ContentRecord | undefined>;
  remove(owner: string, uploadId: string): Promise<void>;
  /** Whether any upload still uses the bytes stored under `owner`. */
  isReferenced(owner: string): Promise<boolean>;
  /** Every reference in storage, for rebuilding the index. */
  all(): AsyncIterable<{ owner: string; uploadId: string; record: ContentRecord }>;
}

/** Stored bytes an upload is made of (concatenation): a content key and its length. */
export type ContentSource = { key: string; size: number };

/** What a presigned URL allows and how the backend answers it. */
export type PresignOptions = {
  /** The request the URL is for: a signature covers its method. */
  method: 'GET' | 'HEAD';
  expiresInSeconds: number;
  contentType: string;
  contentDisposition: string;
};

/** An inclusive byte range, as HTTP ranges are written. */
export type ByteRange = { start: number; end: number };

/**
 * One storage backend: the tus DataStore that writes uploads, plus the read side
 * that downloads and health checks use. A new backend is a new file beside the others.
 */
export interface UploadStorage {
  readonly kind: 'file' | 's3';
  readonly datastore: DataStore;
  /** One line for the start-up log; never contains a secret. */
  readonly description: string;
  /** Prepares the backend (directory, bucket); throws StorageError with a one-line reason. */
  init(): Promise<void>;
  /** Cheap reachability check for /readyz; throws with a short reason. */
  check(): Promise<void>;
  /**
   * The upload's record (length, metadata) as stored, without working out its offset (which on
   * S3 lists the parts); a missing upload rejects with tus's 404.
   */
  recordOf(id: string): Promise<Upload>;
  /** Size and validators of a finished upload's content, or undefined when there is none. */
  stat(id: string): Promise<StoredContent | undefined>;
  /**
   * Records in the record of an upload that just finished with bytes of its own when it
   * finished (its downloads' validators); returns the upload with that time in its metadata.
   */
  markFinished(upload: Upload): Promise<Upload>;
  /**
   * Where the upload's bytes live, as tusd's stores describe it to hooks (`Type` filestore with
   * `Path`, or s3store with `Bucket` and `Key`).
   */
  locationOf(id: string): Promise<Record<string, string>>;
  /** Streams the content (or the inclusive range of it); destroying the stream stops the read. */
  read(id: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable>;
  /** Streams the bytes stored under a content key, whether or not its own record still exists. */
  readContent(key: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable>;
  /**
   * A URL that lets its holder GET (or HEAD) the bytes under a content key straight from the
   * backend for `expiresInSeconds`, answered with these headers; only backends clients can reach.
   */
  presignedUrlOf?(key: string, options: PresignOptions): Promise<string>;
  close(): Promise<void>;

  // Shared content (dedupe): several uploads may read the bytes stored under one owner's key.
  readonly refs: ContentRefs;
  /** The key an upload's bytes live under: its own id, or the owner it was linked to. */
  contentKeyOf(id: string): Promise<string>;
  /** Size of the bytes stored under a content key, or undefined when they are gone. */
  contentSize(key: string): Promise<number | undefined>;
  /**
   * Writes a finished upload record whose bytes are the owner's; replaces any record of that id.
   * The record keeps the upload's finish time, or gets the current time as it.
   */
  createLinked(upload: Upload, owner: string): Promise<void>;
  /** Deletes an upload's record (state) but leaves the bytes under its key. */
  removeRecord(id: string): Promise<void>;
  /** Deletes the bytes stored under a content key. */
  removeContent(key: string): Promise<void>;

  /**
   * Creates `upload` (its size the sum of the sources') finished, its bytes those of `sources`
   * in order; on failure nothing of it is left. The sources stay as they are.
   */
  concatenate(upload: Upload, sources: ContentSource[]): Promise<void>;
}

/** A storage failure that start-up reports as one line, without a stack trace. */
export class StorageError extends Error {
  override name = 'StorageError';
}

/** A backing service did not answer: the request may succeed later, so it is a 503, never a 404. */
export class ServiceUnavailable extends Error {
  override name = 'ServiceUnavailable';
  constructor(
    readonly service: 'storage' | 'redis' | 'hooks',
    cause: unknown,
  ) {
    super(`${service} unavailable: ${(cause as Error | undefined)?.message ?? String(cause)}`, {
      cause,
    });
  }
}

/**
 * The owner whose bytes a linked (deduplicated) upload shares, named in its record's
 * `storage.path`; undefined for an upload with bytes of its own (whose stored record has no
 * storage field, or its own id there).
 */
export function linkedOwner(record: Upload | undefined, id: string): string | undefined {
  const owner = record?.storage?.path;
  return owner && owner !== id ? owner : undefined;
}

/**
 * Where an upload's record keeps the time it finished (ISO 8601, milliseconds). A `tus-` key:
 * clients can neither set nor read it (request/metadata.ts), hooks do not see it.
 */
export const FINISHED_KEY = 'tus-finished';

/** The upload with `at` as the time it finished. */
export function stampFinished(upload: Upload, at: Date): Upload {
  return new Upload({
    ...upload,
    metadata: { ...upload.metadata, [FINISHED_KEY]: at.toISOString() },
  });
}

/** The upload as it is, when it carries a finish time, or stamped as finished now. */
export function finishedNow(upload: Upload): Upload {
  return upload.metadata?.[FINISHED_KEY] ? upload : stampFinished(upload, new Date());
}

/** What storage says of the bytes under a content key (the object's or file's own facts). */
export type ContentFacts = { lastModified: Date; identity: string };

/**
 * An upload's own validators (RFC 9110 §8.8). Shared bytes carry the date of the upload that
 * stored them first, so they never make a validator: Last-Modified is the time the upload
 * finished, and the ETag a digest of its id, its size and that time, which tells nothing the
 * response does not already say. A finished upload's bytes never change, and an id used again
 * (after a deletion) finishes at another time, so the ETag changes whenever the bytes could.
 * Records written before finish times were kept: an upload with bytes of its own takes its
 * content's facts (its own), a linked one its record's creation date (its own too).
 */
export function uploadValidators(
  id: string,
  size: number,
  record: Upload,
  key: string,
  content: ContentFacts,
): { lastModified: Date; etag: string } {
  const finished = record.metadata?.[FINISHED_KEY];
  let basis: string;
  let at: number;
  if (finished && !Number.isNaN(Date.parse(finished))) {
    basis = `finished ${finished}`;
    at = Date.parse(finished);
  } else if (key === id) {
    basis = `content ${content.identity}`;
    at = content.lastModified.getTime();
  } else {
    const created = Date.parse(record.creation_date ?? '');
    basis = `created ${record.creation_date ?? ''}`;
    at = Number.isNaN(created) ? 0 : created;
  }
  const tag = createHash('sha256').update(`${id}\n${size}\n${basis}`).digest('hex');
  return { lastModified: new Date(at), etag: `"${tag.slice(0, 32)}"` };
}
