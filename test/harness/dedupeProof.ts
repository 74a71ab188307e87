import { createHmac } from 'node:crypto';

/** The answer a client holding `data` gives to an Upload-Dedupe-Challenge header. */
export function answerFrom(data: Buffer, challenge: string | null): string {
  const match = /^nonce=([A-Za-z0-9_-]+); ranges=([\d,-]+)$/.exec(challenge ?? '');
  if (!match?.[1] || !match[2]) throw new Error(`not a challenge: ${challenge}`);
  const hmac = createHmac('sha256', Buffer.from(match[1], 'base64url'));
  for (const range of match[2].split(',')) {
    const [start = 0, end = 0] = range.split('-').map(Number);
    hmac.update(data.subarray(start, end + 1));
  }
  return hmac.digest('hex');
}

/** POST <upload URL>/proof with the answer. */
export function prove(url: string, answer: string, headers: Record<string, string> = {}) {
  return fetch(`${url}/proof`, {
    method: 'POST',
    headers: { ...headers, 'Content-Type': 'application/json' },
    body: JSON.stringify({ answer }),
  });
}
