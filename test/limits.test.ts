import { afterAll, describe, expect, test } from '@jest/globals';
import { serverOnStorage } from './harness/serverOnStorage.ts';
import { type ServerProcess, startServer } from './harness/serverProcess.ts';
import { randomContent, STORAGE_KINDS } from './harness/stack.ts';
import { bearer, JWT_SECRET, tokenFor } from './harness/tokens.ts';
import { TUS, tusClientUpload } from './harness/tus.ts';

const LIMIT = 5;
const APP = 'https://app.example.com';

function create(base: string, headers: Record<string, string> = {}) {
  return fetch(`${base}/files/`, {
    method: 'POST',
    headers: { ...TUS, ...headers, 'Upload-Length': '10' },
  });
}

describe.each(STORAGE_KINDS)('limits, CORS and safe downloads on the %s configuration', (kind) => {
  describe('CREATE_RATE_LIMIT per client address (anonymous)', () => {
    const stack = serverOnStorage(kind, { CREATE_RATE_LIMIT: String(LIMIT), DEDUPE_PROOF: 'on' });

    test(`creation ${LIMIT + 1} within a minute gets 429 with Retry-After and creates nothing; proofs share the budget`, async () => {
      for (let i = 0; i < LIMIT; i += 1) expect((await create(stack.server.url)).status).toBe(201);
      const before = await stack.storage.inventory();
      const refused = await create(stack.server.url);
      expect(refused.status).toBe(429);
      const retryAfter = Number(refused.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(await refused.json()).toEqual({ error: 'too many uploads created, retry later' });
      expect(await stack.storage.inventory()).toEqual(before);
      const proof = await fetch(`${stack.server.url}/files/${'0'.repeat(32)}/proof`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ answer: '0'.repeat(64) }),
      });
      expect(proof.status).toBe(429);
    });
  });

  describe('CREATE_RATE_LIMIT per IPv6 /64 and IPv4-mapped address (behind a proxy)', () => {
    const stack = serverOnStorage(kind, { CREATE_RATE_LIMIT: String(LIMIT), TRUST_PROXY: 'on' });
    const from = (address: string) => create(stack.server.url, { 'X-Forwarded-For': address });

    test('addresses of one /64 share a budget, the next /64 has its own; ::ffff:a.b.c.d is a.b.c.d', async () => {
      for (let i = 0; i < LIMIT; i += 1) {
        expect((await from(`2001:db8:1:2:${(i + 1).toString(16)}::1`)).status).toBe(201);
      }
      expect((await from('2001:db8:1:2:aaaa::1')).status).toBe(429);
      expect((await from('2001:db8:1:2:bbbb::2')).status).toBe(429);
      expect((await from('2001:db8:1:3::1')).status).toBe(201);
      for (let i = 0; i < LIMIT; i += 1) {
        const address = i % 2 === 0 ? '203.0.113.7' : '::ffff:203.0.113.7';
        expect((await from(address)).status).toBe(201);
      }
      expect((await from('::ffff:203.0.113.7')).status).toBe(429);
      expect((await from('203.0.113.7')).status).toBe(429);
      expect((await from('203.0.113.8')).status).toBe(201);
    });
  });

  describe('CREATE_RATE_LIMIT per owner (auth on)', () => {
    const stack = serverOnStorage(kind, {
      CREATE_RATE_LIMIT: String(LIMIT),
      AUTH_JWT_SECRET: JWT_SECRET,
    });

    test("one owner's budget is its own", async () => {
      const alice = bearer(await tokenFor('alice'));
      const bob = bearer(await tokenFor('bob'));
      for (let i = 0; i < LIMIT; i += 1) {
        expect((await create(stack.server.url, alice)).status).toBe(201);
      }
      expect((await create(stack.server.url, alice)).status).toBe(429);
      expect((await create(stack.server.url, bob)).status).toBe(201);
    });
  });

  describe('CORS_ORIGINS', () => {
    const stack = serverOnStorage(kind, { CORS_ORIGINS: `${APP}, https://other.example.com` });

    test('a listed origin is echoed with Vary: Origin on tus, download and preflight answers', async () => {
      const data = randomContent(100);
      const url = await tusClientUpload(stack.server.url, data);
      const answers = [
        await create(stack.server.url, { Origin: APP }),
        await fetch(url, { method: 'HEAD', headers: { ...TUS, Origin: APP } }),
        await fetch(url, { headers: { Origin: APP, Range: 'bytes=0-9' } }),
        await fetch(`${stack.server.url}/files/`, {
          method: 'OPTIONS',
          headers: { Origin: APP, 'Access-Control-Request-Method': 'POST' },
        }),
      ];
      for (const res of answers) {
        expect(res.headers.get('access-control-allow-origin')).toBe(APP);
        expect(res.headers.get('vary')).toMatch(/Origin/);
      }
      const exposed = (answers[0]?.headers.get('access-control-expose-headers') ?? '').split(', ');
      for (const name of [
        'Location',
        'Upload-Offset',
        'Upload-Length',
        'Tus-Resumable',
        'X-Request-Id',
      ]) {
        expect(exposed).toContain(name);
      }
      const download = (answers[2]?.headers.get('access-control-expose-headers') ?? '').split(', ');
      for (const name of ['Content-Range', 'Content-Disposition', 'ETag', 'Content-Length']) {
        expect(download).toContain(name);
      }
    });

    test('another origin gets no Access-Control-Allow-Origin at all', async () => {
      const data = randomContent(100);
      const url = await tusClientUpload(stack.server.url, data);
      for (const res of [
        await create(stack.server.url, { Origin: 'https://evil.example' }),
        await fetch(url, { headers: { Origin: 'https://evil.example' } }),
        await fetch(`${stack.server.url}/files/`, {
          method: 'OPTIONS',
          headers: { Origin: 'https://evil.example', 'Access-Control-Request-Method': 'POST' },
        }),
      ]) {
        expect(res.headers.get('access-control-allow-origin')).toBeNull();
      }
    });
  });

  describe('downloads never run as code on this origin', () => {
    const stack = serverOnStorage(kind);

    test.each([
      'text/javascript',
      'application/javascript; charset=utf-8',
      'text/ecmascript',
      'application/wasm',
      'TEXT/JAVASCRIPT',
    ])('filetype %s is served as application/octet-stream, sandboxed, nosniff', async (type) => {
      const url = await tusClientUpload(stack.server.url, Buffer.from('alert(1)'), {
        metadata: { filename: 'x.js', filetype: type },
      });
      const res = await fetch(url);
      expect(res.headers.get('content-type')).toBe('application/octet-stream');
      expect(res.headers.get('content-security-policy')).toBe('sandbox');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('content-disposition')).toMatch(/^attachment/);
    });

    test('every download answer carries the sandbox, HTML and images included', async () => {
      for (const type of ['text/html', 'image/png', 'image/svg+xml']) {
        const url = await tusClientUpload(stack.server.url, Buffer.from('<b>x</b>'), {
          metadata: { filetype: type },
        });
        for (const res of [
          await fetch(url),
          await fetch(url, { method: 'HEAD' }),
          await fetch(url, { headers: { Range: 'bytes=0-1' } }),
        ]) {
          expect(res.headers.get('content-security-policy')).toBe('sandbox');
        }
      }
    });
  });
});

describe('the creation budget is shared by instances through Redis', () => {
  const stack = serverOnStorage('s3+redis', { CREATE_RATE_LIMIT: String(LIMIT) });
  let other: ServerProcess;
  afterAll(async () => {
    await other?.stop();
  });

  test(`${LIMIT} creations spread over two instances use up one budget`, async () => {
    other = await startServer({ ...stack.storage.env, CREATE_RATE_LIMIT: String(LIMIT) });
    const servers = [stack.server, other];
    for (let i = 0; i < LIMIT; i += 1) {
      expect((await create(servers[i % 2]?.url ?? '')).status).toBe(201);
    }
    expect((await create(other.url)).status).toBe(429);
    expect((await create(stack.server.url)).status).toBe(429);
  });
});
