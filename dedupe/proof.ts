import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Readable } from 'node:stream';

/**
 * Proof of ownership for a claimed hash (after Halevi et al., "Proofs of Ownership in Remote
 * Storage Systems", CCS 2011): the server picks a fresh nonce; only a client holding every byte
 * of the content can answer with HMAC-SHA256(key = nonce, message = the whole content). A hash
 * alone answers nothing, and neither does a copy missing any region, however small: the answer
 * covers all bytes, not a sample of them.
 */
export type Challenge = { nonce: string };

/** `nonce=<base64url of 16 random bytes>`: the header value and the stored form. */
export function newChallenge(): Challenge {
  return { nonce: randomBytes(16).toString('base64url') };
}

export function formatChallenge({ nonce }: Challenge): string {
  return `nonce=${nonce}`;
}

export function parseChallenge(value: string | null | undefined): Challenge | undefined {
  const match = /^nonce=([A-Za-z0-9_-]{16,64})$/.exec(value ?? '');
  return match?.[1] ? { nonce: match[1] } : undefined;
}

/** The answer to a challenge over the content's bytes, in order. */
export function answerOf(nonce: string, chunks: Iterable<Uint8Array>): string {
  const hmac = createHmac('sha256', Buffer.from(nonce, 'base64url'));
  for (const chunk of chunks) hmac.update(chunk);
  return hmac.digest('hex');
}

/** The answer over a stream of the content, read piece by piece (content may be large). */
export async function answerOfStream(nonce: string, content: Readable): Promise<string> {
  const hmac = createHmac('sha256', Buffer.from(nonce, 'base64url'));
  for await (const chunk of content) hmac.update(chunk as Buffer);
  return hmac.digest('hex');
}

/** Constant-time comparison of a client's answer with the expected one. */
export function answersMatch(given: string, expected: string): boolean {
  const a = Buffer.from(given.toLowerCase());
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
