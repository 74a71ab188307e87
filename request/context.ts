import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Part } from '@aws-sdk/client-s3';
import type { MetadataValue } from '@tus/s3-store';
import type { Upload } from '@tus/utils';

/**
 * Everything the server knows about one request, created once at the edge (server/app.ts) and
 * handed down: what the request is and who sends it, what features decided about it, and what
 * storage learned while serving it. tusd keeps the same in one `httpContext`.
 *
 * Two ways reach it, both in this file: `contextOf(req)` from anything that holds the request
 * (routes, tus hooks, which get a web Request wrapping the Node one), and `currentContext()`
 * from storage and lockers, which @tus/server calls without the request (its DataStore and
 * Locker interfaces pass only an upload id): that is the one side channel, an AsyncLocalStorage
 * entered with the request at the edge.
 */
export type RequestContext = {
  /** Names every log line of the request: the proxy's X-Request-Id, or a new one. */
  readonly requestId: string;

  // What the request is and who sends it.
  /** The token's `sub`: who creates, and who may touch, the uploads of this request. */
  owner?: string;
  /** The request came with a valid signed download link instead of a token. */
  viaLink?: boolean;
  /** When that link expires (unix seconds): nothing made for the request outlives it. */
  linkExpires?: number;
  /** The method came from X-HTTP-Method-Override on a POST (server/methodOverride.ts). */
  methodOverridden?: boolean;
  /** An X-HTTP-Method-Override the edge refused: answered once the request is authenticated. */
  methodRefusal?: { readonly status_code: number; readonly body: string };
  /**
   * How the route answers errors, decided at the edge: tus's text on tus routes, JSON on the
   * others (downloads, links, proofs, health). Every refusal of the request follows it.
   */
  answers: 'tus' | 'json';
  /** The id of the upload this request creates, once it is chosen (a creation's path names none). */
  createdId?: string;
  /**
   * A tus creation that carries no upload body: it writes nothing under the new upload's lock,
   * so it takes none (as tusd, which locks a creation only when it contains a chunk).
   */
  creationWithoutBody?: boolean;

  // What features decided about it.
  /** A creation answered with a dedupe challenge carries it in its record and its answer. */
  challenge?: string;
  /** What the upload is in a concatenation (`partial`, `final;<ids>`), kept with its record. */
  concat?: string;
  /** What the pre-create hook changed: the new upload's id and client metadata. */
  hookChanges?: { id?: string; metadata?: Record<string, string> };
  /** Headers a hook asked to add to this request's answer. */
  hookHeaders?: Record<string, string>;
  /** Body bytes read from the client so far (post-receive tells them). */
  bodyBytes?: number;
  /** A body that matched its Upload-Checksum, spooled until tus writes it (checksum/). */
  verifiedBody?: { readonly length: number; open(): Promise<Readable> };
  /** The upload a DELETE terminates, as it was before (post-terminate tells it). */
  terminating?: Upload;
  /** Aborted when a post-receive hook stops the upload; its answer is then the hook's. */
  hookStop?: {
    readonly controller: AbortController;
    response?: { StatusCode: number; Body: string; Header: Record<string, string> };
  };

  // What storage learns while serving it.
  /** Content-Length of the request body, when the client declared one. */
  bodyLength?: number;
  /** Offsets this request created or wrote (upload id → offset), known without asking S3. */
  readonly offsets: Map<string, number>;
  /**
   * Aborted when a lock this request holds is lost (another instance may hold it now): its
   * requests to storage stop at once, in flight or not yet sent, instead of finishing.
   */
  readonly lockLost: AbortController;
  /**
   * Upload records (`<id>.info`) this request read or wrote, so it reads each at most once
   * before and once after it takes the upload's lock: taking the lock forgets the record (it may
   * have changed while the request waited), every write replaces it. See storage/s3/MetadataCache.
   */
  readonly records: Map<string, MetadataValue>;
  /** The parts of a multipart upload this request listed for its offset check, for its write. */
  readonly listedParts: Map<string, Part[]>;
  /**
   * The upload's lock, taken at the edge (server/uploadLock.ts) by a request tus would lock (a
   * PATCH, a tus HEAD, a DELETE) before any layer reads the upload: every later layer, tus's own
   * acquisition included, works under it (lockers/DrainableLocker.ts re-enters it).
   */
  uploadLock?: EdgeLock;
  /** Another owner held the upload's lock: this request's owner was checked before waiting. */
  ownerVerified?: boolean;
};

/** The state of the lock a request took at the edge for its upload. */
export type EdgeLock = {
  readonly id: string;
  state: 'taking' | 'held' | 'released';
  /** Another request asked for the lock before tus (which cancels on it) was reached. */
  releaseAsked: boolean;
  /** How tus asks its request to stop, once tus's handler has re-entered the lock (and will unlock it). */
  onRelease?: () => Promise<void> | void;
  /** Releases the lock (once: later calls wait for the first). */
  unlock(): Promise<void>;
};

/** The request behind a tus hook's web Request, or the request itself. */
type WrappedRequest = { runtime?: { node?: { req?: object } } };

export function nodeRequestOf(req: object): object {
  return (req as WrappedRequest).runtime?.node?.req ?? req;
}

/** A proxy's request id is taken when it is short and printable; otherwise a new one is made. */
const REQUEST_ID = /^[\w.:@/+=-]{1,128}$/;

function newContext(requestId: string): RequestContext {
  return {
    requestId,
    answers: 'json',
    offsets: new Map(),
    lockLost: new AbortController(),
    records: new Map(),
    listedParts: new Map(),
  };
}

const contexts = new WeakMap<object, RequestContext>();
const current = new AsyncLocalStorage<RequestContext>();

/** The context of a Node request (or of the one behind a tus hook's web Request). */
export function contextOf(req: object): RequestContext {
  const key = nodeRequestOf(req);
  let found = contexts.get(key);
  if (!found) {
    const header = (key as Partial<IncomingMessage>).headers?.['x-request-id'];
    found = newContext(
      typeof header === 'string' && REQUEST_ID.test(header) ? header : randomUUID(),
    );
    contexts.set(key, found);
  }
  return found;
}

/** The context of the request being served, for code @tus/server calls without it. */
export function currentContext(): RequestContext | undefined {
  return current.getStore();
}

/**
 * The edge: the request gets its context, its id is echoed back, and everything that runs for
 * it (and everything that awaits) sees the context as `currentContext()`.
 */
export function beginRequest(req: IncomingMessage, res: ServerResponse, next: () => void): void {
  const context = contextOf(req);
  res.setHeader('X-Request-Id', context.requestId);
  current.run(context, next);
}

/** Runs `work` in a context of its own (work that is no request's: sweeps, start-up, tests). */
export function inContext<T>(work: () => T, context = newContext(randomUUID())): T {
  return current.run(context, work);
}

/** A Content-Length header as a byte count; undefined when absent or not a plain number. */
export function declaredLength(header: string | undefined): number | undefined {
  if (header === undefined || !/^\d{1,16}$/.test(header)) return undefined;
  const length = Number(header);
  return Number.isSafeInteger(length) ? length : undefined;
}
