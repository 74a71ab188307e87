import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { type ServerProcess, startServer } from './harness/serverProcess.ts';
import {
  startDedicatedMinio,
  startDedicatedRedis,
  type TestMinio,
  type TestRedis,
  waitFor,
} from './harness/services.ts';
import { MIB, randomContent, redisDbUrl, sha256, testServices } from './harness/stack.ts';
import {
  createUpload,
  downloadedSha256,
  head,
  idOf,
  offsetOf,
  patch,
  TUS,
  tusClientUpload,
  uploadUrlOn,
} from './harness/tus.ts';

/** What every request that meets an outage must get: 503, when to retry, a short JSON reason. */
async function expectUnavailable(res: Response, service: 'storage' | 'redis'): Promise<void> {
  expect(res.status).toBe(503);
  expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
  if (res.headers.get('content-length') === '0' || (await res.clone().text()) === '') return;
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const body = (await res.json()) as { error: string };
  expect(body.error).toBe(`${service} unavailable, retry later`);
}

/** The error log lines of the server that name this upload and the service that was away. */
function outageLogs(server: ServerProcess, uploadId: string, service: string) {
  return server
    .logs()
    .filter(
      (line) =>
        line.level === 50 && line.uploadId === uploadId && String(line.msg).includes(service),
    );
}

/** Every route a client uses on one finished and one unfinished upload, and a creation. */
function requests(finished: string, unfinished: string, offset: number) {
  return {
    'GET (download)': () => fetch(finished),
    'GET with Range': () => fetch(finished, { headers: { Range: 'bytes=0-99' } }),
    'HEAD (download)': () => fetch(finished, { method: 'HEAD' }),
    'HEAD (tus)': () => head(finished),
    'HEAD (tus) of the unfinished upload': () => head(unfinished),
    POST: () =>
      fetch(finished.replace(/[0-9a-f]{32}$/, ''), {
        method: 'POST',
        headers: { ...TUS, 'Upload-Length': '10' },
      }),
    PATCH: () => patch(unfinished, offset, Buffer.from('more bytes')),
    DELETE: () => fetch(unfinished, { method: 'DELETE', headers: TUS }),
  };
}

// Servers by hand, not with serverOnStorage: on a MinIO or Redis of their own that the tests stop.
describe.each([
  ['MinIO alone', false],
  ['MinIO + Redis', true],
])('MinIO stopped and restarted under a running server (%s)', (_name, withRedis) => {
  let minio: TestMinio;
  let server: ServerProcess;
  const data = randomContent(6 * MIB + 1);
  let finished: string;
  let unfinished: string;

  beforeAll(async () => {
    minio = await startDedicatedMinio();
    const env = {
      S3_ENDPOINT: minio.endpoint,
      S3_BUCKET: `o-${randomBytes(6).toString('hex')}`,
      S3_ACCESS_KEY_ID: minio.accessKeyId,
      S3_SECRET_ACCESS_KEY: minio.secretAccessKey,
      ...(withRedis ? { REDIS_URL: redisDbUrl(7) } : {}),
    };
    const first = await startServer(env);
    finished = await tusClientUpload(first.url, data, { chunkSize: 4 * MIB });
    unfinished = await createUpload(first.url, data.length);
    expect((await patch(unfinished, 0, data.subarray(0, MIB))).status).toBe(204);
    await first.stop();
    // A fresh process: no upload record is cached in it.
    server = await startServer(env);
    finished = uploadUrlOn(server, finished);
    unfinished = uploadUrlOn(server, unfinished);
    await minio.stop();
  });
  afterAll(async () => {
    await server?.stop();
    await minio?.remove();
  });

  test('every route answers 503 with Retry-After and a JSON reason, never 404 or 500', async () => {
    for (const [name, send] of Object.entries(requests(finished, unfinished, MIB))) {
      const res = await send();
      const text = await res.clone().text();
      expect({ name, status: res.status }).toEqual({ name, status: 503 });
      expect(text).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|Something went wrong/);
      await expectUnavailable(res, 'storage');
    }
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(outageLogs(server, idOf(finished), 'storage').length).toBeGreaterThan(0);
    expect(outageLogs(server, idOf(unfinished), 'storage').length).toBeGreaterThan(0);
  });

  test('once MinIO is back, nothing was lost: the unfinished upload finishes, both download intact', async () => {
    await minio.restart();
    await waitFor(async () => (await fetch(`${server.url}/readyz`)).status === 200, 'readiness');
    expect(await downloadedSha256(finished)).toBe(sha256(data));
    expect(await offsetOf(unfinished)).toBe(MIB);
    await tusClientUpload(server.url, data, { uploadUrl: unfinished });
    expect(await downloadedSha256(unfinished)).toBe(sha256(data));
  });
});

describe('Redis stopped and restarted under a running server (MinIO + Redis)', () => {
  let redis: TestRedis;
  let server: ServerProcess;
  const data = randomContent(3 * MIB + 7);
  let finished: string;
  let unfinished: string;
  const bucket = `r-${randomBytes(6).toString('hex')}`;

  beforeAll(async () => {
    redis = await startDedicatedRedis();
    const { s3Endpoint, s3AccessKeyId, s3SecretAccessKey } = testServices();
    server = await startServer({
      S3_ENDPOINT: s3Endpoint,
      S3_BUCKET: bucket,
      S3_ACCESS_KEY_ID: s3AccessKeyId,
      S3_SECRET_ACCESS_KEY: s3SecretAccessKey,
      REDIS_URL: redis.url,
    });
    finished = await tusClientUpload(server.url, data);
    unfinished = await createUpload(server.url, data.length);
    expect((await patch(unfinished, 0, data.subarray(0, MIB))).status).toBe(204);
    await redis.stop();
  });
  afterAll(async () => {
    await server?.stop();
    await redis?.stop();
  });

  test('downloads go on from MinIO: GET and Range answer with the bytes', async () => {
    expect(await downloadedSha256(finished)).toBe(sha256(data));
    const ranged = await fetch(finished, { headers: { Range: 'bytes=10-19' } });
    expect(ranged.status).toBe(206);
    expect(Buffer.from(await ranged.arrayBuffer())).toEqual(data.subarray(10, 20));
  });

  test('what needs a lock or the index answers 503 with Retry-After and a JSON reason', async () => {
    const all = requests(finished, unfinished, MIB);
    for (const name of [
      'HEAD (tus)',
      'HEAD (tus) of the unfinished upload',
      'POST',
      'PATCH',
      'DELETE',
    ] as const) {
      const res = await all[name]();
      expect({ name, status: res.status }).toEqual({ name, status: 503 });
      await expectUnavailable(res, 'redis');
    }
    expect((await fetch(`${server.url}/readyz`)).status).toBe(503);
    expect(outageLogs(server, idOf(unfinished), 'redis').length).toBeGreaterThan(0);
  });

  test('once Redis is back (empty), the unfinished upload finishes and both download intact', async () => {
    await redis.restart();
    await waitFor(async () => (await fetch(`${server.url}/readyz`)).status === 200, 'readiness');
    expect(await offsetOf(unfinished)).toBe(MIB);
    await tusClientUpload(server.url, data, { uploadUrl: unfinished });
    expect(await downloadedSha256(unfinished)).toBe(sha256(data));
    expect(await downloadedSha256(finished)).toBe(sha256(data));
  });
});
