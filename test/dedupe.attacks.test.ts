import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { answerFrom, prove } from './harness/dedupeProof.ts';
import { serverOnStorage } from './harness/serverOnStorage.ts';
import { type ServerProcess, startServer } from './harness/serverProcess.ts';
import { contentCopies, randomContent, STORAGE_KINDS, sha256 } from './harness/stack.ts';
import { bearer, JWT_SECRET, tokenFor } from './harness/tokens.ts';
import { encodeMetadata, TUS, tusClientUpload } from './harness/tus.ts';

/** A published md5 collision (Wang et al., 2004): two 128-byte blocks, one md5, two sha256. */
const COLLISION_A = Buffer.from(
  'd131dd02c5e6eec4693d9a0698aff95c2fcab58712467eab4004583eb8fb7f89' +
    '55ad340609f4b30283e488832571415a085125e8f7cdc99fd91dbdf280373c5b' +
    'd8823e3156348f5bae6dacd436c919c6dd53e2b487da03fd02396306d248cda0' +
    'e99f33420f577ee8ce54b67080a80d1ec69821bcb6a8839396f9652b6ff72a70',
  'hex',
);
const COLLISION_B = Buffer.from(
  'd131dd02c5e6eec4693d9a0698aff95c2fcab50712467eab4004583eb8fb7f89' +
    '55ad340609f4b30283e4888325f1415a085125e8f7cdc99fd91dbd7280373c5b' +
    'd8823e3156348f5bae6dacd436c919c6dd53e23487da03fd02396306d248cda0' +
    'e99f33420f577ee8ce54b67080280d1ec69821bcb6a8839396f965ab6ff72a70',
  'hex',
);
const md5 = (data: Buffer) => createHash('md5').update(data).digest('hex');

/** Cross-owner proofs are off by default; these suites attack them where a deployment turns them on. */
const PROOFS = { DEDUPE_PROOF: 'on' };

type Claim = { sha256?: string; md5?: string };

/** A creation claiming hashes, no body; the answer's status, URL, offset and challenge. */
async function claim(base: string, length: number, claimed: Claim, headers = {}) {
  const res = await fetch(`${base}/files/`, {
    method: 'POST',
    headers: {
      ...TUS,
      ...headers,
      'Upload-Length': String(length),
      'Upload-Metadata': encodeMetadata(claimed as Record<string, string>),
    },
  });
  return {
    status: res.status,
    url: new URL(res.headers.get('location') ?? '', base).toString(),
    offset: res.headers.get('upload-offset'),
    challenge: res.headers.get('upload-dedupe-challenge'),
  };
}

async function downloadSha(url: string, headers = {}) {
  const res = await fetch(url, { headers });
  return res.status === 200 ? sha256(Buffer.from(await res.arrayBuffer())) : `status ${res.status}`;
}

describe.each(STORAGE_KINDS)('dedupe under attack, anonymous, on the %s configuration', (kind) => {
  const stack = serverOnStorage(kind, PROOFS);
  const secret = randomContent(5000);
  let victimUrl: string;

  beforeAll(async () => {
    // The victim claimed no hash: the server indexes the digests it computes anyway.
    victimUrl = await tusClientUpload(stack.server.url, secret);
  });

  test("knowing a file's sha256 and length gives no bytes: the upload is created empty", async () => {
    for (const claimed of [
      { sha256: sha256(secret) },
      { md5: md5(secret) },
      { sha256: sha256(secret), md5: md5(secret) },
    ]) {
      const attempt = await claim(stack.server.url, secret.length, claimed);
      expect(attempt.status).toBe(201);
      expect(attempt.offset).toBe('0');
      expect(await downloadSha(attempt.url)).toBe('status 404');
    }
  });

  test('a wrong proof skips nothing; the claimant must upload the bytes', async () => {
    const attempt = await claim(stack.server.url, secret.length, { sha256: sha256(secret) });
    expect(attempt.challenge).toMatch(/^nonce=/);
    // What an attacker can compute without the bytes: an answer over other bytes.
    const guess = answerFrom(randomContent(secret.length), attempt.challenge);
    const res = await prove(attempt.url, guess);
    expect(res.status).toBe(403);
    const state = await fetch(attempt.url, { method: 'HEAD', headers: TUS });
    expect(state.headers.get('upload-offset')).toBe('0');
    expect(await downloadSha(attempt.url)).toBe('status 404');
  });

  test('a right proof finishes the upload without its bytes; storage keeps one copy', async () => {
    const before = (await contentCopies(stack.storage)).length;
    const attempt = await claim(stack.server.url, secret.length, { sha256: sha256(secret) });
    const res = await prove(attempt.url, answerFrom(secret, attempt.challenge));
    expect(res.status).toBe(204);
    expect(res.headers.get('upload-offset')).toBe(String(secret.length));
    expect(await downloadSha(attempt.url)).toBe(sha256(secret));
    expect((await contentCopies(stack.storage)).length).toBe(before);
    // The challenge is spent: the finished upload has none.
    expect((await prove(attempt.url, answerFrom(secret, attempt.challenge))).status).toBe(409);
  });

  test.each([
    ['not JSON', 400, 'answer=00', 'the request body must be a JSON object'],
    ['null', 400, 'null', 'the request body must be a JSON object'],
    [
      'over 1 KB',
      413,
      JSON.stringify({ answer: '0'.repeat(64), pad: 'x'.repeat(1100) }),
      'the request body must be at most 1 KB',
    ],
  ])(
    'a proof whose body is %s answers %p with a JSON reason; the upload stays empty',
    async (_name, status, body, error) => {
      const attempt = await claim(stack.server.url, secret.length, { sha256: sha256(secret) });
      const res = await fetch(`${attempt.url}/proof`, {
        method: 'POST',
        headers: { ...TUS, 'Content-Type': 'application/json' },
        body,
      });
      expect(res.status).toBe(status);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await res.json()).toEqual({ error });
      const state = await fetch(attempt.url, { method: 'HEAD', headers: TUS });
      expect(state.headers.get('upload-offset')).toBe('0');
    },
  );

  test('an md5 claim alone never gets a challenge; a claim contradicting the stored sha256 proves nothing', async () => {
    const md5Only = await claim(stack.server.url, secret.length, { md5: md5(secret) });
    expect(md5Only.challenge).toBeNull();
    const contradicting = await claim(stack.server.url, secret.length, {
      sha256: sha256(randomContent(10)),
      md5: md5(secret),
    });
    const res = await prove(contradicting.url, answerFrom(secret, contradicting.challenge));
    expect(res.status).toBe(403);
  });

  test("md5 swap with a real collision pair: the victim downloads the victim's bytes", async () => {
    expect(md5(COLLISION_A)).toBe(md5(COLLISION_B));
    expect(sha256(COLLISION_A)).not.toBe(sha256(COLLISION_B));
    // The attacker stores A first; the victim then uploads B claiming its sha256 and the md5.
    await tusClientUpload(stack.server.url, COLLISION_A, { metadata: { md5: md5(COLLISION_A) } });
    const victim = await tusClientUpload(stack.server.url, COLLISION_B, {
      metadata: { sha256: sha256(COLLISION_B), md5: md5(COLLISION_B) },
    });
    expect(await downloadSha(victim)).toBe(sha256(COLLISION_B));
    expect(await downloadSha(victimUrl)).toBe(sha256(secret));
  });

  test('a stock client uploading known content is stored once after the server verified it', async () => {
    const before = (await contentCopies(stack.storage)).length;
    const copy = await tusClientUpload(stack.server.url, secret, {
      metadata: { sha256: sha256(secret) },
    });
    expect(await downloadSha(copy)).toBe(sha256(secret));
    expect((await contentCopies(stack.storage)).length).toBe(before);
  });
});

