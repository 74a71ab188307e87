import { beforeAll, describe, expect, test } from '@jest/globals';
import { curl } from './harness/curl.ts';
import { serverOnStorage } from './harness/serverOnStorage.ts';
import { contentCopies, randomContent, STORAGE_KINDS, sha256 } from './harness/stack.ts';
import { bearer, JWT_SECRET, tokenFor } from './harness/tokens.ts';
import { encodeMetadata, head, TUS, tusClientUpload } from './harness/tus.ts';

/**
 * Uploads of the same bytes share one stored copy, but each download answers with validators of
 * its own upload: nothing in ETag or Last-Modified says that someone stored the bytes first, or when.
 */

type Validators = { etag: string; lastModified: string };

/** Resolves once the clock has moved into the next second (Last-Modified's resolution). */
async function nextSecond(): Promise<void> {
  const second = Math.floor(Date.now() / 1000);
  while (Math.floor(Date.now() / 1000) === second) {
    await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000)));
  }
}

async function validatorsOf(
  url: string,
  headers: Record<string, string> = {},
): Promise<Validators> {
  // A HEAD without Tus-Resumable is the download's HEAD.
  const res = await fetch(url, { method: 'HEAD', headers });
  expect(res.status).toBe(200);
  return {
    etag: res.headers.get('etag') ?? '',
    lastModified: res.headers.get('last-modified') ?? '',
  };
}

/**
 * A GET with curl, a client that sends conditional headers as given (fetch adds
 * `Cache-Control: no-cache` to them, which asks the server not to answer 304).
 */
function get(url: string, headers: Record<string, string> = {}) {
  return curl(
    url,
    Object.entries(headers).flatMap(([name, value]) => ['-H', `${name}: ${value}`]),
  );
}

/** The checks every upload's own validators pass, against another upload of the same bytes. */
function conditionalRequests(
  name: string,
  setup: () => {
    url: string;
    headers: Record<string, string>;
    own: Validators;
    other: Validators;
    data: Buffer;
  },
) {
  test(`${name}: If-None-Match / If-Modified-Since with its own validators → 304`, async () => {
    const { url, headers, own, other } = setup();
    const byTag = await get(url, { ...headers, 'If-None-Match': own.etag });
    expect(byTag.status).toBe(304);
    expect(byTag.headers.etag).toBe(own.etag);
    expect(byTag.body.length).toBe(0);
    expect((await get(url, { ...headers, 'If-Modified-Since': own.lastModified })).status).toBe(
      304,
    );
    // The other upload's tag is not this one's.
    expect((await get(url, { ...headers, 'If-None-Match': other.etag })).status).toBe(200);
  });

  test(`${name}: If-Range with its own ETag or date resumes (206); with the other's → 200 whole`, async () => {
    const { url, headers, own, other, data } = setup();
    const from = 1000;
    for (const validator of [own.etag, own.lastModified]) {
      const resumed = await get(url, {
        ...headers,
        Range: `bytes=${from}-`,
        'If-Range': validator,
      });
      expect(resumed.status).toBe(206);
      expect(resumed.headers['content-range']).toBe(
        `bytes ${from}-${data.length - 1}/${data.length}`,
      );
      expect(sha256(resumed.body)).toBe(sha256(data.subarray(from)));
    }
    const whole = await get(url, { ...headers, Range: `bytes=${from}-`, 'If-Range': other.etag });
    expect(whole.status).toBe(200);
    expect(sha256(whole.body)).toBe(sha256(data));
  });

  test(`${name}: If-Match with the other upload's ETag → 412; with its own → 200`, async () => {
    const { url, headers, own, other } = setup();
    const failed = await get(url, { ...headers, 'If-Match': other.etag });
    expect(failed.status).toBe(412);
    expect(failed.headers.etag).toBe(own.etag);
    expect((await get(url, { ...headers, 'If-Match': own.etag })).status).toBe(200);
  });
}

