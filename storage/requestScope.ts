import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * What the request being served tells storage beyond what the tus DataStore interface passes:
 * how many body bytes it declared, and the offsets storage itself just wrote in this request.
 * Storage uses it only to skip work it can prove unnecessary; without a scope it does it all.
 */
export type RequestScope = {
  /** Content-Length of the request body, when the client declared one. */
  readonly bodyLength?: number;
  /** Offsets this request created or wrote (upload id → offset), known without asking S3. */
  readonly offsets: Map<string, number>;
  /**
   * Aborted when a lock this request holds is lost (another instance may hold it now): its
   * requests to storage stop at once, in flight or not yet sent, instead of finishing.
   */
  readonly lockLost: AbortController;
};

const scopes = new AsyncLocalStorage<RequestScope>();

/** Runs `work` (and everything it awaits) inside the scope of one request. */
export function inRequestScope<T>(bodyLength: number | undefined, work: () => T): T {
  return scopes.run({ bodyLength, offsets: new Map(), lockLost: new AbortController() }, work);
}

export function requestScope(): RequestScope | undefined {
  return scopes.getStore();
}

/** A Content-Length header as a byte count; undefined when absent or not a plain number. */
export function declaredLength(header: string | undefined): number | undefined {
  if (header === undefined || !/^\d{1,16}$/.test(header)) return undefined;
  const length = Number(header);
  return Number.isSafeInteger(length) ? length : undefined;
}