describe.each(STORAGE_KINDS)('dedupe with owners (auth on) on the %s configuration', (kind) => {
  const stack = serverOnStorage(kind, { ...PROOFS, AUTH_JWT_SECRET: JWT_SECRET });
  const data = randomContent(70_000);
  let alice: Record<string, string>;
  let bob: Record<string, string>;

  beforeAll(async () => {
    alice = bearer(await tokenFor('alice'));
    bob = bearer(await tokenFor('bob'));
    await tusClientUpload(stack.server.url, data, { headers: alice, metadata: { md5: md5(data) } });
  });

  test('the owner of content reuses it by hash: created finished, nothing sent', async () => {
    for (const claimed of [{ sha256: sha256(data) }, { md5: md5(data) }]) {
      const again = await claim(stack.server.url, data.length, claimed, alice);
      expect(again.status).toBe(201);
      expect(again.offset).toBe(String(data.length));
      expect(await downloadSha(again.url, alice)).toBe(sha256(data));
    }
  });

  test('another owner claiming the same hash gets a challenge, not the bytes', async () => {
    for (const claimed of [{ sha256: sha256(data) }, { md5: md5(data) }]) {
      const attempt = await claim(stack.server.url, data.length, claimed, bob);
      expect(attempt.offset).toBe('0');
      expect(await downloadSha(attempt.url, bob)).toBe('status 404');
    }
  });

  test('another owner who holds the bytes proves it and gets an upload of its own', async () => {
    const attempt = await claim(stack.server.url, data.length, { sha256: sha256(data) }, bob);
    const res = await prove(attempt.url, answerFrom(data, attempt.challenge), bob);
    expect(res.status).toBe(204);
    expect(await downloadSha(attempt.url, bob)).toBe(sha256(data));
    expect(await downloadSha(attempt.url, alice)).toBe('status 404');
    // Bob now owns that content too: his next claim needs no proof.
    const again = await claim(stack.server.url, data.length, { sha256: sha256(data) }, bob);
    expect(again.offset).toBe(String(data.length));
  });

  test('a proof for an upload of another owner is answered 404', async () => {
    const other = randomContent(3000);
    await tusClientUpload(stack.server.url, other, { headers: alice });
    const attempt = await claim(stack.server.url, other.length, { sha256: sha256(other) }, bob);
    const res = await prove(attempt.url, answerFrom(other, attempt.challenge), alice);
    expect(res.status).toBe(404);
  });
});

describe('two deployments (two buckets) sharing one Redis', () => {
  const a = serverOnStorage('s3+redis', PROOFS);
  const b = serverOnStorage('s3', PROOFS);
  let other: ServerProcess;
  afterAll(async () => {
    await other?.stop();
  });

  test("neither sees the other's content, and neither disturbs the other's index", async () => {
    // B's storage, on A's Redis database.
    other = await startServer({ ...b.storage.env, ...PROOFS, REDIS_URL: a.storage.env.REDIS_URL });
    const data = randomContent(40_000);
    await tusClientUpload(a.server.url, data);
    const onB = await claim(other.url, data.length, { sha256: sha256(data) });
    expect((await prove(onB.url, answerFrom(data, onB.challenge))).status).toBe(403);
    expect(await contentCopies(b.storage)).toEqual([]);
    const onA = await claim(a.server.url, data.length, { sha256: sha256(data) });
    expect((await prove(onA.url, answerFrom(data, onA.challenge))).status).toBe(204);
    expect(await downloadSha(onA.url)).toBe(sha256(data));
  });
});
