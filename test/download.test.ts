import { beforeAll, describe, expect, test } from '@jest/globals';
import { parseByteranges } from './harness/byteranges.ts';
import { type CurlResponse, curl } from './harness/curl.ts';
import { type FinishedUpload, finishedUpload } from './harness/downloads.ts';
import { serverOnStorage } from './harness/serverOnStorage.ts';
import { waitFor } from './harness/services.ts';
import { S3_COMPAT_KINDS, STORAGE_KINDS } from './harness/stack.ts';
import { createUpload, idOf, patch, TUS } from './harness/tus.ts';

const SIZE = 256 * 1024;

/** The header lines of a response that do not change from one request to the next. */
const stableLines = (res: CurlResponse) =>
  res.headerLines
    .map((line) => line.toString('latin1'))
    .filter((line) => !/^(date|x-request-id):/i.test(line));

/** Every configuration, and S3 on VersityGW (an S3 that answers as AWS does). */
const KINDS = [...STORAGE_KINDS, ...S3_COMPAT_KINDS];

function expectNotFound(res: CurlResponse) {
  expect(res.status).toBe(404);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  expect(JSON.parse(res.body.toString())).toEqual({ error: 'not found' });
}

describe.each(KINDS)('range downloads on the %s storage', (kind) => {
  const stack = serverOnStorage(kind);
  let video: FinishedUpload;
  /** The whole-file GET of `video`, for its validators. */
  let full: CurlResponse;

  beforeAll(async () => {
    video = await finishedUpload(stack.server.url, SIZE, {
      filename: 'clip.mp4',
      filetype: 'video/mp4',
    });
    full = await curl(video.url);
  });

  test('a GET downloads the whole file with Accept-Ranges, Content-Length and validators', () => {
    expect(full.status).toBe(200);
    expect(full.body.equals(video.data)).toBe(true);
    expect(full.headers['accept-ranges']).toBe('bytes');
    expect(full.headers['content-length']).toBe(String(SIZE));
    // A strong entity tag: quoted, without W/.
    expect(full.headers.etag).toMatch(/^"[^"]+"$/);
    expect(Date.parse(full.headers['last-modified'] ?? '')).toBeLessThanOrEqual(Date.now());
  });

  test('a HEAD without Tus-Resumable answers exactly the GET headers, without a body', async () => {
    const res = await curl(video.url, ['-I']);
    expect(res.status).toBe(200);
    expect(res.body.length).toBe(0);
    expect(stableLines(res)).toEqual(stableLines(full));
  });

  test('a HEAD with Tus-Resumable stays the tus HEAD', async () => {
    const res = await curl(video.url, ['-I', '-H', 'Tus-Resumable: 1.0.0']);
    expect(res.status).toBe(200);
    expect(res.headers['upload-offset']).toBe(String(SIZE));
    expect(res.headers['upload-length']).toBe(String(SIZE));
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['accept-ranges']).toBeUndefined();
  });

  test.each([
    ['bytes=0-99', 0, 99],
    ['bytes=1000-', 1000, SIZE - 1],
    ['bytes=-500', SIZE - 500, SIZE - 1],
    ['bytes=0-0', 0, 0],
    ['bytes=5000-99999999999', 5000, SIZE - 1],
    ['bytes=-99999999', 0, SIZE - 1],
    ['Bytes=7-8', 7, 8],
  ])('Range %s gets 206 with bytes %d-%d of the file', async (range, start, end) => {
    const res = await curl(video.url, ['-H', `Range: ${range}`]);
    expect(res.status).toBe(206);
    expect(res.headers['content-range']).toBe(`bytes ${start}-${end}/${SIZE}`);
    expect(res.headers['content-length']).toBe(String(end - start + 1));
    expect(res.headers['content-type']).toBe('video/mp4');
    expect(res.body.equals(video.data.subarray(start, end + 1))).toBe(true);
  });

  test('several ranges get 206 multipart/byteranges, each part the source bytes', async () => {
    const res = await curl(video.url, ['-r', '0-9,100-199,-50']);
    expect(res.status).toBe(206);
    const contentType = res.headers['content-type'] ?? '';
    expect(contentType).toMatch(/^multipart\/byteranges; boundary=/);
    expect(res.headers['content-length']).toBe(String(res.body.length));
    const parts = parseByteranges(res.body, contentType);
    const expected = [
      [0, 9],
      [100, 199],
      [SIZE - 50, SIZE - 1],
    ];
    expect(parts).toHaveLength(expected.length);
    for (const [index, [start, end]] of expected.entries()) {
      const part = parts[index];
      expect(part?.headers['content-type']).toBe('video/mp4');
      expect(part?.headers['content-range']).toBe(`bytes ${start}-${end}/${SIZE}`);
      expect(part?.data.equals(video.data.subarray(start, (end ?? 0) + 1))).toBe(true);
    }
  });

  test('overlapping and adjacent ranges are coalesced into one', async () => {
    const res = await curl(video.url, ['-r', '0-99,50-149,150-199']);
    expect(res.status).toBe(206);
    expect(res.headers['content-range']).toBe(`bytes 0-199/${SIZE}`);
    expect(res.body.equals(video.data.subarray(0, 200))).toBe(true);
  });

  test('20 ranges are served as 20 parts; more are answered with the whole file', async () => {
    const ranges = (count: number) =>
      Array.from({ length: count }, (_, i) => `${i * 1000}-${i * 1000 + 9}`).join(',');
    const twenty = await curl(video.url, ['-r', ranges(20)]);
    expect(twenty.status).toBe(206);
    const parts = parseByteranges(twenty.body, twenty.headers['content-type'] ?? '');
    expect(parts).toHaveLength(20);
    expect(parts[19]?.data.equals(video.data.subarray(19_000, 19_010))).toBe(true);

    // The cap counts ranges after coalescing: 100 overlapping ranges are one range.
    const overlapping = Array.from({ length: 100 }, (_, i) => `${i * 10}-${i * 10 + 15}`).join(',');
    const coalesced = await curl(video.url, ['-r', overlapping]);
    expect(coalesced.status).toBe(206);
    expect(coalesced.headers['content-range']).toBe(`bytes 0-1005/${SIZE}`);

    const many = await curl(video.url, ['-r', ranges(500)]);
    expect(many.status).toBe(200);
    expect(many.headers['content-range']).toBeUndefined();
    expect(many.body.equals(video.data)).toBe(true);
  });

  test.each([`bytes=${SIZE}-`, `bytes=${SIZE + 10}-${SIZE + 20}`, 'bytes=-0'])(
    'unsatisfiable Range %s gets 416 with Content-Range bytes */size',
    async (range) => {
      const res = await curl(video.url, ['-H', `Range: ${range}`]);
      expect(res.status).toBe(416);
      expect(res.headers['content-range']).toBe(`bytes */${SIZE}`);
      expect(JSON.parse(res.body.toString())).toEqual({ error: 'range not satisfiable' });
    },
  );

  test.each(['bytes=abc', 'items=0-5', 'bytes 0-5', 'bytes=0-5,', 'bytes=1-2-3', 'bytes=x-'])(
    'a malformed or non-bytes Range %p is ignored: 200 with the whole file',
    async (range) => {
      const res = await curl(video.url, ['-H', `Range: ${range}`]);
      expect(res.status).toBe(200);
      expect(res.headers['content-range']).toBeUndefined();
      expect(res.body.equals(video.data)).toBe(true);
    },
  );

  test('a HEAD with a Range answers as a GET without one (ranges are defined for GET)', async () => {
    const res = await curl(video.url, ['-I', '-H', 'Range: bytes=0-9']);
    expect(res.status).toBe(200);
    expect(res.headers['content-length']).toBe(String(SIZE));
    expect(res.headers['content-range']).toBeUndefined();
  });

  describe('conditional requests', () => {
    const etag = () => full.headers.etag ?? '';
    const lastModified = () => full.headers['last-modified'] ?? '';
    const anHourEarlier = () => new Date(Date.parse(lastModified()) - 3_600_000).toUTCString();

    test('If-Range with the current ETag or Last-Modified gets 206', async () => {
      for (const validator of [etag(), lastModified()]) {
        const res = await curl(video.url, ['-r', '10-19', '-H', `If-Range: ${validator}`]);
        expect(res.status).toBe(206);
        expect(res.body.equals(video.data.subarray(10, 20))).toBe(true);
      }
    });

    test('If-Range with another ETag, a weak ETag or an older date gets 200 with the whole file', async () => {
      for (const validator of ['"other"', `W/${etag()}`, anHourEarlier()]) {
        const res = await curl(video.url, ['-r', '10-19', '-H', `If-Range: ${validator}`]);
        expect(res.status).toBe(200);
        expect(res.body.equals(video.data)).toBe(true);
      }
    });

    test('If-None-Match with the ETag (or *) gets 304 without a body', async () => {
      for (const value of [etag(), `"other", ${etag()}`, `W/${etag()}`, '*']) {
        const res = await curl(video.url, ['-H', `If-None-Match: ${value}`]);
        expect(res.status).toBe(304);
        expect(res.headers.etag).toBe(etag());
        expect(res.body.length).toBe(0);
      }
      const other = await curl(video.url, ['-H', 'If-None-Match: "other"']);
      expect(other.status).toBe(200);
    });

    test('If-Modified-Since at Last-Modified gets 304; an earlier date gets 200', async () => {
      const same = await curl(video.url, ['-H', `If-Modified-Since: ${lastModified()}`]);
      expect(same.status).toBe(304);
      const earlier = await curl(video.url, ['-H', `If-Modified-Since: ${anHourEarlier()}`]);
      expect(earlier.status).toBe(200);
      expect(earlier.body.equals(video.data)).toBe(true);
    });

    test('If-Match that fails gets 412; the current ETag or * proceeds', async () => {
      const failed = await curl(video.url, ['-H', 'If-Match: "other"']);
      expect(failed.status).toBe(412);
      expect(JSON.parse(failed.body.toString())).toEqual({ error: 'precondition failed' });
      expect((await curl(video.url, ['-H', `If-Match: W/${etag()}`])).status).toBe(412);
      for (const value of [etag(), '*']) {
        const res = await curl(video.url, ['-r', '0-9', '-H', `If-Match: ${value}`]);
        expect(res.status).toBe(206);
      }
    });

    test('If-Unmodified-Since before Last-Modified gets 412', async () => {
      const res = await curl(video.url, ['-H', `If-Unmodified-Since: ${anHourEarlier()}`]);
      expect(res.status).toBe(412);
      const same = await curl(video.url, ['-H', `If-Unmodified-Since: ${lastModified()}`]);
      expect(same.status).toBe(200);
    });
  });

  describe('uploads with nothing to download get 404 with a short JSON body', () => {
    test('an unknown id', async () => {
      expectNotFound(await curl(`${stack.server.url}/files/${'0'.repeat(32)}`));
    });

    test('an unfinished upload', async () => {
      const url = await createUpload(stack.server.url, 100);
      expect((await patch(url, 0, Buffer.alloc(40))).status).toBe(204);
      expectNotFound(await curl(url));
      expectNotFound(await curl(url, ['-r', '0-9']));
      expect((await curl(url, ['-I'])).status).toBe(404);
    });

    test('a deleted upload', async () => {
      const { url } = await finishedUpload(stack.server.url, 1000);
      expect((await curl(url)).status).toBe(200);
      expect((await fetch(url, { method: 'DELETE', headers: TUS })).status).toBe(204);
      expectNotFound(await curl(url));
      expect((await curl(url, ['-I'])).status).toBe(404);
      const id = idOf(url);
      expect((await stack.storage.inventory()).filter((name) => name.includes(id))).toEqual([]);
    });

    test.each([
      '..%2F..%2Fetc%2Fpasswd',
      '%2e%2e',
      '..',
      'abc%00def',
      'ABCDEF0123456789ABCDEF0123456789',
      '0123456789abcdef0123456789abcdef%2F..',
      '../../etc/passwd',
      '0123456789abcdef0123456789abcdef/../../package.json',
    ])('an id with path tricks (%s)', async (id) => {
      expectNotFound(await curl(`${stack.server.url}/files/${id}`));
    });
  });

  test('a 0-byte upload downloads as an empty 200, with or without a Range', async () => {
    const { url } = await finishedUpload(stack.server.url, 0);
    for (const args of [[], ['-r', '0-10']]) {
      const res = await curl(url, args);
      expect(res.status).toBe(200);
      expect(res.headers['content-length']).toBe('0');
      expect(res.body.length).toBe(0);
    }
  });
});

describe.each(KINDS)('downloads and expiry on the %s storage', (kind) => {
  const stack = serverOnStorage(kind, { UPLOAD_EXPIRY_SECONDS: '1', EXPIRY_SWEEP_SECONDS: '1' });

  test('an expired unfinished upload gets 404; a finished one never expires', async () => {
    // The finished upload is the older one: a sweep that removes the unfinished one has seen
    // both past their expiry.
    const finished = await finishedUpload(stack.server.url, 1000);
    const unfinished = await createUpload(stack.server.url, 100);
    expect((await patch(unfinished, 0, Buffer.alloc(10))).status).toBe(204);
    await waitFor(
      async () =>
        (await stack.storage.inventory()).every((name) => !name.includes(idOf(unfinished))),
      'the sweep removing the expired upload',
      15_000,
    );
    expectNotFound(await curl(unfinished));
    const res = await curl(finished.url, ['-r', '0-99']);
    expect(res.status).toBe(206);
    expect(res.body.equals(finished.data.subarray(0, 100))).toBe(true);
  });
});
