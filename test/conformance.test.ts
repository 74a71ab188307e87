import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { type ServerProcess, startServer } from './harness/serverProcess.ts';
import { waitFor } from './harness/services.ts';
import {
  createTestStorage,
  S3_COMPAT_KINDS,
  STORAGE_KINDS,
  type StorageKind,
  sha256,
  type TestStorage,
} from './harness/stack.ts';
import {
  createUpload,
  creationRequest,
  downloadedSha256,
  head,
  idOf,
  offsetOf,
  patch,
  patchHeaders,
  TUS,
} from './harness/tus.ts';

const DATA = Buffer.from('hello world!');
const OCTETS = { 'Content-Type': 'application/offset+octet-stream' };
/** RFC 9110's IMF-fixdate, e.g. `Sat, 18 Apr 2020 12:31:39 GMT`. */
const IMF_FIXDATE =
  /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/;

/** `Upload-Checksum` of `data` in `algorithm`. */
function checksumOf(algorithm: string, data: Buffer): string {
  return `${algorithm} ${createHash(algorithm).update(data).digest('base64')}`;
}

/**
 * A PATCH whose body is sent chunked with `Trailer: Upload-Checksum`, the checksum following the
 * body as an HTTP trailer (node:http's addTrailers; curl 7.88 cannot send request trailers).
 */
function patchWithTrailer(
  url: string,
  offset: number,
  body: Buffer,
  trailer: string | undefined,
): Promise<{ status: number; offset: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: 'PATCH',
      headers: { ...patchHeaders(offset), Trailer: 'Upload-Checksum' },
    });
    req.once('error', reject);
    req.once('response', (res) => {
      res.resume();
      res.once('end', () =>
        resolve({ status: res.statusCode ?? 0, offset: res.headers['upload-offset'] as string }),
      );
    });
    req.write(body);
    if (trailer) req.addTrailers({ 'Upload-Checksum': trailer });
    req.end();
  });
}

/** The samples of the Prometheus text at `url`, and the metric names it declares with their type. */
async function scrape(url: string | undefined) {
  if (!url) throw new Error('the server has no metrics listener');
  const text = await (await fetch(url)).text();
  const types = new Map<string, string>();
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type?.[1] && type[2]) types.set(type[1], type[2]);
    const sample = /^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (sample?.[1] && sample[2]) samples.set(sample[1], Number(sample[2]));
  }
  return { types, samples };
}

// Three servers share one storage: one with the default expiry, one whose uploads expire after 1 s
// (neither sweeps during the run, so an expired upload stays to be answered 410), and one that
// allows a single creation per minute, counted in-process (in Redis the other two servers'
// creations would count against it).
function conformanceStack(kind: StorageKind) {
  const stack = {} as {
    storage: TestStorage;
    server: ServerProcess;
    expiring: ServerProcess;
    limited: ServerProcess;
  };
  beforeAll(async () => {
    stack.storage = createTestStorage(kind);
    const env = { ...stack.storage.env, EXPIRY_SWEEP_SECONDS: '3600' };
    stack.server = await startServer(env);
    stack.expiring = await startServer({ ...env, UPLOAD_EXPIRY_SECONDS: '1' });
    stack.limited = await startServer({ ...env, CREATE_RATE_LIMIT: '1', REDIS_URL: undefined });
  });
  afterAll(async () => {
    await Promise.all([stack.server?.stop(), stack.expiring?.stop(), stack.limited?.stop()]);
    await stack.storage?.cleanup();
  });
  return stack;
}

