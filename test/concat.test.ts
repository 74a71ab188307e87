import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { type CountingProxy, startCountingProxy } from './harness/countingProxy.ts';
import { serverOnStorage } from './harness/serverOnStorage.ts';
import { type ServerProcess, startServer } from './harness/serverProcess.ts';
import { openPatch } from './harness/slowPatch.ts';
import {
  contentCopies,
  createTestStorage,
  MIB,
  randomContent,
  S3_COMPAT_KINDS,
  STORAGE_KINDS,
  type StorageKind,
  sha256,
  type TestStorage,
} from './harness/stack.ts';
import { bearer, JWT_SECRET, tokenFor } from './harness/tokens.ts';
import {
  createUpload,
  downloadedSha256,
  encodeMetadata,
  head,
  idOf,
  offsetOf,
  patch,
  TUS,
  tusClientUpload,
} from './harness/tus.ts';

/** [case, size, parallelUploads]: tus-js-client splits the file into that many partials. */
type ParallelCase = [name: string, size: number, parallelUploads: number];

const PARALLEL_CASES: ParallelCase[] = [
  ['1 KiB in 2 partials', 1024, 2],
  ['1 KiB in 8 partials of 128 B', 1024, 8],
  ['3 MiB + 17 in 2 partials', 3 * MIB + 17, 2],
  ['3 MiB + 17 in 5 partials', 3 * MIB + 17, 5],
  ['21 MiB in 2 partials (each copied whole on S3)', 21 * MIB, 2],
  ['21 MiB + 5 in 4 partials (each over 5 MiB)', 21 * MIB + 5, 4],
  ['21 MiB in 8 partials of 2.6 MiB (gathered into parts on S3)', 21 * MIB, 8],
];

const META = { filename: 'joined.bin', filetype: 'application/x-joined' };

/** Every configuration, and the S3 ones on VersityGW too: removal of partials depends on S3. */
const KINDS: StorageKind[] = [...STORAGE_KINDS, ...S3_COMPAT_KINDS];
const S3_KINDS: StorageKind[] = ['s3', 's3+redis', ...S3_COMPAT_KINDS];
const SCALED_OUT: StorageKind[] = ['s3+redis', 's3-versity+redis'];

/** Creates a partial upload (Upload-Concat: partial) holding `data`, and returns its URL. */
async function partialOf(
  base: string,
  data: Buffer,
  headers: Record<string, string>,
): Promise<string> {
  const url = await createUpload(base, data.length, { ...headers, 'Upload-Concat': 'partial' });
  if (data.length > 0) expect((await patch(url, 0, data, headers)).status).toBe(204);
  return url;
}

/** POSTs the final upload of `urls` (in that order) with `META`, as tus-js-client does. */
function finalOf(
  base: string,
  urls: string[],
  headers: Record<string, string>,
  metadata: Record<string, string> = META,
): Promise<Response> {
  return fetch(`${base}/files/`, {
    method: 'POST',
    headers: {
      ...TUS,
      ...headers,
      'Upload-Concat': `final;${urls.join(' ')}`,
      'Upload-Metadata': encodeMetadata(metadata),
    },
  });
}

function locationOf(base: string, res: Response): string {
  const location = res.headers.get('location');
  if (!location) throw new Error(`no Location in a ${res.status} answer`);
  return new URL(location, base).toString();
}

