import { describe, expect, test } from '@jest/globals';
import { serverOnStorage } from './harness/serverOnStorage.ts';
import { randomContent, STORAGE_KINDS, sha256 } from './harness/stack.ts';
import { bearer, JWT_SECRET, tokenFor } from './harness/tokens.ts';
import { encodeMetadata, TUS } from './harness/tus.ts';

const PATCH_TYPE = { 'Content-Type': 'application/offset+octet-stream' };
const ORIGIN = 'https://app.example.com';
const OVERRIDES = ['HEAD', 'PATCH', 'DELETE', 'POST', 'GET', 'OPTIONS'];
/** Request lines an attacker may put an override on (the tus routes' methods and the preflight). */
const METHODS = ['OPTIONS', 'POST', 'GET', 'HEAD', 'PATCH', 'DELETE'];

/** What a tus HEAD of the upload shows its owner: offset, length and metadata. */
async function stateAs(url: string, token: string) {
  const res = await fetch(url, { method: 'HEAD', headers: { ...TUS, ...bearer(token) } });
  return {
    status: res.status,
    offset: res.headers.get('upload-offset'),
    metadata: res.headers.get('upload-metadata'),
  };
}

/** One attacker's request: an override on some method, a body where a PATCH would carry one. */
function attack(url: string, method: string, override: string, headers: Record<string, string>) {
  return fetch(url, {
    method,
    headers: {
      ...TUS,
      ...headers,
      'X-HTTP-Method-Override': override,
      'Access-Control-Request-Method': 'PATCH',
      Origin: ORIGIN,
      'Upload-Offset': '0',
      'Upload-Length': '5',
      ...PATCH_TYPE,
    },
    body: method === 'GET' || method === 'HEAD' ? undefined : 'EVIL',
  });
}

describe.each(STORAGE_KINDS)(
  'X-HTTP-Method-Override with auth on, on the %s configuration',
  (kind) => {
    const stack = serverOnStorage(kind, {
      AUTH_JWT_SECRET: JWT_SECRET,
      CORS_ORIGINS: ORIGIN,
    });

    async function victimUpload(owner: string): Promise<string> {
      const res = await fetch(`${stack.server.url}/files/`, {
        method: 'POST',
        headers: {
          ...TUS,
          ...bearer(owner),
          'Upload-Length': '12',
          'Upload-Metadata': encodeMetadata({ filename: 'payroll.pdf' }),
        },
      });
      expect(res.status).toBe(201);
      return new URL(res.headers.get('location') ?? '', stack.server.url).toString();
    }

    test('no token: every method x override on /files/ and /files/:id is a 401, and nothing changes', async () => {
      const alice = await tokenFor('alice');
      const url = await victimUpload(alice);
      const before = await stateAs(url, alice);
      expect(before).toMatchObject({ status: 200, offset: '0' });
      expect(before.metadata).toContain('filename');
      for (const target of [url, `${stack.server.url}/files/`]) {
        for (const method of METHODS) {
          for (const override of OVERRIDES) {
            const res = await attack(target, method, override, {});
            await res.arrayBuffer();
            expect({ method, override, target, status: res.status }).toEqual({
              method,
              override,
              target,
              status: 401,
            });
            expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
            expect(res.headers.get('upload-metadata')).toBeNull();
          }
        }
      }
      expect(await stateAs(url, alice)).toEqual(before);
    });

    test("another owner's token: an override is refused or answers 404, and nothing changes", async () => {
      const alice = await tokenFor('alice');
      const mallory = await tokenFor('mallory');
      const url = await victimUpload(alice);
      const before = await stateAs(url, alice);
      for (const method of METHODS) {
        for (const override of OVERRIDES) {
          const res = await attack(url, method, override, bearer(mallory));
          await res.arrayBuffer();
          // Only a POST carries an override; a valid one then meets the ownership check.
          const valid = method === 'POST' && ['HEAD', 'PATCH', 'DELETE', 'POST'].includes(override);
          expect({ method, override, status: res.status }).toEqual({
            method,
            override,
            status: valid ? 404 : 400,
          });
          expect(res.headers.get('upload-metadata')).toBeNull();
        }
      }
      expect(await stateAs(url, alice)).toEqual(before);
    });

    test('a real preflight is answered with capabilities only and goes no further', async () => {
      const alice = await tokenFor('alice');
      const url = await victimUpload(alice);
      const before = await stateAs(url, alice);
      const res = await fetch(url, {
        method: 'OPTIONS',
        headers: {
          Origin: ORIGIN,
          'Access-Control-Request-Method': 'PATCH',
          'Access-Control-Request-Headers': 'authorization, tus-resumable, upload-offset',
        },
      });
      expect(res.status).toBeLessThan(300);
      expect(res.headers.get('access-control-allow-origin')).toBe(ORIGIN);
      expect(res.headers.get('upload-offset')).toBeNull();
      expect(res.headers.get('upload-metadata')).toBeNull();
      expect(await stateAs(url, alice)).toEqual(before);
    });

    test("the owner's POST with an override still writes, reads and deletes (tus-js-client's overridePatchMethod)", async () => {
      const alice = await tokenFor('alice');
      const url = await victimUpload(alice);
      const data = randomContent(12);
      const patched = await fetch(url, {
        method: 'POST',
        headers: {
          ...TUS,
          ...bearer(alice),
          ...PATCH_TYPE,
          'X-HTTP-Method-Override': 'PATCH',
          'Upload-Offset': '0',
        },
        body: new Uint8Array(data),
      });
      expect(patched.status).toBe(204);
      expect(patched.headers.get('upload-offset')).toBe('12');
      const head = await fetch(url, {
        method: 'POST',
        headers: { ...TUS, ...bearer(alice), 'X-HTTP-Method-Override': 'HEAD' },
      });
      expect(head.status).toBe(200);
      expect(head.headers.get('upload-offset')).toBe('12');
      const got = await fetch(url, { headers: bearer(alice) });
      expect(sha256(Buffer.from(await got.arrayBuffer()))).toBe(sha256(data));
      const deleted = await fetch(url, {
        method: 'POST',
        headers: { ...TUS, ...bearer(alice), 'X-HTTP-Method-Override': 'DELETE' },
      });
      expect(deleted.status).toBe(204);
      expect((await stateAs(url, alice)).status).toBe(404);
    });
  },
);

