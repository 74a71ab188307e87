import { createHmac } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, test } from '@jest/globals';
import { SignJWT } from 'jose';
import { LinkSigner, MAX_LINK_SECONDS } from '../../auth/links.ts';
import { AuthFailure, createTokenVerifier } from '../../auth/tokens.ts';
import {
  answerOf,
  answerOfStream,
  answersMatch,
  formatChallenge,
  newChallenge,
  parseChallenge,
} from '../../dedupe/proof.ts';
import { contextOf } from '../../request/context.ts';
import { publicMetadataHeader, stampMetadata } from '../../request/metadata.ts';

const SECRET = 'unit-secret-0123456789-abcdefghijklmn';
const sign = (claims: object, alg = 'HS256', secret = SECRET) =>
  new SignJWT({ ...claims })
    .setProtectedHeader({ alg })
    .setExpirationTime('5m')
    .sign(new TextEncoder().encode(secret));

describe('createTokenVerifier (HS256)', () => {
  const verify = createTokenVerifier({ secret: SECRET });
  if (!verify) throw new Error('a secret gives a verifier');

  test('no secret and no JWKS: auth is off', () => {
    expect(createTokenVerifier({})).toBeUndefined();
  });

  test('a valid token resolves with its sub', async () => {
    expect(await verify(`Bearer ${await sign({ sub: 'alice' })}`)).toBe('alice');
    expect(await verify(`bearer ${await sign({ sub: 'alice' })}`)).toBe('alice');
  });

  test.each([
    ['no header', undefined, 'missing_token'],
    ['an empty header', '', 'missing_token'],
    ['another scheme', 'Basic YWxpY2U6eA==', 'missing_token'],
    ['a bearer with spaces inside', 'Bearer a b', 'missing_token'],
    ['a malformed token', 'Bearer abc.def', 'invalid_token'],
  ])('%s is refused (%s)', async (_name, header, error) => {
    await expect(verify(header)).rejects.toMatchObject({ error });
  });

  test.each([
    ['no sub', {}],
    ['an empty sub', { sub: '' }],
    ['a sub of 257 characters', { sub: 'x'.repeat(257) }],
  ])('a token with %s is refused', async (_name, claims) => {
    await expect(verify(`Bearer ${await sign(claims)}`)).rejects.toBeInstanceOf(AuthFailure);
  });

  test('HS512, another secret and expired tokens are refused', async () => {
    await expect(verify(`Bearer ${await sign({ sub: 'a' }, 'HS512')}`)).rejects.toBeInstanceOf(
      AuthFailure,
    );
    const other = await sign({ sub: 'a' }, 'HS256', 'another-secret-0123456789-abcdefghij');
    await expect(verify(`Bearer ${other}`)).rejects.toBeInstanceOf(AuthFailure);
    const expired = await new SignJWT({ sub: 'a' })
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime(Math.floor(Date.now() / 1000) - 10)
      .sign(new TextEncoder().encode(SECRET));
    await expect(verify(`Bearer ${expired}`)).rejects.toMatchObject({
      reason: 'the token has expired',
    });
  });

  test('alg none is refused', async () => {
    const part = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const unsigned = `${part({ alg: 'none' })}.${part({ sub: 'alice', exp: 9e9 })}.`;
    await expect(verify(`Bearer ${unsigned}`)).rejects.toBeInstanceOf(AuthFailure);
  });
});

describe('createTokenVerifier and exp (AUTH_REQUIRE_EXP)', () => {
  const now = Math.floor(Date.now() / 1000);
  const signClaims = (claims: object) =>
    new SignJWT({ ...claims })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(SECRET));
  // [requireExp option, claims, sub it resolves with or the reason it is refused]
  const rows: Array<[boolean | undefined, object, { sub: string } | { reason: string }]> = [
    [undefined, { sub: 'alice', exp: now + 300 }, { sub: 'alice' }],
    [undefined, { sub: 'alice' }, { reason: 'the token has no exp claim' }],
    [true, { sub: 'alice', exp: now + 300 }, { sub: 'alice' }],
    [true, { sub: 'alice' }, { reason: 'the token has no exp claim' }],
    [true, { sub: 'alice', iat: now }, { reason: 'the token has no exp claim' }],
    [true, { sub: 'alice', exp: now - 10 }, { reason: 'the token has expired' }],
    [false, { sub: 'alice' }, { sub: 'alice' }],
    [false, { sub: 'alice', exp: now + 300 }, { sub: 'alice' }],
    [false, { sub: 'alice', exp: now - 10 }, { reason: 'the token has expired' }],
    [false, {}, { reason: 'the token is invalid' }],
  ];

  test.each(rows)('requireExp %p, claims %p -> %p', async (requireExp, claims, outcome) => {
    const verify = createTokenVerifier({ secret: SECRET, requireExp });
    if (!verify) throw new Error('a secret gives a verifier');
    const result = verify(`Bearer ${await signClaims(claims)}`);
    if ('sub' in outcome) {
      await expect(result).resolves.toBe(outcome.sub);
    } else {
      await expect(result).rejects.toMatchObject({ error: 'invalid_token', ...outcome });
    }
  });
});

