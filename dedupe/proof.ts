import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ByteRange } from '../storage/types.ts';

/**
 * Proof of ownership for a claimed hash (the idea of Halevi et al., "Proofs of Ownership in
 * Remote Storage Systems", CCS 2011): the server picks a fresh nonce and a few random byte
 * ranges of the content; only a client holding those bytes can answer with
 * HMAC-SHA256(key = nonce, message = the ranges' bytes in order). A hash alone answers nothing.
 */
export type Challenge = { nonce: string; ranges: ByteRange[] };

/** How many ranges, and how long each: at most 32 KiB of reading for the client. */
const RANGE_COUNT = 8;
const RANGE_LENGTH = 4096;

export function newChallenge(size: number): Challenge {
  const nonce = randomBytes(16).toString('base64url');
  if (size <= RANGE_COUNT * RANGE_LENGTH) return { nonce, ranges: [{ start: 0, end: size - 1 }] };
  const starts = new Set<number>();
  while (starts.size < RANGE_COUNT) {
    starts.add(randomBytes(6).readUIntBE(0, 6) % (size - RANGE_LENGTH + 1));
  }
  const ranges = [...starts]
    .sort((a, b) => a - b)
    .map((start) => ({ start, end: start + RANGE_LENGTH - 1 }));
  return { nonce, ranges };
}

/** `nonce=<base64url>; ranges=<start>-<end>,…`: the header value and the stored form. */
export function formatChallenge({ nonce, ranges }: Challenge): string {
  return `nonce=${nonce}; ranges=${ranges.map((r) => `${r.start}-${r.end}`).join(',')}`;
}

export function parseChallenge(value: string | null | undefined): Challenge | undefined {
  const match = /^nonce=([A-Za-z0-9_-]{16,64}); ranges=(\d+-\d+(?:,\d+-\d+)*)$/.exec(value ?? '');
  if (!match?.[1] || !match[2]) return undefined;
  const ranges = match[2].split(',').map((pair) => {
    const [start, end] = pair.split('-').map(Number);
    return { start: start ?? 0, end: end ?? -1 };
  });
  return { nonce: match[1], ranges };
}

/** The answer to a challenge over the bytes of its ranges, in order. */
export function answerOf(nonce: string, chunks: Iterable<Uint8Array>): string {
  const hmac = createHmac('sha256', Buffer.from(nonce, 'base64url'));
  for (const chunk of chunks) hmac.update(chunk);
  return hmac.digest('hex');
}

/** Constant-time comparison of a client's answer with the expected one. */
export function answersMatch(given: string, expected: string): boolean {
  const a = Buffer.from(given.toLowerCase());
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