describe.each(KINDS)('tus concatenation on the %s configuration', (kind) => {
  const stack = serverOnStorage(kind, { AUTH_JWT_SECRET: JWT_SECRET });
  const limited = serverOnStorage(kind, { MAX_UPLOAD_SIZE: String(MIB) });
  let alice: Record<string, string>;
  let bob: Record<string, string>;
  let base: string;
  beforeAll(async () => {
    alice = bearer(await tokenFor('alice'));
    bob = bearer(await tokenFor('bob'));
    base = stack.server.url;
  });

  test.each(PARALLEL_CASES)(
    'tus-js-client parallelUploads, %s: HEAD shows the final, GET returns the bytes sent',
    async (_name, size, parallelUploads) => {
      const data = randomContent(size);
      const url = await tusClientUpload(base, data, {
        parallelUploads,
        headers: alice,
        metadata: META,
      });
      const res = await head(url, alice);
      expect(res.status).toBe(200);
      expect(res.headers.get('upload-length')).toBe(String(size));
      expect(res.headers.get('upload-offset')).toBe(String(size));
      const concat = res.headers.get('upload-concat') ?? '';
      expect(concat).toMatch(/^final;/);
      const partials = concat.slice('final;'.length).split(' ');
      expect(partials).toHaveLength(parallelUploads);
      expect(await downloadedSha256(url, alice)).toBe(sha256(data));
      expect(await stack.storage.storedSha256(idOf(url))).toBe(sha256(data));
      // The partials' bytes live in the final now: the partials are gone.
      for (const partial of partials) expect((await head(partial, alice)).status).toBe(404);
      const get = await fetch(url, { headers: { ...alice, Range: 'bytes=0-0' } });
      expect(get.headers.get('content-disposition')).toContain('joined.bin');
      expect(get.headers.get('content-type')).toBe('application/x-joined');
    },
  );

  test("a partial's HEAD says Upload-Concat: partial", async () => {
    const url = await partialOf(base, randomContent(10), alice);
    const res = await head(url, alice);
    expect(res.headers.get('upload-concat')).toBe('partial');
    expect(res.headers.get('upload-metadata') ?? '').not.toContain('tus-');
  });

  test('the final is its partials in the order named, Range requests included', async () => {
    const a = randomContent(6 * MIB);
    const b = randomContent(1024);
    const c = randomContent(5 * MIB + 3);
    const urls = [await partialOf(base, a, alice), await partialOf(base, b, alice)];
    urls.push(await partialOf(base, c, alice));
    const res = await finalOf(base, [urls[2], urls[0], urls[1]] as string[], alice);
    expect(res.status).toBe(201);
    const url = locationOf(base, res);
    const whole = Buffer.concat([c, a, b]);
    expect(await downloadedSha256(url, alice)).toBe(sha256(whole));
    // A range across the boundary of the first two partials.
    const start = c.length - 10;
    const ranged = await fetch(url, {
      headers: { ...alice, Range: `bytes=${start}-${start + 19}` },
    });
    expect(ranged.status).toBe(206);
    expect(Buffer.from(await ranged.arrayBuffer())).toEqual(whole.subarray(start, start + 20));
  });

  test('a PATCH to a final upload is 403 and changes nothing', async () => {
    const data = randomContent(100);
    const res = await finalOf(base, [await partialOf(base, data, alice)], alice);
    const url = locationOf(base, res);
    for (const offset of [0, 100]) {
      const refused = await patch(url, offset, randomContent(5), alice);
      expect(refused.status).toBe(403);
      expect(await refused.text()).toMatch(/final upload/);
    }
    expect(await downloadedSha256(url, alice)).toBe(sha256(data));
  });

  test('the partials are removed once the final exists; naming them again is 400', async () => {
    const urls = [await partialOf(base, randomContent(7), alice)];
    expect((await finalOf(base, urls, alice)).status).toBe(201);
    expect((await head(urls[0] as string, alice)).status).toBe(404);
    const partial = idOf(urls[0] as string);
    expect((await stack.storage.inventory()).filter((name) => name.includes(partial))).toEqual([]);
    const again = await finalOf(base, urls, alice);
    expect(again.status).toBe(400);
    expect(await again.text()).toMatch(/does not exist/);
  });

  test('refused finals create nothing and leave the partials as they were', async () => {
    const finished = await partialOf(base, randomContent(50), alice);
    const unfinished = await createUpload(base, 100, { ...alice, 'Upload-Concat': 'partial' });
    expect((await patch(unfinished, 0, randomContent(40), alice)).status).toBe(204);
    const plain = await createUpload(base, 3, alice);
    expect((await patch(plain, 0, randomContent(3), alice)).status).toBe(204);
    const bobs = await partialOf(base, randomContent(5), bob);
    const unknown = `${base}/files/${'0'.repeat(32)}`;
    const before = await stack.storage.inventory();
    const cases: Array<[string, Promise<Response>, RegExp]> = [
      ['unknown', finalOf(base, [finished, unknown], alice), /does not exist/],
      ["another owner's", finalOf(base, [finished, bobs], alice), /does not exist/],
      ['not a partial', finalOf(base, [finished, plain], alice), /Upload-Concat: partial/],
      ['unfinished', finalOf(base, [finished, unfinished], alice), /not finished/],
      ['not an upload URL', finalOf(base, [`${base}/other/x`], alice), /Upload-Concat must be/],
      [
        'with Upload-Length',
        fetch(`${base}/files/`, {
          method: 'POST',
          headers: {
            ...TUS,
            ...alice,
            'Upload-Length': '50',
            'Upload-Concat': `final;${finished}`,
          },
        }),
        /must not carry Upload-Length/,
      ],
      [
        'an unknown kind',
        fetch(`${base}/files/`, {
          method: 'POST',
          headers: { ...TUS, ...alice, 'Upload-Length': '5', 'Upload-Concat': 'whole' },
        }),
        /Upload-Concat must be/,
      ],
    ];
    for (const [name, request, reason] of cases) {
      const res = await request;
      expect([name, res.status]).toEqual([name, 400]);
      expect([name, await res.text()]).toEqual([name, expect.stringMatching(reason)]);
    }
    expect(await stack.storage.inventory()).toEqual(before);
    // The unfinished partial goes on, and then makes a final.
    const rest = randomContent(60);
    expect((await patch(unfinished, 40, rest, alice)).status).toBe(204);
    expect((await finalOf(base, [finished, unfinished], alice)).status).toBe(201);
    // Bob's partial is untouched by alice's attempts.
    expect((await head(bobs, bob)).headers.get('upload-offset')).toBe('5');
  });

  test('a final without Upload-Metadata has none, and a malformed one is 400', async () => {
    const urls = [await partialOf(base, randomContent(3), alice)];
    const bad = await fetch(`${base}/files/`, {
      method: 'POST',
      headers: {
        ...TUS,
        ...alice,
        'Upload-Concat': `final;${urls[0]}`,
        'Upload-Metadata': 'a b c',
      },
    });
    expect(bad.status).toBe(400);
    expect((await head(urls[0] as string, alice)).status).toBe(200);
    const res = await fetch(`${base}/files/`, {
      method: 'POST',
      headers: { ...TUS, ...alice, 'Upload-Concat': `final;${urls[0]}` },
    });
    expect(res.status).toBe(201);
    const state = await head(locationOf(base, res), alice);
    expect(state.headers.get('upload-metadata') ?? '').toBe('');
    expect(state.headers.get('upload-length')).toBe('3');
  });

  test('a final of empty partials is an empty upload', async () => {
    const urls = [await partialOf(base, Buffer.alloc(0), alice)];
    urls.push(await partialOf(base, Buffer.alloc(0), alice));
    const res = await finalOf(base, urls, alice);
    expect(res.status).toBe(201);
    const url = locationOf(base, res);
    expect(await downloadedSha256(url, alice)).toBe(sha256(Buffer.alloc(0)));
  });

  test('the final is terminated like any upload', async () => {
    const res = await finalOf(base, [await partialOf(base, randomContent(6 * MIB), alice)], alice);
    const url = locationOf(base, res);
    const copies = await contentCopies(stack.storage);
    expect(copies).toContain(idOf(url));
    const deleted = await fetch(url, { method: 'DELETE', headers: { ...TUS, ...alice } });
    expect(deleted.status).toBe(204);
    expect((await fetch(url, { headers: alice })).status).toBe(404);
    expect(await contentCopies(stack.storage)).not.toContain(idOf(url));
    const id = idOf(url);
    expect((await stack.storage.inventory()).filter((name) => name.includes(id))).toEqual([]);
  });

  test("dedupe: the final's claimed sha256 is verified, then indexed for its owner", async () => {
    const a = randomContent(3000);
    const b = randomContent(2000);
    const digest = sha256(Buffer.concat([a, b]));
    const wrong = await finalOf(
      base,
      [await partialOf(base, a, alice), await partialOf(base, b, alice)],
      alice,
      { ...META, sha256: sha256(a) },
    );
    expect(wrong.status).toBe(460);
    expect(wrong.headers.get('location')).toBeNull();

    const right = await finalOf(
      base,
      [await partialOf(base, a, alice), await partialOf(base, b, alice)],
      alice,
      { ...META, sha256: digest },
    );
    expect(right.status).toBe(201);
    // A later upload of the same bytes by the same owner is a dedupe hit: nothing to send.
    const hit = await fetch(`${base}/files/`, {
      method: 'POST',
      headers: {
        ...TUS,
        ...alice,
        'Upload-Length': '5000',
        'Upload-Metadata': encodeMetadata({ filename: 'again.bin', sha256: digest }),
      },
    });
    expect(hit.status).toBe(201);
    expect(hit.headers.get('upload-offset')).toBe('5000');
    expect(await downloadedSha256(locationOf(base, hit), alice)).toBe(digest);
  });

  test('a final over MAX_UPLOAD_SIZE is 413 and its partials stay', async () => {
    const own = limited.server.url;
    const urls = [await partialOf(own, randomContent(MIB), {})];
    urls.push(await partialOf(own, randomContent(1), {}));
    const res = await finalOf(own, urls, {});
    expect(res.status).toBe(413);
    for (const url of urls) expect((await head(url)).status).toBe(200);
  });
});