describe.each(STORAGE_KINDS)(
  'the creation rate limit and overrides, on the %s configuration',
  (kind) => {
    const LIMIT = 5;
    const anonymous = serverOnStorage(kind, { CREATE_RATE_LIMIT: String(LIMIT) });
    const authed = serverOnStorage(kind, {
      CREATE_RATE_LIMIT: String(LIMIT),
      AUTH_JWT_SECRET: JWT_SECRET,
    });

    async function creations(base: string, headers: Record<string, string>) {
      const statuses: number[] = [];
      const create = async (method: string, override?: string) => {
        const res = await fetch(`${base}/files/`, {
          method,
          headers: {
            ...TUS,
            ...headers,
            'Upload-Length': '5',
            ...(override ? { 'X-HTTP-Method-Override': override } : {}),
          },
        });
        await res.arrayBuffer();
        statuses.push(res.status);
      };
      for (let i = 0; i < LIMIT + 3; i++) await create('POST');
      for (const method of ['PATCH', 'GET', 'DELETE', 'HEAD', 'OPTIONS']) {
        for (let i = 0; i < 4; i++) await create(method, 'POST');
      }
      for (let i = 0; i < 4; i++) await create('POST', 'POST');
      return statuses;
    }

    test('anonymous: an override never creates past the limit', async () => {
      const statuses = await creations(anonymous.server.url, {});
      expect(statuses.filter((s) => s === 201)).toHaveLength(LIMIT);
      expect(statuses.slice(0, LIMIT)).toEqual(Array(LIMIT).fill(201));
      expect(statuses.slice(LIMIT).every((s) => s === 429 || s === 400)).toBe(true);
      expect(statuses.slice(-4)).toEqual([429, 429, 429, 429]);
    });

    test('with a token: an override never creates past the limit', async () => {
      const statuses = await creations(authed.server.url, bearer(await tokenFor('carol')));
      expect(statuses.filter((s) => s === 201)).toHaveLength(LIMIT);
      expect(statuses.slice(LIMIT).every((s) => s === 429 || s === 400)).toBe(true);
      expect(statuses.slice(-4)).toEqual([429, 429, 429, 429]);
    });
  },
);

describe.each(STORAGE_KINDS)(
  "another owner's upload answers as a missing one, on the %s configuration",
  (kind) => {
    const stack = serverOnStorage(kind, { AUTH_JWT_SECRET: JWT_SECRET });
    /** Headers that differ between any two answers: the time and the request's own log id. */
    const VARYING = new Set(['date', 'keep-alive', 'x-request-id']);

    async function answer(url: string, init: RequestInit) {
      const res = await fetch(url, init);
      const body = Buffer.from(await res.arrayBuffer()).toString('hex');
      const headers = [...res.headers].filter(([name]) => !VARYING.has(name));
      return { status: res.status, headers, body };
    }

    test('tus HEAD, PATCH, DELETE, GET, download HEAD, links and proof: byte for byte the same', async () => {
      const alice = await tokenFor('alice');
      const mallory = await tokenFor('mallory');
      const created = await fetch(`${stack.server.url}/files/`, {
        method: 'POST',
        headers: { ...TUS, ...bearer(alice), 'Upload-Length': '4' },
      });
      const foreign = new URL(created.headers.get('location') ?? '', stack.server.url).toString();
      const missing = `${stack.server.url}/files/${'0'.repeat(32)}`;
      const as = bearer(mallory);
      const requests: Array<[string, string, RequestInit]> = [
        ['tus HEAD', '', { method: 'HEAD', headers: { ...TUS, ...as } }],
        [
          'PATCH',
          '',
          {
            method: 'PATCH',
            headers: { ...TUS, ...as, ...PATCH_TYPE, 'Upload-Offset': '0' },
            body: 'EVIL',
          },
        ],
        ['DELETE', '', { method: 'DELETE', headers: { ...TUS, ...as } }],
        ['GET', '', { headers: as }],
        ['download HEAD', '', { method: 'HEAD', headers: as }],
        [
          'links',
          '/links',
          { method: 'POST', headers: { ...as, 'Content-Type': 'application/json' }, body: '{}' },
        ],
        [
          'proof',
          '/proof',
          {
            method: 'POST',
            headers: { ...as, 'Content-Type': 'application/json' },
            body: JSON.stringify({ answer: '0'.repeat(64) }),
          },
        ],
      ];
      for (const [name, suffix, init] of requests) {
        const a = await answer(`${foreign}${suffix}`, init);
        const b = await answer(`${missing}${suffix}`, init);
        expect({ name, ...a }).toEqual({ name, ...b });
        expect(a.status).toBe(404);
      }
      // Still there for its owner, unchanged.
      const head = await fetch(foreign, { method: 'HEAD', headers: { ...TUS, ...bearer(alice) } });
      expect(head.status).toBe(200);
      expect(head.headers.get('upload-offset')).toBe('0');
    });
  },
);