describe.each([...STORAGE_KINDS, ...S3_COMPAT_KINDS])(
  'tus 1.0.0 conformance on the %s configuration',
  (kind) => {
    const stack = conformanceStack(kind);
    const base = () => stack.server.url;

    // First: nothing has happened yet on this server.
    test('GET /metrics at start-up: every counter and histogram has its known series at 0', async () => {
      const { types, samples } = await scrape(stack.server.metricsUrl);
      const ours = [...types].filter(([name]) => name.startsWith('tus_'));
      expect(ours.length).toBeGreaterThan(10);
      for (const [name, type] of ours) {
        const series = type === 'histogram' ? `${name}_count` : name;
        const present = [...samples.keys()].some((key) => key.split('{')[0] === series);
        expect({ name, present }).toEqual({ name, present: true });
      }
      for (const kind of ['owner', 'proof', 'content']) {
        expect(samples.get(`tus_dedupe_hits_total{kind="${kind}"}`)).toBe(0);
      }
      for (const hook of [
        'pre-create',
        'post-create',
        'post-receive',
        'pre-finish',
        'post-finish',
      ]) {
        expect(samples.get(`tus_hook_invocations_total{hooktype="${hook}"}`)).toBe(0);
        expect(samples.get(`tus_hook_errors_total{hooktype="${hook}"}`)).toBe(0);
      }
      expect(
        samples.get(
          'tus_request_duration_seconds_count{method="PATCH",route="/files/:id",status="500"}',
        ),
      ).toBe(0);
      if (kind !== 'file') {
        expect(samples.get('tus_s3_request_duration_seconds_count{operation="UploadPart"}')).toBe(
          0,
        );
      }
    });

    test('a finished upload takes a PATCH at its offset with an empty body: 204, nothing read back', async () => {
      const url = await createUpload(base(), DATA.length);
      expect((await patch(url, 0, DATA)).status).toBe(204);
      for (const headers of [{ 'Content-Length': '0' }, {}]) {
        // Twice with Content-Length: 0, then once chunked with no bytes.
        for (let i = 0; i < (headers['Content-Length'] ? 2 : 1); i++) {
          const res = headers['Content-Length']
            ? await patch(url, 12, Buffer.alloc(0), headers)
            : await fetch(url, {
                method: 'PATCH',
                headers: patchHeaders(12),
                body: new ReadableStream({ start: (c) => c.close() }),
                duplex: 'half',
              } as RequestInit);
          expect(res.status).toBe(204);
          expect(res.headers.get('upload-offset')).toBe('12');
        }
      }
      // A byte more is past the length.
      expect((await patch(url, 12, Buffer.from('x'))).status).toBe(413);
      expect(await downloadedSha256(url)).toBe(sha256(DATA));
      const readBack = stack.server
        .logs()
        .filter(
          (line) => line.uploadId === idOf(url) && /reading the upload back/.test(String(line.msg)),
        );
      expect(readBack).toEqual([]);
    });

    test('a PATCH without Upload-Offset gets 400 with the reason', async () => {
      const url = await createUpload(base(), DATA.length);
      const res = await fetch(url, { method: 'PATCH', headers: { ...TUS, ...OCTETS }, body: DATA });
      expect(res.status).toBe(400);
      expect(await res.text()).toMatch(/Upload-Offset/);
      expect(await offsetOf(url)).toBe(0);
    });

    test('a Base64 digest of the wrong length is a 460 mismatch; the right one then stores the chunk', async () => {
      const url = await createUpload(base(), DATA.length);
      const wrong = await patch(url, 0, DATA, {
        'Upload-Checksum': 'sha1 AAAAAAAAAAAAAAAAAAAAAAAAAAAA',
      });
      expect(wrong.status).toBe(460);
      expect(await offsetOf(url)).toBe(0);
      const right = await patch(url, 0, DATA, { 'Upload-Checksum': checksumOf('sha1', DATA) });
      expect(right.status).toBe(204);
      expect(await downloadedSha256(url)).toBe(sha256(DATA));
    });

    test.each([
      ['a digest that is not Base64', 'sha1 not-base64!'],
      ['an unknown algorithm', `crc32 ${Buffer.from('abcd').toString('base64')}`],
    ])('%s stays 400', async (_case, value) => {
      const url = await createUpload(base(), DATA.length);
      expect((await patch(url, 0, DATA, { 'Upload-Checksum': value })).status).toBe(400);
      expect(await offsetOf(url)).toBe(0);
    });

    test('creation-with-upload with a body that is not application/offset+octet-stream gets 415, creates nothing', async () => {
      const before = await stack.storage.inventory();
      const res = await fetch(`${base()}/files/`, {
        method: 'POST',
        headers: { ...TUS, 'Upload-Length': '12', 'Content-Type': 'text/plain' },
        body: DATA,
      });
      expect(res.status).toBe(415);
      expect(res.headers.get('location')).toBeNull();
      expect(await stack.storage.inventory()).toEqual(before);
    });

    test('a PATCH at the wrong offset gets 409 with the current Upload-Offset', async () => {
      const url = await createUpload(base(), DATA.length);
      expect((await patch(url, 0, DATA.subarray(0, 5))).status).toBe(204);
      const res = await patch(url, 3, DATA.subarray(3));
      expect(res.status).toBe(409);
      expect(res.headers.get('upload-offset')).toBe('5');
      expect((await patch(url, 5, DATA.subarray(5))).status).toBe(204);
      expect(await downloadedSha256(url)).toBe(sha256(DATA));
    });

    test('an unfinished upload carries Upload-Expires (IMF-fixdate) on creation, PATCH and HEAD; a finished one does not', async () => {
      const created = await creationRequest(base(), DATA.length);
      const url = new URL(created.headers.get('location') ?? '', base()).toString();
      const expires = created.headers.get('upload-expires') ?? '';
      expect(expires).toMatch(IMF_FIXDATE);
      const patched = await patch(url, 0, DATA.subarray(0, 5));
      expect(patched.headers.get('upload-expires')).toBe(expires);
      const state = await head(url);
      expect(state.headers.get('upload-expires')).toBe(expires);
      expect(Date.parse(expires) - Date.now()).toBeGreaterThan(86_000_000);
      const deferred = await createUpload(base(), 'deferred');
      expect((await head(deferred)).headers.get('upload-expires')).toMatch(IMF_FIXDATE);
      const last = await patch(url, 5, DATA.subarray(5));
      expect(last.headers.get('upload-expires')).toBeNull();
      expect((await head(url)).headers.get('upload-expires')).toBeNull();
    });

    test('a creation refused with 412 is not processed: it does not count against the creation rate limit', async () => {
      for (const headers of [{ 'Tus-Resumable': '0.2.2' }, {}] as Record<string, string>[]) {
        const res = await fetch(`${stack.limited.url}/files/`, {
          method: 'POST',
          headers: { 'Upload-Length': '12', ...headers },
        });
        expect(res.status).toBe(412);
        expect(res.headers.get('tus-version')).toBe('1.0.0');
      }
      expect((await creationRequest(stack.limited.url, DATA.length)).status).toBe(201);
      expect((await creationRequest(stack.limited.url, DATA.length)).status).toBe(429);
    });

    test.each([
      ['a known length', DATA.length, {}],
      ['a deferred length', 'deferred', {}],
      ['Upload-Concat: partial', DATA.length, { 'Upload-Concat': 'partial' }],
    ] as const)(
      'a tus HEAD of an upload created without metadata (%s) has no Upload-Metadata',
      async (_case, length, headers) => {
        const url = await createUpload(base(), length, headers);
        const res = await head(url);
        expect(res.status).toBe(200);
        expect(res.headers.get('upload-metadata')).toBeNull();
        const named = await createUpload(base(), length, {
          ...headers,
          'Upload-Metadata': 'a,b Yg==',
        });
        expect((await head(named)).headers.get('upload-metadata')).toBe('a,b Yg==');
      },
    );

    test('checksum-trailer is listed in Tus-Extension', async () => {
      const res = await fetch(`${base()}/files/`, { method: 'OPTIONS' });
      expect(res.headers.get('tus-extension')?.split(',')).toEqual(
        expect.arrayContaining(['checksum', 'checksum-trailer']),
      );
    });

    test('an Upload-Checksum trailer verifies the chunk: a mismatch is 460 and stores nothing, the match is 204', async () => {
      const url = await createUpload(base(), DATA.length);
      const first = DATA.subarray(0, 5);
      const stored = await stack.storage.inventory();
      const wrong = await patchWithTrailer(url, 0, first, checksumOf('sha256', DATA));
      expect(wrong.status).toBe(460);
      expect(await offsetOf(url)).toBe(0);
      expect(await stack.storage.inventory()).toEqual(stored);
      const right = await patchWithTrailer(url, 0, first, checksumOf('sha256', first));
      expect(right).toEqual({ status: 204, offset: '5' });
      const rest = DATA.subarray(5);
      const md5 = await patchWithTrailer(url, 5, rest, checksumOf('md5', rest));
      expect(md5).toEqual({ status: 204, offset: '12' });
      expect(await downloadedSha256(url)).toBe(sha256(DATA));
    });

    test.each([
      ['a declared trailer that never comes', undefined],
      ['a trailer with an unknown algorithm', 'crc32 AAAAAA=='],
      ['a trailer that is not Base64', 'sha1 %%%'],
    ])('%s gets 400 and stores nothing', async (_case, trailer) => {
      const url = await createUpload(base(), DATA.length);
      expect((await patchWithTrailer(url, 0, DATA, trailer)).status).toBe(400);
      expect(await offsetOf(url)).toBe(0);
    });

    describe('every method on every upload state', () => {
      type State =
        | 'fresh'
        | 'partial'
        | 'finished'
        | 'deferred'
        | 'expired'
        | 'terminated'
        | 'final';
      const STATES: State[] = [
        'fresh',
        'partial',
        'finished',
        'deferred',
        'expired',
        'terminated',
        'final',
      ];
      /** Bytes each state holds (its offset), and its length (undefined while deferred). */
      const OFFSET: Record<State, number> = {
        fresh: 0,
        partial: 5,
        finished: 12,
        deferred: 5,
        expired: 5,
        terminated: 0,
        final: 12,
      };
      const expiredPool: string[] = [];

      /** A finished partial upload of DATA's bytes from `start`, 6 of them. */
      async function partialUpload(start = 0): Promise<string> {
        const url = await createUpload(base(), 6, { 'Upload-Concat': 'partial' });
        expect((await patch(url, 0, DATA.subarray(start, start + 6))).status).toBe(204);
        return url;
      }

      /** A new upload in `state`; its bytes are DATA's first OFFSET[state]. */
      async function uploadIn(state: State): Promise<string> {
        if (state === 'expired') {
          const url = expiredPool.pop();
          if (!url) throw new Error('the pool of expired uploads is empty');
          return url;
        }
        if (state === 'final') {
          const urls = [await partialUpload(0), await partialUpload(6)];
          const res = await fetch(`${base()}/files/`, {
            method: 'POST',
            headers: { ...TUS, 'Upload-Concat': `final;${urls.join(' ')}` },
          });
          expect(res.status).toBe(201);
          return new URL(res.headers.get('location') ?? '', base()).toString();
        }
        const url = await createUpload(base(), state === 'deferred' ? 'deferred' : DATA.length);
        if (OFFSET[state] > 0) {
          expect((await patch(url, 0, DATA.subarray(0, OFFSET[state]))).status).toBe(204);
        }
        if (state === 'terminated') {
          expect((await fetch(url, { method: 'DELETE', headers: TUS })).status).toBe(204);
        }
        return url;
      }

      type Cell = {
        name: string;
        send(url: string, state: State): Promise<Response>;
        /** The status per state. */
        expected: Record<State, number>;
      };
      /** One status for every state but those named. */
      const all = (status: number, except: Partial<Record<State, number>> = {}) =>
        Object.fromEntries(STATES.map((state) => [state, except[state] ?? status])) as Record<
          State,
          number
        >;
      const gone = { expired: 410, terminated: 404 };
      const nextByte = (state: State) => DATA.subarray(OFFSET[state], OFFSET[state] + 1);

      const CELLS: Cell[] = [
        {
          name: 'OPTIONS',
          send: (url) => fetch(url, { method: 'OPTIONS' }),
          expected: all(204),
        },
        // Creation is at the creation URL only (tusd: 405); @tus/server alone would create one.
        {
          name: 'POST to the upload URL',
          send: (url) => fetch(url, { method: 'POST', headers: { ...TUS, 'Upload-Length': '1' } }),
          expected: all(405),
        },
        {
          name: 'tus HEAD',
          send: (url) => head(url),
          expected: all(200, gone),
        },
        {
          name: 'tus HEAD with Tus-Resumable 0.2.2',
          send: (url) => head(url, { 'Tus-Resumable': '0.2.2' }),
          expected: all(412),
        },
        {
          name: 'PATCH of the next byte (an empty body once finished)',
          send: (url, state) =>
            patch(
              url,
              OFFSET[state],
              ['finished', 'final'].includes(state) ? Buffer.alloc(0) : nextByte(state),
            ),
          expected: all(204, { ...gone, final: 403 }),
        },
        {
          name: 'PATCH of a byte past the length',
          send: (url, state) => patch(url, OFFSET[state], Buffer.from('xx'), {}),
          // fresh and partial take 2 bytes; finished has no room; deferred takes any.
          expected: all(204, { ...gone, finished: 413, final: 403 }),
        },
        {
          name: 'PATCH at a wrong offset',
          send: (url, state) => patch(url, OFFSET[state] + 1, Buffer.from('x')),
          expected: all(409, { ...gone, final: 403 }),
        },
        {
          name: 'PATCH without Upload-Offset',
          send: (url) => fetch(url, { method: 'PATCH', headers: { ...TUS, ...OCTETS }, body: 'x' }),
          expected: all(400),
        },
        {
          name: 'PATCH with Content-Type text/plain',
          send: (url, state) =>
            patch(url, OFFSET[state], Buffer.from('x'), { 'Content-Type': 'text/plain' }),
          expected: all(415),
        },
        {
          name: 'PATCH with a mismatching Upload-Checksum',
          send: (url, state) =>
            patch(url, OFFSET[state], Buffer.from('x'), {
              'Upload-Checksum': checksumOf('sha1', DATA),
            }),
          expected: all(460, { ...gone, finished: 413, final: 403 }),
        },
        {
          name: 'PATCH declaring Upload-Length',
          send: (url, state) =>
            patch(url, OFFSET[state], nextByte(state), { 'Upload-Length': String(DATA.length) }),
          // Only a deferred length may be declared; a known one is a 400.
          expected: all(400, { ...gone, deferred: 204, final: 403 }),
        },
        {
          name: 'DELETE',
          send: (url) => fetch(url, { method: 'DELETE', headers: TUS }),
          // An expired upload that is still stored is removed like any other.
          expected: all(204, { terminated: 404 }),
        },
        {
          name: 'DELETE without Tus-Resumable',
          send: (url) => fetch(url, { method: 'DELETE' }),
          expected: all(412),
        },
        // Downloads: only a finished upload has bytes to serve; any other is not found.
        {
          name: 'GET',
          send: (url) => fetch(url),
          expected: all(404, { finished: 200, final: 200 }),
        },
        {
          name: 'HEAD without Tus-Resumable (the download HEAD)',
          send: (url) => fetch(url, { method: 'HEAD' }),
          expected: all(404, { finished: 200, final: 200 }),
        },
      ];

      beforeAll(async () => {
        const needed = CELLS.length;
        const urls: string[] = [];
        for (let i = 0; i < needed; i++) {
          const url = await createUpload(stack.expiring.url, DATA.length);
          expect((await patch(url, 0, DATA.subarray(0, OFFSET.expired))).status).toBe(204);
          urls.push(url.replace(stack.expiring.url, base()));
        }
        // The expiring server says when they have expired (its expiry, not the default server's).
        const last = (urls.at(-1) ?? '').replace(base(), stack.expiring.url);
        await waitFor(
          async () => (await head(last)).status === 410,
          'the uploads expiring',
          10_000,
        );
        expiredPool.push(...urls.map((url) => url.replace(base(), stack.expiring.url)));
      });

      const rows = CELLS.flatMap((cell) =>
        STATES.map((state) => [cell.name, state, cell.expected[state], cell] as const),
      );
      test.each(rows)('%s on a %s upload → %i', async (_name, state, status, cell) => {
        const url = await uploadIn(state);
        const res = await cell.send(url, state);
        await res.arrayBuffer();
        expect(res.status).toBeLessThan(500);
        expect(res.status).toBe(status);
        // What was finished is still served byte for byte, unless the cell deleted it.
        if (
          (state === 'finished' || state === 'final') &&
          res.status !== 204 &&
          !/DELETE/.test(cell.name)
        ) {
          expect(await downloadedSha256(url)).toBe(sha256(DATA));
        }
        if (
          state === 'finished' &&
          cell.name === 'PATCH of the next byte (an empty body once finished)'
        ) {
          expect(await downloadedSha256(url)).toBe(sha256(DATA));
        }
      });

      test.each([
        ['Upload-Length', { 'Upload-Length': '12' }, 201],
        ['Upload-Defer-Length: 1', { 'Upload-Defer-Length': '1' }, 201],
        ['neither length', {}, 400],
        ['both lengths', { 'Upload-Length': '12', 'Upload-Defer-Length': '1' }, 400],
        ['Upload-Defer-Length: 2', { 'Upload-Defer-Length': '2' }, 400],
        ['a negative Upload-Length', { 'Upload-Length': '-1' }, 400],
        ['Upload-Concat of garbage', { 'Upload-Length': '12', 'Upload-Concat': 'whole' }, 400],
        ['no Tus-Resumable', { 'Tus-Resumable': '', 'Upload-Length': '12' }, 412],
      ])('a creation POST with %s → %i', async (_case, headers, status) => {
        const res = await fetch(`${base()}/files/`, {
          method: 'POST',
          headers: { ...TUS, ...headers },
        });
        expect(res.status).toBe(status);
      });

      test.each([
        ['application/offset+octet-stream', OCTETS, 201],
        ['text/plain', { 'Content-Type': 'text/plain' }, 415],
        ['no Content-Type', {}, 415],
      ])('creation-with-upload with %s → %i', async (_case, headers, status) => {
        const res = await fetch(`${base()}/files/`, {
          method: 'POST',
          headers: { ...TUS, 'Upload-Length': '12', ...headers },
          body: DATA,
        });
        expect(res.status).toBe(status);
        if (status === 201) {
          const url = new URL(res.headers.get('location') ?? '', base()).toString();
          expect(await downloadedSha256(url)).toBe(sha256(DATA));
        }
      });

      test("a final upload may name the same partial twice: 201, its bytes that partial's twice", async () => {
        const partial = await partialUpload();
        const res = await fetch(`${base()}/files/`, {
          method: 'POST',
          headers: { ...TUS, 'Upload-Concat': `final;${partial} ${partial}` },
        });
        expect(res.status).toBe(201);
        const url = new URL(res.headers.get('location') ?? '', base()).toString();
        const state = await head(url);
        expect(state.headers.get('upload-concat')).toBe(`final;${partial} ${partial}`);
        expect(state.headers.get('upload-length')).toBe('12');
        const twice = Buffer.concat([DATA.subarray(0, 6), DATA.subarray(0, 6)]);
        expect(await downloadedSha256(url)).toBe(sha256(twice));
      });

      test('a final upload created with a body gets 403, creates nothing and leaves the partial', async () => {
        const partial = await partialUpload();
        const before = await stack.storage.inventory();
        const res = await fetch(`${base()}/files/`, {
          method: 'POST',
          headers: { ...TUS, ...OCTETS, 'Upload-Concat': `final;${partial}` },
          body: DATA.subarray(0, 6),
        });
        expect(res.status).toBe(403);
        expect(res.headers.get('location')).toBeNull();
        expect(await stack.storage.inventory()).toEqual(before);
        expect(await offsetOf(partial)).toBe(6);
      });

      test('a final upload naming an unfinished partial → 400', async () => {
        const unfinished = await createUpload(base(), 6, { 'Upload-Concat': 'partial' });
        const res = await fetch(`${base()}/files/`, {
          method: 'POST',
          headers: { ...TUS, 'Upload-Concat': `final;${unfinished} ${await partialUpload()}` },
        });
        expect(res.status).toBe(400);
      });
    });
  },
);