describe.each(STORAGE_KINDS)(
  'validators of two owners (auth on) on the %s configuration',
  (kind) => {
    const stack = serverOnStorage(kind, { AUTH_JWT_SECRET: JWT_SECRET });
    const data = randomContent(100_000);
    let alice: Record<string, string>;
    let bob: Record<string, string>;
    let aliceUrl: string;
    let bobUrl: string;
    let copiesBefore: number;
    let aliceOwn: Validators;
    let bobOwn: Validators;

    beforeAll(async () => {
      alice = bearer(await tokenFor('alice'));
      bob = bearer(await tokenFor('bob'));
      copiesBefore = (await contentCopies(stack.storage)).length;
      // Stock clients, no hash claimed: the server finds the shared content by itself.
      aliceUrl = await tusClientUpload(stack.server.url, data, { headers: alice });
      // Bob's upload finishes in a later second than Alice's, so its own date can be told apart.
      await nextSecond();
      bobUrl = await tusClientUpload(stack.server.url, data, { headers: bob });
      aliceOwn = await validatorsOf(aliceUrl, alice);
      bobOwn = await validatorsOf(bobUrl, bob);
    });

    test("the second owner's upload shares the stored copy, yet has validators of its own", async () => {
      expect((await contentCopies(stack.storage)).length).toBe(copiesBefore + 1);
      const first = await validatorsOf(aliceUrl, alice);
      const second = await validatorsOf(bobUrl, bob);
      expect(second.etag).toMatch(/^"[0-9a-f]{32}"$/);
      expect(second.etag).not.toBe(first.etag);
      expect(second.lastModified).not.toBe(first.lastModified);
      expect(Date.parse(second.lastModified)).toBeGreaterThan(Date.parse(first.lastModified));
      // Asking again answers the same: validators are stable.
      expect(await validatorsOf(bobUrl, bob)).toEqual(second);
    });

    test('each owner downloads the bytes it sent', async () => {
      for (const [url, headers] of [
        [aliceUrl, alice],
        [bobUrl, bob],
      ] as const) {
        const res = await get(url, headers);
        expect(res.status).toBe(200);
        expect(sha256(res.body)).toBe(sha256(data));
      }
    });

    conditionalRequests('the second upload', () => ({
      url: bobUrl,
      headers: bob,
      own: bobOwn,
      other: aliceOwn,
      data,
    }));
    conditionalRequests('the first upload', () => ({
      url: aliceUrl,
      headers: alice,
      own: aliceOwn,
      other: bobOwn,
      data,
    }));

    test("If-Unmodified-Since the first upload's date → 412 for the second", async () => {
      const res = await get(bobUrl, { ...bob, 'If-Unmodified-Since': aliceOwn.lastModified });
      expect(res.status).toBe(412);
    });

    test("a signed link shows the upload's own validators", async () => {
      const made = await fetch(`${bobUrl}/links`, {
        method: 'POST',
        headers: { ...bob, 'Content-Type': 'application/json' },
        body: JSON.stringify({ expiresIn: 600 }),
      });
      expect(made.status).toBe(201);
      const { url } = (await made.json()) as { url: string };
      expect(await validatorsOf(url)).toEqual(bobOwn);
      expect((await get(url, { 'If-None-Match': bobOwn.etag })).status).toBe(304);
    });

    test('an upload created finished from the owner’s own content has validators of its own', async () => {
      await nextSecond();
      const res = await fetch(`${stack.server.url}/files/`, {
        method: 'POST',
        headers: {
          ...TUS,
          ...alice,
          'Upload-Length': String(data.length),
          'Upload-Metadata': encodeMetadata({ sha256: sha256(data) }),
        },
      });
      expect(res.status).toBe(201);
      expect(res.headers.get('upload-offset')).toBe(String(data.length));
      const again = new URL(res.headers.get('location') ?? '', stack.server.url).toString();
      const own = await validatorsOf(again, alice);
      expect(own.etag).not.toBe(aliceOwn.etag);
      expect(own.etag).not.toBe(bobOwn.etag);
      expect(Date.parse(own.lastModified)).toBeGreaterThan(Date.parse(bobOwn.lastModified));
      expect(sha256((await get(again, alice)).body)).toBe(sha256(data));
    });

    test('the finish time the validators come from is not shown in Upload-Metadata', async () => {
      const res = await head(bobUrl, bob);
      expect(res.status).toBe(200);
      expect(res.headers.get('upload-metadata') ?? '').not.toMatch(/tus-/);
    });
  },
);

describe.each(STORAGE_KINDS)('validators of anonymous uploads on the %s configuration', (kind) => {
  const stack = serverOnStorage(kind);
  const data = randomContent(50_000);
  let firstUrl: string;
  let secondUrl: string;
  let first: Validators;
  let second: Validators;

  beforeAll(async () => {
    const before = (await contentCopies(stack.storage)).length;
    firstUrl = await tusClientUpload(stack.server.url, data);
    await nextSecond();
    secondUrl = await tusClientUpload(stack.server.url, data);
    // One stored copy: the second upload is linked to the first's bytes.
    expect((await contentCopies(stack.storage)).length).toBe(before + 1);
    first = await validatorsOf(firstUrl);
    second = await validatorsOf(secondUrl);
  });

  test('two uploads of the same bytes have different ETags and their own dates', () => {
    expect(second.etag).not.toBe(first.etag);
    expect(Date.parse(second.lastModified)).toBeGreaterThan(Date.parse(first.lastModified));
  });

  test('both download the bytes sent', async () => {
    expect(sha256((await get(firstUrl)).body)).toBe(sha256(data));
    expect(sha256((await get(secondUrl)).body)).toBe(sha256(data));
  });

  conditionalRequests('the second upload', () => ({
    url: secondUrl,
    headers: {},
    own: second,
    other: first,
    data,
  }));
});
