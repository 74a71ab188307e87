import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { type FinishedUpload, finishedUpload } from './harness/downloads.ts';
import { serverOnStorage } from './harness/serverOnStorage.ts';
import { runServerToExit } from './harness/serverProcess.ts';
import { contentCopies, type StorageKind, sha256, testServices } from './harness/stack.ts';
import { bearer, JWT_SECRET, tokenFor } from './harness/tokens.ts';
import { createUpload, encodeMetadata, idOf, patch, TUS } from './harness/tus.ts';

const run = promisify(execFile);
const SIZE = 256 * 1024;
const REDIRECT = { DOWNLOAD_REDIRECT: 'presigned' };
const KINDS: StorageKind[] = ['s3', 's3+redis'];
/** A name that needs RFC 8187's `filename*`, and a type browsers show in place. */
const METADATA = { filename: 'clip ü.mp4', filetype: 'video/mp4' };
/** What a proxied download of it sends (download/headers.ts), and so what S3 must send. */
const DISPOSITION = `inline; filename="clip ?.mp4"; filename*=UTF-8''clip%20%C3%BC.mp4`;

/** The answer to a request that is not followed anywhere. */
function unfollowed(url: string, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { ...init, redirect: 'manual' });
}

/** The Location of a 307 answer, after checking what else the answer carries. */
async function redirectOf(res: Response): Promise<URL> {
  expect(res.status).toBe(307);
  expect(res.headers.get('cache-control')).toBe('no-store');
  expect(res.headers.get('referrer-policy')).toBe('no-referrer');
  expect((await res.arrayBuffer()).byteLength).toBe(0);
  return new URL(res.headers.get('location') ?? '');
}

/**
 * `curl -L` with extra arguments: the status, headers and body of the last answer, the one the
 * redirects led to (curl writes every answer's header block, in order).
 */
async function curlFollowing(url: string, args: string[] = []) {
  const isHead = args.includes('-I');
  const headerFile = path.join(mkdtempSync(path.join(tmpdir(), 'curl-')), 'headers');
  const { stdout } = await run(
    'curl',
    ['-sS', '-L', ...(isHead ? [] : ['-D', headerFile]), ...args, url],
    { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 },
  );
  const blocks = (isHead ? stdout.toString('latin1') : readFileSync(headerFile, 'latin1'))
    .split('\r\n\r\n')
    .filter((block) => block.startsWith('HTTP/'));
  rmSync(path.dirname(headerFile), { recursive: true, force: true });
  const [statusLine = '', ...lines] = (blocks.at(-1) ?? '').split('\r\n');
  const headers = Object.fromEntries(
    lines.map((line) => {
      const colon = line.indexOf(':');
      return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()];
    }),
  );
  return {
    statuses: blocks.map((block) => Number(block.split(' ')[1])),
    status: Number(statusLine.split(' ')[1]),
    headers,
    body: isHead ? Buffer.alloc(0) : stdout,
  };
}

/** The samples of the metrics listener named `name`, summed. */
async function metric(url: string | undefined, name: string): Promise<number> {
  const text = await (await fetch(url ?? '')).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return Number(line?.split(' ')[1]);
}

