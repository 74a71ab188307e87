import { createHmac } from 'node:crypto';

/** The answer a client holding `data` gives to an Upload-Dedupe-Challenge header. */
export function answerFrom(data: Buffer, challenge: string | null): string {
  const match = /^nonce=([A-Za-z0-9_-]+)$/.exec(challenge ?? '');
  if (!match?.[1]) throw new Error(`not a challenge: ${challenge}`);
  // HMAC-SHA256 keyed with the nonce over every byte of the content.
  return createHmac('sha256', Buffer.from(match[1], 'base64url')).update(data).digest('hex');
}

/** POST <upload URL>/proof with the answer. */
export function prove(url: string, answer: string, headers: Record<string, string> = {}) {
  return fetch(`${url}/proof`, {
    method: 'POST',
    headers: { ...headers, 'Content-Type': 'application/json' },
    body: JSON.stringify({ answer }),
  });
}
