import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { serverOnStorage } from './harness/serverOnStorage.ts';
import { type ServerProcess, startServer } from './harness/serverProcess.ts';
import { openPatch } from './harness/slowPatch.ts';
import {
  createTestStorage,
  randomContent,
  STORAGE_KINDS,
  sha256,
  type TestStorage,
} from './harness/stack.ts';
import { bearer, JWT_SECRET, startJwks, tokenFor, unsignedTokenFor } from './harness/tokens.ts';
import { encodeMetadata, idOf, TUS, tusClientUpload } from './harness/tus.ts';

const PATCH_HEADERS = { ...TUS, 'Content-Type': 'application/offset+octet-stream' };

/** sha256 of what GET answers with these headers, or the status when it is not 200. */
async function download(url: string, headers: Record<string, string> = {}) {
  const res = await fetch(url, { headers });
  if (res.status !== 200) return { status: res.status, sha256: undefined };
  return { status: 200, sha256: sha256(Buffer.from(await res.arrayBuffer())) };
}

async function createAs(base: string, token: string, length: number, metadata = {}) {
  const res = await fetch(`${base}/files/`, {
    method: 'POST',
    headers: {
      ...TUS,
      ...bearer(token),
      'Upload-Length': String(length),
      ...(Object.keys(metadata).length ? { 'Upload-Metadata': encodeMetadata(metadata) } : {}),
    },
  });
  expect(res.status).toBe(201);
  return new URL(res.headers.get('location') ?? '', base).toString();
}

async function offsetAs(url: string, token: string): Promise<string | null> {
  const res = await fetch(url, { method: 'HEAD', headers: { ...TUS, ...bearer(token) } });
  return res.status === 200 ? res.headers.get('upload-offset') : `status ${res.status}`;
}

