import { describe, expect, test } from '@jest/globals';
import { answerFrom, prove } from './harness/dedupeProof.ts';
import { serverOnStorage } from './harness/serverOnStorage.ts';
import { randomContent, STORAGE_KINDS, sha256 } from './harness/stack.ts';
import { encodeMetadata, TUS, tusClientUpload } from './harness/tus.ts';

/** Cross-owner proofs are off by default; these suites race them where a deployment turns them on. */
const PROOFS = { DEDUPE_PROOF: 'on' };
const RACES = 40;

/** A creation claiming the sha256 of `data`, no body: its URL and challenge. */
async function claim(base: string, data: Buffer) {
  const res = await fetch(`${base}/files/`, {
    method: 'POST',
    headers: {
      ...TUS,
      'Upload-Length': String(data.length),
      'Upload-Metadata': encodeMetadata({ sha256: sha256(data) }),
    },
  });
  expect(res.status).toBe(201);
  return {
    url: new URL(res.headers.get('location') ?? '', base).toString(),
    challenge: res.headers.get('upload-dedupe-challenge'),
  };
}

describe.each(STORAGE_KINDS)('proofs racing deletes on the %s configuration', (kind) => {
  const stack = serverOnStorage(kind, PROOFS);

  test(`a proof while the shared content is deleted answers 204, 403 or 404, never 5xx (${RACES} races)`, async () => {
    const statuses: number[] = [];
    for (let race = 0; race < RACES; race += 1) {
      const data = randomContent(64 * 1024 + race);
      const stored = await tusClientUpload(stack.server.url, data);
      const attempt = await claim(stack.server.url, data);
      const answer = answerFrom(data, attempt.challenge);
      const remove = () => fetch(stored, { method: 'DELETE', headers: TUS });
      const proof = () => prove(attempt.url, answer);
      // Either goes first, by turns: the delete lands before, during or after the proof's read.
      const [proved, removed] =
        race % 2 === 0
          ? await Promise.all([proof(), remove()])
          : await Promise.all([remove(), proof()]).then(([r, p]) => [p, r] as const);
      expect(removed.status).toBe(204);
      statuses.push(proved.status);
      if (proved.status === 204) {
        // The proof won: the new upload holds the bytes, the deleted one's going broke nothing.
        const res = await fetch(attempt.url);
        expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(sha256(data));
      }
    }
    expect(statuses.filter((status) => status >= 500)).toEqual([]);
    for (const status of statuses) expect([204, 403, 404]).toContain(status);
  });
});