describe.each(KINDS)('DOWNLOAD_REDIRECT=presigned on the %s storage', (kind) => {
  const stack = serverOnStorage(kind, REDIRECT);
  let video: FinishedUpload;
  let dir: string;

  beforeAll(async () => {
    video = await finishedUpload(stack.server.url, SIZE, METADATA);
    dir = mkdtempSync(path.join(tmpdir(), 'redirect-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('a GET answers 307 to a presigned URL of the object on S3_ENDPOINT, valid 300 s', async () => {
    const location = await redirectOf(await unfollowed(video.url));
    const s3 = new URL(testServices().s3Endpoint);
    expect(location.host).toBe(s3.host);
    expect(location.pathname).toBe(`/${stack.storage.env.S3_BUCKET}/${idOf(video.url)}`);
    expect(location.searchParams.get('X-Amz-Expires')).toBe('300');
    // Only the host is signed: no header a browser, curl or wget would not send.
    expect(location.searchParams.get('X-Amz-SignedHeaders')).toBe('host');
  });

  test('following it (fetch, curl -L) gives the uploaded bytes with the stored name and type', async () => {
    const res = await fetch(video.url);
    expect(res.status).toBe(200);
    expect(res.redirected).toBe(true);
    expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(sha256(video.data));
    expect(res.headers.get('content-disposition')).toBe(DISPOSITION);
    expect(res.headers.get('content-type')).toBe('video/mp4');

    const followed = await curlFollowing(video.url);
    expect(followed.statuses).toEqual([307, 200]);
    expect(sha256(followed.body)).toBe(sha256(video.data));
    expect(followed.headers['content-disposition']).toBe(DISPOSITION);
    expect(followed.headers['content-type']).toBe('video/mp4');
  });

  test('a Range goes through the redirect: curl -L -r 10-19 and fetch both get 206', async () => {
    const ranged = await curlFollowing(video.url, ['-r', '10-19']);
    expect(ranged.statuses).toEqual([307, 206]);
    expect(ranged.headers['content-range']).toBe(`bytes 10-19/${SIZE}`);
    expect(ranged.body.equals(video.data.subarray(10, 20))).toBe(true);

    const res = await fetch(video.url, { headers: { Range: 'bytes=1000-1999' } });
    expect(res.status).toBe(206);
    expect(Buffer.from(await res.arrayBuffer()).equals(video.data.subarray(1000, 2000))).toBe(true);
  });

  test('If-Range goes through the redirect with the ETag S3 gave: 206', async () => {
    const etag = (await fetch(video.url, { method: 'HEAD' })).headers.get('etag') ?? '';
    expect(etag).not.toBe('');
    const holds = await curlFollowing(video.url, ['-r', '0-9', '-H', `If-Range: ${etag}`]);
    expect(holds.statuses).toEqual([307, 206]);
    expect(holds.body.equals(video.data.subarray(0, 10))).toBe(true);
    // A stale If-Range is MinIO's to judge, and MinIO ignores If-Range (measured: 206 anyway).
    // Harmless here: an upload's object never changes under its key while the upload exists.
  });

  test('`wget -c` resumes a partial file through the redirect and ends with the whole file', async () => {
    const file = path.join(dir, 'partial.mp4');
    const partial = 100_000;
    writeFileSync(file, video.data.subarray(0, partial));
    const resumed = await run('wget', ['-c', '-O', file, video.url]);
    expect(resumed.stderr).toMatch(/307 Temporary Redirect/);
    expect(resumed.stderr).toMatch(/206 Partial Content/);
    expect(sha256(readFileSync(file))).toBe(sha256(video.data));
  });

  test('a HEAD answers 307 too, to a URL that answers the HEAD', async () => {
    const location = await redirectOf(await unfollowed(video.url, { method: 'HEAD' }));
    const res = await fetch(location, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe(String(SIZE));
    expect(res.headers.get('content-disposition')).toBe(DISPOSITION);
    const followed = await curlFollowing(video.url, ['-I']);
    expect(followed.statuses).toEqual([307, 200]);
    expect(followed.headers['content-length']).toBe(String(SIZE));
  });

  test('a tus HEAD (with Tus-Resumable) is not redirected', async () => {
    const res = await unfollowed(video.url, { method: 'HEAD', headers: TUS });
    expect(res.status).toBe(200);
    expect(res.headers.get('upload-offset')).toBe(String(SIZE));
    expect(res.headers.get('location')).toBeNull();
  });

  test('an unfinished or unknown upload answers 404 without Location', async () => {
    const url = await createUpload(stack.server.url, SIZE);
    expect((await patch(url, 0, video.data.subarray(0, 1000))).status).toBe(204);
    for (const target of [url, `${stack.server.url}/files/${'0'.repeat(32)}`]) {
      const res = await unfollowed(target);
      expect(res.status).toBe(404);
      expect(res.headers.get('location')).toBeNull();
    }
  });

  test('an upload linked to stored bytes (dedupe) redirects to the object holding them', async () => {
    const first = await finishedUpload(stack.server.url, SIZE, { filename: 'a.bin' });
    const again = await createUpload(stack.server.url, SIZE, {
      'Upload-Metadata': encodeMetadata({ filename: 'b.bin' }),
    });
    expect((await patch(again, 0, first.data)).status).toBe(204);
    // Linked: the second upload's own copy was freed.
    expect(await contentCopies(stack.storage)).not.toContain(idOf(again));

    const location = await redirectOf(await unfollowed(again));
    expect(location.pathname).toBe(`/${stack.storage.env.S3_BUCKET}/${idOf(first.url)}`);
    const res = await fetch(location);
    expect(res.status).toBe(200);
    expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(sha256(first.data));
    // Its own name, not the first upload's.
    expect(res.headers.get('content-disposition')).toBe('attachment; filename=b.bin');
  });

  test('each redirect counts in tus_download_redirects_total, no bytes in tus_bytes_served_total', async () => {
    const { metricsUrl } = stack.server;
    const before = await metric(metricsUrl, 'tus_download_redirects_total');
    const served = await metric(metricsUrl, 'tus_bytes_served_total');
    await (await fetch(video.url)).arrayBuffer();
    expect(await metric(metricsUrl, 'tus_download_redirects_total')).toBe(before + 1);
    expect(await metric(metricsUrl, 'tus_bytes_served_total')).toBe(served);
  });
});

describe.each(KINDS)('presigned redirects with auth on, on the %s storage', (kind) => {
  const stack = serverOnStorage(kind, { ...REDIRECT, AUTH_JWT_SECRET: JWT_SECRET });
  let alice: string;
  let url: string;
  let data: Buffer;

  beforeAll(async () => {
    alice = await tokenFor('alice');
    data = Buffer.from('bytes only alice may read, '.repeat(1000));
    url = await createUpload(stack.server.url, data.length, bearer(alice));
    expect((await patch(url, 0, data, bearer(alice))).status).toBe(204);
  });

  test('no token → 401, another owner → 404 without Location, the owner → 307', async () => {
    const anonymous = await unfollowed(url);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('location')).toBeNull();

    const bob = await unfollowed(url, { headers: bearer(await tokenFor('bob')) });
    expect(bob.status).toBe(404);
    expect(bob.headers.get('location')).toBeNull();

    const location = await redirectOf(await unfollowed(url, { headers: bearer(alice) }));
    // The presigned URL needs no token of ours.
    const res = await fetch(location);
    expect(res.status).toBe(200);
    expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(sha256(data));
  });

  test('the owner following with its token (fetch, curl -L) gets the bytes', async () => {
    const res = await fetch(url, { headers: bearer(alice) });
    expect(res.status).toBe(200);
    expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(sha256(data));
    const followed = await curlFollowing(url, ['-H', `Authorization: Bearer ${alice}`]);
    expect(followed.statuses).toEqual([307, 200]);
    expect(sha256(followed.body)).toBe(sha256(data));
  });

  /** A signed download link of alice's upload, valid `expiresIn` seconds. */
  async function signedLink(expiresIn: number): Promise<string> {
    const created = await fetch(`${url}/links`, {
      method: 'POST',
      headers: { ...bearer(alice), 'Content-Type': 'application/json' },
      body: JSON.stringify({ expiresIn }),
    });
    expect(created.status).toBe(201);
    return ((await created.json()) as { url: string }).url;
  }

  test('a signed link redirects as well', async () => {
    const link = await signedLink(300);
    const location = await redirectOf(await unfollowed(link));
    expect(location.pathname).toBe(`/${stack.storage.env.S3_BUCKET}/${idOf(url)}`);
    const followed = await curlFollowing(link);
    expect(followed.status).toBe(200);
    expect(sha256(followed.body)).toBe(sha256(data));
  });

  test("a signed link's redirect expires with the link, not later (TTL 300, link 20 s)", async () => {
    const link = await signedLink(20);
    const linkExpires = Number(new URL(link).searchParams.get('expires'));
    const location = await redirectOf(await unfollowed(link));
    const lifetime = Number(location.searchParams.get('X-Amz-Expires'));
    const signedAt = location.searchParams.get('X-Amz-Date') ?? '';
    const signed = Date.parse(
      signedAt.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z'),
    );
    expect(lifetime).toBeGreaterThanOrEqual(1);
    expect(lifetime).toBeLessThanOrEqual(20);
    // The URL stops working no later than the link does.
    expect(signed / 1000 + lifetime).toBeLessThanOrEqual(linkExpires);
  });
});

describe('S3_PUBLIC_ENDPOINT and DOWNLOAD_REDIRECT_TTL_SECONDS', () => {
  // The server reaches MinIO at 127.0.0.1 (S3_ENDPOINT), clients at localhost: one MinIO, two names.
  const publicEndpoint = testServices().s3Endpoint.replace('//127.0.0.1:', '//localhost:');
  const stack = serverOnStorage('s3', {
    ...REDIRECT,
    S3_PUBLIC_ENDPOINT: publicEndpoint,
    DOWNLOAD_REDIRECT_TTL_SECONDS: '60',
  });
  let video: FinishedUpload;

  beforeAll(async () => {
    expect(new URL(stack.storage.env.S3_ENDPOINT ?? '').hostname).toBe('127.0.0.1');
    video = await finishedUpload(stack.server.url, SIZE, METADATA);
  });

  test('the presigned URL names the public endpoint, and works there', async () => {
    const location = await redirectOf(await unfollowed(video.url));
    expect(location.host).toBe(new URL(publicEndpoint).host);
    const res = await fetch(location);
    expect(res.status).toBe(200);
    expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(sha256(video.data));
    const followed = await curlFollowing(video.url, ['-r', '10-19']);
    expect(followed.status).toBe(206);
    expect(followed.body.equals(video.data.subarray(10, 20))).toBe(true);
  });

  test('X-Amz-Expires is the configured TTL', async () => {
    const location = await redirectOf(await unfollowed(video.url));
    expect(location.searchParams.get('X-Amz-Expires')).toBe('60');
  });
});

describe('DOWNLOAD_REDIRECT=presigned on the embedded store', () => {
  const stack = serverOnStorage('file', REDIRECT);

  test('downloads are served as before, and start-up warned once that the setting is ignored', async () => {
    const video = await finishedUpload(stack.server.url, SIZE, METADATA);
    const res = await unfollowed(video.url);
    expect(res.status).toBe(200);
    expect(res.headers.get('location')).toBeNull();
    expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(sha256(video.data));
    const warnings = stack.server
      .logs()
      .filter((line) => String(line.msg).includes('DOWNLOAD_REDIRECT'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.level).toBe(40);
    expect(String(warnings[0]?.msg)).toMatch(/DOWNLOAD_REDIRECT=presigned is ignored/);
  });
});

describe('bad redirect settings stop start-up', () => {
  test.each([
    [
      { DOWNLOAD_REDIRECT: 'yes' },
      /^configuration error: DOWNLOAD_REDIRECT must be "off" or "presigned"/,
    ],
    [
      { ...REDIRECT, DOWNLOAD_REDIRECT_TTL_SECONDS: '0' },
      /^configuration error: DOWNLOAD_REDIRECT_TTL_SECONDS /,
    ],
    [
      { ...REDIRECT, DOWNLOAD_REDIRECT_TTL_SECONDS: '-5' },
      /^configuration error: DOWNLOAD_REDIRECT_TTL_SECONDS /,
    ],
    [
      { ...REDIRECT, DOWNLOAD_REDIRECT_TTL_SECONDS: '1.5' },
      /^configuration error: DOWNLOAD_REDIRECT_TTL_SECONDS /,
    ],
    [
      { ...REDIRECT, DOWNLOAD_REDIRECT_TTL_SECONDS: '604801' },
      /^configuration error: DOWNLOAD_REDIRECT_TTL_SECONDS must be at most 604800/,
    ],
    [
      { S3_PUBLIC_ENDPOINT: 'minio:9000' },
      /^configuration error: S3_PUBLIC_ENDPOINT must be a URL/,
    ],
  ])('%p exits non-zero with one line naming the variable', async (env, line) => {
    const result = await runServerToExit(env);
    expect(result.code).not.toBe(0);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(line);
    expect(result.stderr).not.toMatch(/^\s+at /m);
  });
});