describe.each(STORAGE_KINDS)('access control on the %s configuration', (kind) => {
  const stack = serverOnStorage(kind, { AUTH_JWT_SECRET: JWT_SECRET });
  const data = randomContent(200_000);
  let alice: string;
  let bob: string;
  let finished: string;
  let unfinished: string;

  beforeAll(async () => {
    alice = await tokenFor('alice');
    bob = await tokenFor('bob');
    finished = await tusClientUpload(stack.server.url, data, {
      headers: bearer(alice),
      metadata: { filename: 'alice.bin' },
    });
    unfinished = await createAs(stack.server.url, alice, data.length);
    const res = await fetch(unfinished, {
      method: 'PATCH',
      headers: { ...PATCH_HEADERS, ...bearer(alice), 'Upload-Offset': '0' },
      body: new Uint8Array(data.subarray(0, 1000)),
    });
    expect(res.status).toBe(204);
  });

  /** Every route a stranger could try, as (name, request) pairs. */
  const attempts = (headers: Record<string, string>) => ({
    'POST /files/': () =>
      fetch(`${stack.server.url}/files/`, {
        method: 'POST',
        headers: { ...TUS, ...headers, 'Upload-Length': '10' },
      }),
    'HEAD (tus)': () => fetch(unfinished, { method: 'HEAD', headers: { ...TUS, ...headers } }),
    PATCH: () =>
      fetch(unfinished, {
        method: 'PATCH',
        headers: { ...PATCH_HEADERS, ...headers, 'Upload-Offset': '1000' },
        body: new Uint8Array(data.subarray(1000, 2000)),
      }),
    'DELETE (unfinished)': () =>
      fetch(unfinished, { method: 'DELETE', headers: { ...TUS, ...headers } }),
    'DELETE (finished)': () =>
      fetch(finished, { method: 'DELETE', headers: { ...TUS, ...headers } }),
    GET: () => fetch(finished, { headers }),
    'GET with Range': () => fetch(finished, { headers: { ...headers, Range: 'bytes=0-9' } }),
    'HEAD (download)': () => fetch(finished, { method: 'HEAD', headers }),
    'POST links': () =>
      fetch(`${finished}/links`, {
        method: 'POST',
        headers: { ...headers, 'Content-Type': 'application/json' },
        body: '{"expiresIn": 60}',
      }),
  });

  /** Nothing a refused request tried took effect. */
  async function expectUnchanged() {
    expect(await download(finished, bearer(alice))).toEqual({ status: 200, sha256: sha256(data) });
    expect(await offsetAs(unfinished, alice)).toBe('1000');
  }

  test.each([
    ['no token', {}],
    ['a malformed header', { Authorization: 'Bearer not.a.jwt' }],
    ['another scheme', { Authorization: `Basic ${Buffer.from('alice:x').toString('base64')}` }],
    ['an unsigned token (alg none)', 'unsigned'],
    ['a token signed with another secret', 'wrong-secret'],
    ['an expired token', 'expired'],
    ['a token without exp', 'no-exp'],
  ] as Array<[string, Record<string, string> | string]>)(
    'with %s every route answers 401 with WWW-Authenticate: Bearer and changes nothing',
    async (_name, credentials) => {
      const headers =
        typeof credentials !== 'string'
          ? credentials
          : bearer(
              credentials === 'unsigned'
                ? unsignedTokenFor('alice')
                : credentials === 'expired'
                  ? await tokenFor('alice', { expiresIn: Math.floor(Date.now() / 1000) - 60 })
                  : credentials === 'no-exp'
                    ? await tokenFor('alice', { expiresIn: null })
                    : await tokenFor('alice', {
                        secret: new TextEncoder().encode('another-secret-0123456789-abcdefgh'),
                      }),
            );
      for (const [name, send] of Object.entries(attempts(headers))) {
        const res = await send();
        expect({ name, status: res.status }).toEqual({ name, status: 401 });
        expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm="uploads"/);
      }
      await expectUnchanged();
    },
  );

  test('a token without exp is refused with invalid_token: it would be valid forever', async () => {
    const res = await fetch(`${stack.server.url}/files/`, {
      method: 'POST',
      headers: {
        ...TUS,
        ...bearer(await tokenFor('alice', { expiresIn: null })),
        'Upload-Length': '10',
      },
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe(
      'Bearer realm="uploads", error="invalid_token", error_description="the token has no exp claim"',
    );
  });

  test("another owner's token gets 404 on every route of alice's uploads and changes nothing", async () => {
    for (const [name, send] of Object.entries(attempts(bearer(bob)))) {
      if (name === 'POST /files/') continue;
      const res = await send();
      expect({ name, status: res.status }).toEqual({ name, status: 404 });
    }
    await expectUnchanged();
  });

  test("a stranger's requests while alice's PATCH holds the upload's lock neither stop it nor wait for it", async () => {
    const body = randomContent(300_000);
    const url = await createAs(stack.server.url, alice, body.length);
    const open = openPatch(url, 0, body.subarray(0, 100_000), body.length, bearer(alice));
    // Read by the server: the PATCH is past its lock, writing.
    await open.read();
    const asBob = { ...TUS, ...bearer(bob) };
    const tries = {
      'HEAD (tus)': () => fetch(url, { method: 'HEAD', headers: asBob }),
      PATCH: () =>
        fetch(url, {
          method: 'PATCH',
          headers: { ...PATCH_HEADERS, ...bearer(bob), 'Upload-Offset': '0' },
          body: new Uint8Array(body.subarray(0, 10)),
        }),
      DELETE: () => fetch(url, { method: 'DELETE', headers: asBob }),
    };
    for (const [name, send] of Object.entries(tries)) {
      // Answered while alice's PATCH still holds the lock: a wait would last until it ends.
      const res = await send();
      expect({ name, status: res.status }).toEqual({ name, status: 404 });
    }
    await open.write(body.subarray(100_000));
    open.req.end();
    expect(await open.response).toBe(204);
    expect(await download(url, bearer(alice))).toEqual({ status: 200, sha256: sha256(body) });
  });

  test("the owner's new request asks the owner's held PATCH to let go, as tus resumption does", async () => {
    const body = randomContent(300_000);
    const url = await createAs(stack.server.url, alice, body.length);
    const open = openPatch(url, 0, body.subarray(0, 100_000), body.length, bearer(alice));
    await open.read();
    // The client lost its connection and resumes: its HEAD gets the lock from the old PATCH.
    expect(await offsetAs(url, alice)).toBe('100000');
    expect(await open.response).toBe(204);
    await tusClientUpload(stack.server.url, body, { uploadUrl: url, headers: bearer(alice) });
    expect(await download(url, bearer(alice))).toEqual({ status: 200, sha256: sha256(body) });
  });

  test('the owner resumes with tus-js-client and downloads the bytes sent', async () => {
    const more = randomContent(300_000);
    const url = await createAs(stack.server.url, alice, more.length);
    await tusClientUpload(stack.server.url, more, { uploadUrl: url, headers: bearer(alice) });
    expect(await download(url, bearer(alice))).toEqual({ status: 200, sha256: sha256(more) });
  });

  test('a client cannot name the owner in its metadata, and HEAD never shows it', async () => {
    const url = await createAs(stack.server.url, alice, 5, { 'tus-owner': 'bob', filename: 'x' });
    expect(await offsetAs(url, bob)).toBe('status 404');
    const res = await fetch(url, { method: 'HEAD', headers: { ...TUS, ...bearer(alice) } });
    expect(res.status).toBe(200);
    expect(res.headers.get('upload-metadata')).toBe(encodeMetadata({ filename: 'x' }));
  });

  test('CORS preflights need no token', async () => {
    const res = await fetch(`${stack.server.url}/files/`, {
      method: 'OPTIONS',
      headers: {
        Origin: 'https://app.example.com',
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'authorization, tus-resumable, upload-length',
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-headers')).toMatch(/Authorization/);
  });

  describe('signed download links', () => {
    async function linkFor(url: string, token: string, expiresIn: unknown = 300) {
      const res = await fetch(`${url}/links`, {
        method: 'POST',
        headers: { ...bearer(token), 'Content-Type': 'application/json' },
        body: JSON.stringify({ expiresIn }),
      });
      return { status: res.status, body: (await res.json()) as { url: string; expiresAt: string } };
    }

    test('the owner gets a link that downloads without a token: GET, HEAD and ranges', async () => {
      const before = Date.now();
      const { status, body } = await linkFor(finished, alice, 300);
      expect(status).toBe(201);
      expect(Date.parse(body.expiresAt) - before).toBeGreaterThan(295_000);
      expect(Date.parse(body.expiresAt) - before).toBeLessThan(305_000);
      expect(await download(body.url)).toEqual({ status: 200, sha256: sha256(data) });
      const head = await fetch(body.url, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(head.headers.get('content-length')).toBe(String(data.length));
      const ranged = await fetch(body.url, { headers: { Range: 'bytes=100-199' } });
      expect(ranged.status).toBe(206);
      expect(Buffer.from(await ranged.arrayBuffer())).toEqual(data.subarray(100, 200));
    });

    test('a tampered link is refused with 403', async () => {
      const { body } = await linkFor(finished, alice);
      const link = new URL(body.url);
      const expires = Number(link.searchParams.get('expires'));
      const signature = link.searchParams.get('signature') ?? '';
      const tampered = [
        new URL(`?expires=${expires + 3600}&signature=${signature}`, link),
        new URL(
          `?expires=${expires}&signature=${signature[0] === 'A' ? 'B' : 'A'}${signature.slice(1)}`,
          link,
        ),
        new URL(`?expires=${expires}`, link),
        new URL(`${link.pathname.replace(idOf(finished), idOf(unfinished))}${link.search}`, link),
      ];
      for (const url of tampered) {
        const res = await fetch(url);
        expect({ url: url.toString(), status: res.status }).toEqual({
          url: url.toString(),
          status: 403,
        });
      }
      // A link is for downloads only: it cannot PATCH or DELETE.
      const del = await fetch(link, { method: 'DELETE', headers: TUS });
      expect(del.status).toBe(403);
      expect(await download(finished, bearer(alice))).toEqual({
        status: 200,
        sha256: sha256(data),
      });
    });

    test('an expired link is refused with 403', async () => {
      const { body } = await linkFor(finished, alice, 1);
      expect((await fetch(body.url)).status).toBe(200);
      // The expiry is what is tested: wait it out.
      await sleep(Date.parse(body.expiresAt) - Date.now() + 50);
      expect((await fetch(body.url)).status).toBe(403);
    });

    test('only the owner may ask, only for a finished upload, for at most 7 days', async () => {
      expect((await linkFor(finished, bob)).status).toBe(404);
      expect((await linkFor(unfinished, alice)).status).toBe(409);
      for (const bad of [0, -5, 1.5, '60', 8 * 24 * 3600]) {
        expect((await linkFor(finished, alice, bad)).status).toBe(400);
      }
    });

    test.each([
      ['not JSON', 400, 'expiresIn=60', 'the request body must be a JSON object'],
      ['truncated JSON', 400, '{"expiresIn": 60', 'the request body must be a JSON object'],
      ['null', 400, 'null', 'the request body must be a JSON object'],
      ['a JSON array', 400, '[60]', 'the request body must be a JSON object'],
      ['a JSON string', 400, '"60"', 'the request body must be a JSON object'],
      [
        'over 1 KB',
        413,
        JSON.stringify({ expiresIn: 60, pad: 'x'.repeat(1100) }),
        'the request body must be at most 1 KB',
      ],
    ])('a body that is %s answers %p with a JSON reason', async (_name, status, body, error) => {
      const res = await fetch(`${finished}/links`, {
        method: 'POST',
        headers: { ...bearer(alice), 'Content-Type': 'application/json' },
        body,
      });
      expect(res.status).toBe(status);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await res.json()).toEqual({ error });
    });
  });
});

describe('links across instances (S3 + Redis, one LINK_SIGNING_KEY)', () => {
  const stack = serverOnStorage('s3+redis', {
    AUTH_JWT_SECRET: JWT_SECRET,
    LINK_SIGNING_KEY: 'link-key-0123456789-abcdefghijklmnopq',
  });
  let other: ServerProcess;
  afterAll(async () => {
    await other?.stop();
  });

  test('a link made by one instance downloads from another', async () => {
    other = await startServer({
      ...stack.storage.env,
      AUTH_JWT_SECRET: JWT_SECRET,
      LINK_SIGNING_KEY: 'link-key-0123456789-abcdefghijklmnopq',
    });
    const data = randomContent(50_000);
    const alice = await tokenFor('alice');
    const url = await tusClientUpload(stack.server.url, data, { headers: bearer(alice) });
    const res = await fetch(`${url}/links`, {
      method: 'POST',
      headers: { ...bearer(alice), 'Content-Type': 'application/json' },
      body: '{"expiresIn": 60}',
    });
    const link = new URL(((await res.json()) as { url: string }).url);
    const elsewhere = `${other.url}${link.pathname}${link.search}`;
    expect(await download(elsewhere)).toEqual({ status: 200, sha256: sha256(data) });
  });
});

describe('tokens from a JWKS (RS256), with issuer and audience checked', () => {
  let jwks: Awaited<ReturnType<typeof startJwks>>;
  let server: ServerProcess;
  let storage: TestStorage;
  const create = (token: string) =>
    fetch(`${server.url}/files/`, {
      method: 'POST',
      headers: { ...TUS, ...bearer(token), 'Upload-Length': '1' },
    });

  beforeAll(async () => {
    jwks = await startJwks();
    storage = createTestStorage('file');
    server = await startServer({
      ...storage.env,
      AUTH_JWKS_URL: jwks.url,
      AUTH_JWT_ISSUER: 'https://issuer.example',
      AUTH_JWT_AUDIENCE: 'uploads',
    });
  });
  afterAll(async () => {
    await server?.stop();
    await storage?.cleanup();
    await jwks?.close();
  });

  test('a token signed by a key of the JWKS for this issuer and audience creates uploads', async () => {
    const token = await jwks.sign('carol', {
      issuer: 'https://issuer.example',
      audience: 'uploads',
    });
    expect((await create(token)).status).toBe(201);
  });

  test.each([
    ['no issuer or audience', {}],
    ['another issuer', { issuer: 'https://other.example', audience: 'uploads' }],
    ['another audience', { issuer: 'https://issuer.example', audience: 'other' }],
  ])('a JWKS-signed token with %s is refused with 401', async (_name, claims) => {
    const res = await create(await jwks.sign('carol', claims));
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
  });

  test('an HS256 token, even one keyed with the JWKS URL, is refused (only RS256/ES256)', async () => {
    const token = await tokenFor('carol', {
      secret: new TextEncoder().encode(jwks.url),
      claims: { iss: 'https://issuer.example', aud: 'uploads' },
    });
    expect((await create(token)).status).toBe(401);
  });
});

describe('a JWKS that cannot be fetched', () => {
  const stack = serverOnStorage('file', { AUTH_JWKS_URL: 'http://127.0.0.1:9/jwks.json' });

  test('requests answer 503 with Retry-After: the token may be fine, the server cannot tell', async () => {
    // An RS256 token, so that only the keys can decide (an HS256 one is refused at once).
    const jwks = await startJwks();
    const token = await jwks.sign('carol');
    await jwks.close();
    const res = await fetch(`${stack.server.url}/files/`, {
      method: 'POST',
      headers: { ...TUS, ...bearer(token), 'Upload-Length': '1' },
    });
    expect(res.status).toBe(503);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await res.text()).toMatch(/token keys unavailable/);
  });
});
