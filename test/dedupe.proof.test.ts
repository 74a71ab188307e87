import { randomInt } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { answerFrom, prove } from './harness/dedupeProof.ts';
import { serverOnStorage } from './harness/serverOnStorage.ts';
import { type ServerProcess, startServer } from './harness/serverProcess.ts';
import { MIB, randomContent, STORAGE_KINDS, sha256 } from './harness/stack.ts';
import { bearer, JWT_SECRET, tokenFor } from './harness/tokens.ts';
import {
  downloadedSha256,
  encodeMetadata,
  head,
  patch,
  TUS,
  tusClientUpload,
  uploadUrlOn,
} from './harness/tus.ts';

/** Cross-owner proofs are off by default; a deployment turns them on. */
const PROOFS = { DEDUPE_PROOF: 'on' };

/** A creation claiming the content's sha256 and length, no body. */
async function claim(base: string, content: Buffer, headers: Record<string, string> = {}) {
  const res = await fetch(`${base}/files/`, {
    method: 'POST',
    headers: {
      ...TUS,
      ...headers,
      'Upload-Length': String(content.length),
      'Upload-Metadata': encodeMetadata({ filename: 'f.bin', sha256: sha256(content) }),
    },
  });
  await res.arrayBuffer();
  return {
    status: res.status,
    url: new URL(res.headers.get('location') ?? '', base).toString(),
    offset: res.headers.get('upload-offset'),
    challenge: res.headers.get('upload-dedupe-challenge'),
  };
}

/** The proof's status and JSON body, for comparing a refusal with another. */
async function proofAnswer(url: string, answer: string, headers: Record<string, string> = {}) {
  const res = await prove(url, answer, headers);
  return { status: res.status, body: await res.json().catch(() => undefined) };
}

/** `data` with `length` bytes from `at` changed: a copy missing that region. */
function withRegionChanged(data: Buffer, at: number, length: number): Buffer {
  const copy = Buffer.from(data);
  for (let i = at; i < at + length; i += 1) copy[i] = (copy[i] ?? 0) ^ 0xff;
  return copy;
}

const WRONG = '0'.repeat(64);