describe.each(S3_KINDS)(
  'on the %s configuration, partials of 5 MiB or more are copied inside S3',
  (kind) => {
    let storage: TestStorage;
    let proxy: CountingProxy;
    let server: ServerProcess;
    beforeAll(async () => {
      storage = createTestStorage(kind);
      proxy = await startCountingProxy(storage.env.S3_ENDPOINT ?? '');
      server = await startServer({ ...storage.env, S3_ENDPOINT: proxy.url });
    });
    afterAll(async () => {
      await server?.stop();
      await proxy?.close();
      await storage?.cleanup();
    });

    /** Bytes the server sent to S3 as part bodies while the final was made, and the copies. */
    async function finalThroughProxy(partials: Buffer[]) {
      const urls: string[] = [];
      for (const data of partials) urls.push(await partialOf(server.url, data, {}));
      const from = proxy.requests.length;
      const res = await finalOf(server.url, urls, {});
      expect(res.status).toBe(201);
      const during = proxy.requests.slice(from);
      const sent = during
        .filter((r) => r.method === 'PUT' && /x-id=UploadPart(&|$)/.test(r.path))
        .reduce((sum, r) => sum + r.bodyBytes, 0);
      const copies = during.filter((r) => r.path.includes('x-id=UploadPartCopy')).length;
      const url = locationOf(server.url, res);
      expect(await downloadedSha256(url)).toBe(sha256(Buffer.concat(partials)));
      return { sent, copies };
    }

    test('three partials of 6 MiB, 5 MiB and 1 KiB: no byte passes through the server', async () => {
      const result = await finalThroughProxy([
        randomContent(6 * MIB),
        randomContent(5 * MIB),
        randomContent(1024),
      ]);
      expect(result).toEqual({ sent: 0, copies: 3 });
    });

    test('short partials are gathered into parts: only their bytes pass through', async () => {
      const result = await finalThroughProxy([
        randomContent(MIB),
        randomContent(MIB + 3),
        randomContent(20 * MIB),
      ]);
      // 2 MiB + 3 of short partials fill the first part up to 5 MiB from the long one.
      expect(result).toEqual({ sent: 5 * MIB, copies: 1 });
    });
  },
);

