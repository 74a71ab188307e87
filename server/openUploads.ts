import { TUS_RESUMABLE } from '@tus/utils';
import type { Request, RequestHandler } from 'express';
import { ERRORS, sendJsonError } from '../errors/catalogue.ts';
import { identityOf } from './rateLimit.ts';

/**
 * Open uploads: requests whose body is being received. Each one holds a socket, its buffers and
 * often a storage handle for as long as its client keeps sending (a body may idle up to
 * REQUEST_IDLE_TIMEOUT_SECONDS between bytes), so their number is capped per identity and in
 * total. Counted in this process only: what is protected is this process's memory and fds.
 */

/** Seconds a refused client waits before trying again: its own, or anyone's, uploads end by then. */
const OPEN_UPLOADS_RETRY_AFTER_SECONDS = 5;

/** One open upload's place in the count; releasing it more than once releases it once. */
export type OpenUploadSlot = { release(): void };

/** Why a request was refused: its identity holds its cap, or the process holds the total. */
export type OpenUploadRefusal = 'identity' | 'total';

/** Counts open uploads per key and in total; a cap of 0 is no cap. */
export class OpenUploadCounter {
  readonly #perKey: number;
  readonly #total: number;
  readonly #open = new Map<string, number>();
  #size = 0;

  constructor(caps: { perKey: number; total: number }) {
    this.#perKey = caps.perKey;
    this.#total = caps.total;
  }

  /** Takes a slot for `key`, or says which cap refuses it (the identity's first). */
  acquire(key: string): { slot: OpenUploadSlot } | { refused: OpenUploadRefusal } {
    const held = this.#open.get(key) ?? 0;
    if (this.#perKey > 0 && held >= this.#perKey) return { refused: 'identity' };
    if (this.#total > 0 && this.#size >= this.#total) return { refused: 'total' };
    this.#open.set(key, held + 1);
    this.#size += 1;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.#size -= 1;
      const left = (this.#open.get(key) ?? 1) - 1;
      // A key that holds nothing is forgotten: the map never grows with past clients.
      if (left > 0) this.#open.set(key, left);
      else this.#open.delete(key);
    };
    return { slot: { release } };
  }

  /** Open uploads of `key`. */
  countOf(key: string): number {
    return this.#open.get(key) ?? 0;
  }

  /** Open uploads in total. */
  get size(): number {
    return this.#size;
  }

  /** Keys that hold at least one open upload. */
  get keys(): number {
    return this.#open.size;
  }
}

/**
 * Whether a request brings upload bytes: a PATCH (also a POST overridden to PATCH, the method
 * decided once at the edge), or a creation with upload (a POST with a body).
 */
export function carriesUploadBody(req: {
  method: string;
  get(name: string): string | undefined;
}): boolean {
  if (req.method === 'PATCH') return true;
  if (req.method !== 'POST') return false;
  const length = req.get('content-length');
  if (length !== undefined) return /^\d+$/.test(length.trim()) && Number(length) > 0;
  return req.get('transfer-encoding') !== undefined;
}

/**
 * MAX_OPEN_UPLOADS_PER_CLIENT and MAX_OPEN_UPLOADS: mounted after authentication and ownership,
 * before anything reads the body. Over the identity's cap → 429, over the total → 503, both
 * with Retry-After, before a byte of the body is read; the connection is closed after the answer
 * so that the unread body is not received either. A slot is released when the response closes,
 * however the request ends (answered, failed, client gone, body idle).
 */
export function openUploadLimit(caps: { perClient: number; total: number }): RequestHandler {
  const counter = new OpenUploadCounter({ perKey: caps.perClient, total: caps.total });
  return (req: Request, res, next) => {
    if (!carriesUploadBody(req)) return next();
    const taken = counter.acquire(identityOf(req));
    if ('refused' in taken) {
      const entry =
        taken.refused === 'identity' ? ERRORS.TOO_MANY_OPEN_UPLOADS : ERRORS.SERVER_UPLOADS_FULL;
      return sendJsonError(res, entry, {
        'Retry-After': String(OPEN_UPLOADS_RETRY_AFTER_SECONDS),
        'Tus-Resumable': TUS_RESUMABLE,
        Connection: 'close',
      });
    }
    res.once('close', taken.slot.release);
    // A client that left while it was authenticated has closed its response already.
    if (req.socket.destroyed) taken.slot.release();
    next();
  };
}