describe('LinkSigner', () => {
  const signer = new LinkSigner(Buffer.from('k'.repeat(32)));
  const id = 'a'.repeat(32);
  const now = 1_800_000_000_000;
  const expires = now / 1000 + 60;
  const signature = signer.sign(id, expires);

  test('the signature is HMAC-SHA256 of "<id>.<expires>", base64url', () => {
    const expected = createHmac('sha256', 'k'.repeat(32)).update(`${id}.${expires}`).digest();
    expect(signature).toBe(expected.toString('base64url'));
  });

  test.each([
    ['the signed link', id, String(expires), signature, 'valid'],
    ['another id', 'b'.repeat(32), String(expires), signature, 'invalid'],
    ['a later expiry', id, String(expires + 1), signature, 'invalid'],
    ['a changed signature', id, String(expires), `${signature.slice(0, -1)}A`, 'invalid'],
    ['a shorter signature', id, String(expires), signature.slice(1), 'invalid'],
    ['expires not a number', id, '1e9', signature, 'invalid'],
    ['an empty signature', id, String(expires), '', 'invalid'],
  ])('%s is %s', (_name, linkId, linkExpires, linkSignature, outcome) => {
    expect(signer.check(linkId, linkExpires, linkSignature, now)).toBe(outcome);
  });

  test('a link is expired from its expiry second on', () => {
    expect(signer.check(id, String(expires), signature, expires * 1000 - 1)).toBe('valid');
    expect(signer.check(id, String(expires), signature, expires * 1000)).toBe('expired');
  });

  test('keys: LINK_SIGNING_KEY, else derived from the JWT secret, else random per process', () => {
    const a = LinkSigner.fromSecrets('l'.repeat(32), SECRET);
    const b = LinkSigner.fromSecrets(undefined, SECRET);
    const c = LinkSigner.fromSecrets(undefined, SECRET);
    const d = LinkSigner.fromSecrets();
    expect([a.stable, b.stable, d.stable]).toEqual([true, true, false]);
    expect(b.signer.sign(id, expires)).toBe(c.signer.sign(id, expires));
    expect(a.signer.sign(id, expires)).not.toBe(b.signer.sign(id, expires));
    expect(MAX_LINK_SECONDS).toBe(604_800);
  });
});

describe('dedupe challenges', () => {
  test('a challenge is a fresh 16-byte nonce, nothing else', () => {
    const { nonce, ...rest } = newChallenge();
    expect(Buffer.from(nonce, 'base64url')).toHaveLength(16);
    expect(rest).toEqual({});
    expect(formatChallenge({ nonce })).toBe(`nonce=${nonce}`);
  });

  test('two challenges differ', () => {
    expect(newChallenge()).not.toEqual(newChallenge());
  });

  test('format and parse round-trip; anything else parses to nothing', () => {
    const challenge = newChallenge();
    expect(parseChallenge(formatChallenge(challenge))).toEqual(challenge);
    for (const bad of [
      undefined,
      '',
      'nonce=x',
      'ranges=1-2',
      // The earlier ranged form: a client answering it would not cover every byte.
      'nonce=AAAAAAAAAAAAAAAAAAAAAA; ranges=0-1',
    ]) {
      expect(parseChallenge(bad)).toBeUndefined();
    }
  });

  test('the answer is HMAC-SHA256 keyed with the nonce over the whole content in order', async () => {
    const nonce = Buffer.from('0123456789abcdef').toString('base64url');
    const expected = createHmac('sha256', '0123456789abcdef').update('helloworld').digest('hex');
    expect(answerOf(nonce, [Buffer.from('hello'), Buffer.from('world')])).toBe(expected);
    const stream = Readable.from([Buffer.from('hel'), Buffer.from('lowor'), Buffer.from('ld')]);
    expect(await answerOfStream(nonce, stream)).toBe(expected);
    expect(answersMatch(expected.toUpperCase(), expected)).toBe(true);
    expect(answersMatch(expected.slice(1), expected)).toBe(false);
    expect(answersMatch(`${expected.slice(0, -1)}0`, expected)).toBe(expected.endsWith('0'));
  });
});

describe('reserved metadata', () => {
  test("a client's tus-* keys are dropped; the owner and challenge are the server's", () => {
    const req = {};
    contextOf(req).owner = 'alice';
    contextOf(req).challenge = 'nonce=x; ranges=0-1';
    expect(stampMetadata({ filename: 'a', 'tus-owner': 'bob', 'tus-x': null }, req)).toEqual({
      filename: 'a',
      'tus-owner': 'alice',
      'tus-challenge': 'nonce=x; ranges=0-1',
    });
    expect(stampMetadata(undefined, {})).toEqual({});
  });

  test('Upload-Metadata shown to clients has no tus-* pairs', () => {
    expect(publicMetadataHeader('filename YQ==,tus-owner Ym9i,tus-challenge eA==,x')).toBe(
      'filename YQ==,x',
    );
  });
});