// Started by hand: two instances on one S3 and one Redis, as behind a load balancer.
describe.each(SCALED_OUT)('concatenation across two instances (%s)', (kind) => {
  let storage: TestStorage;
  const instances: ServerProcess[] = [];
  beforeAll(async () => {
    storage = createTestStorage(kind);
    for (let i = 0; i < 2; i += 1) instances.push(await startServer(storage.env));
  });
  afterAll(async () => {
    await Promise.all(instances.map((server) => server.stop()));
    await storage?.cleanup();
  });
  const on = (index: number) => (instances[index] as ServerProcess).url;

  test('partials made on both instances, the final on one, served by the other', async () => {
    const parts = [randomContent(6 * MIB), randomContent(2 * MIB), randomContent(5 * MIB + 1)];
    const urls: string[] = [];
    for (const [index, data] of parts.entries())
      urls.push(await partialOf(on(index % 2), data, {}));
    const res = await finalOf(on(1), urls, {});
    expect(res.status).toBe(201);
    const id = idOf(locationOf(on(1), res));
    expect(await downloadedSha256(`${on(0)}/files/${id}`)).toBe(sha256(Buffer.concat(parts)));
    expect((await head(`${on(0)}/files/${id}`)).headers.get('upload-concat')).toMatch(/^final;/);
  });

  test('two finals of the same partials at once on two instances: exactly one is made', async () => {
    for (let round = 0; round < 3; round += 1) {
      const parts = [randomContent(6 * MIB), randomContent(1000)];
      const urls = [await partialOf(on(0), parts[0] as Buffer, {})];
      urls.push(await partialOf(on(1), parts[1] as Buffer, {}));
      const answers = await Promise.all([finalOf(on(0), urls, {}), finalOf(on(1), urls, {})]);
      const statuses = answers.map((res) => res.status).sort();
      expect(statuses).toEqual([201, 400]);
      const made = answers.find((res) => res.status === 201) as Response;
      const url = locationOf(on(0), made);
      expect(await downloadedSha256(url)).toBe(sha256(Buffer.concat(parts)));
      const left = await storage.inventory();
      for (const partial of urls.map(idOf))
        expect(left.filter((name) => name.includes(partial))).toEqual([]);
    }
  });

  test('a final waits for the lock of a partial being written on the other instance', async () => {
    const data = randomContent(3 * MIB);
    const url = await createUpload(on(0), data.length, { 'Upload-Concat': 'partial' });
    // A PATCH in flight on instance 0 holds the partial's lock with 2 of its 3 MiB received.
    const inFlight = openPatch(url, 0, data.subarray(0, 2 * MIB), data.length);
    await inFlight.read();
    const res = await finalOf(on(1), [url], {});
    // Instance 0 was asked to let go: it kept what it had, and the partial is not finished.
    expect(res.status).toBe(400);
    expect(await res.text()).toMatch(/not finished/);
    inFlight.req.destroy();
    const offset = await offsetOf(`${on(1)}/files/${idOf(url)}`);
    expect(offset).toBe(2 * MIB);
    expect((await patch(url, offset, data.subarray(offset))).status).toBe(204);
    const made = await finalOf(on(1), [url], {});
    expect(made.status).toBe(201);
    expect(await downloadedSha256(locationOf(on(1), made))).toBe(sha256(data));
  });
});