describe.each(STORAGE_KINDS)('proofs of ownership on the %s configuration', (kind) => {
  const anonymous = serverOnStorage(kind, PROOFS);
  const budgeted = serverOnStorage(kind, {
    ...PROOFS,
    AUTH_JWT_SECRET: JWT_SECRET,
    DEDUPE_PROOF_BUDGET: '5',
  });

  test('a copy missing a 64-byte region never passes, over 20 fresh creations; the whole copy does', async () => {
    const base = anonymous.server.url;
    const original = randomContent(MIB);
    await tusClientUpload(base, original, { metadata: { sha256: sha256(original) } });
    for (let attempt = 0; attempt < 20; attempt += 1) {
      // The attacker knows the sha256 (and so the length) but not 64 bytes somewhere in it.
      const incomplete = withRegionChanged(original, randomInt(original.length - 64), 64);
      const created = await claim(base, original);
      expect(created).toMatchObject({ status: 201, offset: '0' });
      expect(created.challenge).toMatch(/^nonce=[A-Za-z0-9_-]{22}$/);
      const res = await prove(created.url, answerFrom(incomplete, created.challenge));
      expect(res.status).toBe(403);
      expect((await head(created.url)).headers.get('upload-offset')).toBe('0');
    }
    // Stored or not, a refusal comes no earlier than the floor (100 ms + 16 ms per MiB claimed).
    const unknown = randomContent(MIB);
    for (const content of [original, unknown]) {
      const created = await claim(base, content);
      const began = performance.now();
      expect((await prove(created.url, WRONG)).status).toBe(403);
      expect(performance.now() - began).toBeGreaterThanOrEqual(100 + 15);
    }
    const created = await claim(base, original);
    const res = await prove(created.url, answerFrom(original, created.challenge));
    expect(res.status).toBe(204);
    expect(res.headers.get('upload-offset')).toBe(String(original.length));
    expect(await downloadedSha256(created.url)).toBe(sha256(original));
  });

  test('with a budget of 5: 5 proofs, then no challenge and refusals; others keep theirs; the owner still skips', async () => {
    const base = budgeted.server.url;
    const alice = bearer(await tokenFor('alice'));
    const mallory = bearer(await tokenFor('mallory'));
    const bob = bearer(await tokenFor('bob'));
    const stored = randomContent(200_000);
    await tusClientUpload(base, stored, { headers: alice, metadata: { sha256: sha256(stored) } });
    const own = randomContent(50_000);
    await tusClientUpload(base, own, { headers: mallory, metadata: { sha256: sha256(own) } });

    // Six creations while the budget lasts: each carries a challenge.
    const attempts = [];
    for (let i = 0; i < 6; i += 1) attempts.push(await claim(base, stored, mallory));
    for (const attempt of attempts) expect(attempt.challenge).toMatch(/^nonce=/);
    const wrong = [];
    for (const attempt of attempts.slice(0, 5)) {
      wrong.push(await proofAnswer(attempt.url, WRONG, mallory));
    }
    for (const answer of wrong) expect(answer).toEqual(wrong[0]);
    expect(wrong[0]?.status).toBe(403);
    // The sixth proof is right, but the budget is spent: refused exactly like a wrong one.
    const last = attempts[5] as (typeof attempts)[number];
    expect(await proofAnswer(last.url, answerFrom(stored, last.challenge), mallory)).toEqual(
      wrong[0],
    );
    expect((await head(last.url, mallory)).headers.get('upload-offset')).toBe('0');

    // From now on mallory's creations are ordinary ones: no challenge, the bytes are uploaded.
    const later = await claim(base, stored, mallory);
    expect(later).toMatchObject({ status: 201, offset: '0', challenge: null });
    const sent = await patch(later.url, 0, stored, mallory);
    expect(sent.status).toBe(204);
    expect(await downloadedSha256(later.url, mallory)).toBe(sha256(stored));

    // The owner's unchanged re-upload skips without a proof, whatever the budget says.
    const again = await claim(base, own, mallory);
    expect(again).toMatchObject({ status: 201, offset: String(own.length), challenge: null });
    expect(await downloadedSha256(again.url, mallory)).toBe(sha256(own));

    // Another identity's budget is its own.
    const bobs = await claim(base, stored, bob);
    expect(bobs.challenge).toMatch(/^nonce=/);
    expect((await prove(bobs.url, answerFrom(stored, bobs.challenge), bob)).status).toBe(204);
    expect(await downloadedSha256(bobs.url, bob)).toBe(sha256(stored));
  });
});

describe('two instances on one MinIO and one Redis share each identity’s proof budget', () => {
  const env = { ...PROOFS, AUTH_JWT_SECRET: JWT_SECRET, DEDUPE_PROOF_BUDGET: '5' };
  const stack = serverOnStorage('s3+redis', env);
  let other: ServerProcess;
  beforeAll(async () => {
    other = await startServer({ ...stack.storage.env, ...env });
  });
  afterAll(async () => {
    await other?.stop();
  });

  test('3 proofs on one instance and 2 on the other spend it on both', async () => {
    const [a, b] = [stack.server, other];
    const alice = bearer(await tokenFor('alice'));
    const mallory = bearer(await tokenFor('mallory'));
    const stored = randomContent(100_000);
    await tusClientUpload(a.url, stored, { headers: alice, metadata: { sha256: sha256(stored) } });

    const attempts = [];
    for (let i = 0; i < 6; i += 1)
      attempts.push(await claim(i % 2 ? b.url : a.url, stored, mallory));
    for (const attempt of attempts) expect(attempt.challenge).toMatch(/^nonce=/);
    for (const [i, attempt] of attempts.slice(0, 5).entries()) {
      const target = uploadUrlOn(i < 3 ? a : b, attempt.url);
      expect((await prove(target, WRONG, mallory)).status).toBe(403);
    }
    for (const server of [a, b]) {
      expect((await claim(server.url, stored, mallory)).challenge).toBeNull();
    }
    const last = attempts[5] as (typeof attempts)[number];
    const refused = await prove(
      uploadUrlOn(a, last.url),
      answerFrom(stored, last.challenge),
      mallory,
    );
    expect(refused.status).toBe(403);
  });
});
