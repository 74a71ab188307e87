import { randomInt } from 'node:crypto';
import { describe, expect, test } from '@jest/globals';
import { serverOnStorage } from './harness/serverOnStorage.ts';
import { STORAGE_KINDS, sha256 } from './harness/stack.ts';
import { bearer, JWT_SECRET, tokenFor } from './harness/tokens.ts';
import { encodeMetadata, TUS, tusClientUpload } from './harness/tus.ts';

/** A letter whose only secret is a 4-digit PIN: an attacker knows everything else. */
const letter = (pin: string) =>
  Buffer.from(
    `Dear customer,\n\nYour new card has been sent.\nYour new card PIN is ${pin}.\n` +
      `${'Keep this letter in a safe place. '.repeat(48)}\nYour bank\n`,
  );
const pinOf = (n: number) => String(n).padStart(4, '0');
const GUESSES = 200;

/** A creation claiming the candidate's sha256 and length, as the upload page claims it. */
async function claim(base: string, content: Buffer, headers: Record<string, string>) {
  const res = await fetch(`${base}/files/`, {
    method: 'POST',
    headers: {
      ...TUS,
      ...headers,
      'Upload-Length': String(content.length),
      'Upload-Metadata': encodeMetadata({ filename: 'letter.txt', sha256: sha256(content) }),
    },
  });
  await res.arrayBuffer();
  const location = new URL(res.headers.get('location') ?? '', base).toString();
  const proof = await fetch(`${location}/proof`, {
    method: 'POST',
    headers: { ...headers, 'Content-Type': 'application/json' },
    body: JSON.stringify({ answer: '0'.repeat(64) }),
  });
  await proof.arrayBuffer();
  return {
    status: res.status,
    offset: res.headers.get('upload-offset'),
    challenge: res.headers.get('upload-dedupe-challenge'),
    proof: proof.status,
  };
}

/** 200 candidates, the victim's PIN among them at a random place. */
function candidates(victimPin: number): string[] {
  const pins = new Set<number>([victimPin]);
  while (pins.size < GUESSES) pins.add(randomInt(10_000));
  return [...pins].sort(() => randomInt(3) - 1).map(pinOf);
}

describe.each(STORAGE_KINDS)(
  'guessing a stored file by its hash (defaults), on the %s configuration',
  (kind) => {
    const authed = serverOnStorage(kind, { AUTH_JWT_SECRET: JWT_SECRET });
    const anonymous = serverOnStorage(kind);

    test("with auth: 200 guesses by another owner find nothing; the owner's unchanged re-upload skips", async () => {
      const base = authed.server.url;
      const victimPin = randomInt(10_000);
      const secret = letter(pinOf(victimPin));
      const alice = bearer(await tokenFor('alice'));
      await tusClientUpload(base, secret, {
        headers: alice,
        metadata: { filename: 'letter.txt', sha256: sha256(secret) },
      });
      const mallory = bearer(await tokenFor('mallory'));
      const answers = new Set<string>();
      for (const pin of candidates(victimPin)) {
        const attempt = await claim(base, letter(pin), mallory);
        // Every guess, right or wrong, is an ordinary empty upload: nothing to tell them apart.
        expect(attempt).toEqual({ status: 201, offset: '0', challenge: null, proof: 404 });
        answers.add(JSON.stringify(attempt));
      }
      expect(answers.size).toBe(1);
      // The seed's promise holds for the owner: an unchanged file is not uploaded again.
      const again = await claim(base, secret, alice);
      expect(again.status).toBe(201);
      expect(again.offset).toBe(String(secret.length));
    });

    test('anonymous: 200 guesses find nothing, and no claim skips the transfer', async () => {
      const base = anonymous.server.url;
      const victimPin = randomInt(10_000);
      const secret = letter(pinOf(victimPin));
      await tusClientUpload(base, secret, {
        metadata: { filename: 'letter.txt', sha256: sha256(secret) },
      });
      for (const pin of candidates(victimPin)) {
        expect(await claim(base, letter(pin), {})).toEqual({
          status: 201,
          offset: '0',
          challenge: null,
          proof: 404,
        });
      }
      // Without owners nobody's claim may skip, not even the uploader's own.
      expect((await claim(base, secret, {})).offset).toBe('0');
    });
  },
);
