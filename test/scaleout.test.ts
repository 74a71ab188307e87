import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { answerFrom, prove } from './harness/dedupeProof.ts';
import { type ServerProcess, startServer } from './harness/serverProcess.ts';
import { startDedicatedRedis, type TestRedis, waitFor } from './harness/services.ts';
import { openPatch } from './harness/slowPatch.ts';
import {
  createTestStorage,
  MIB,
  randomContent,
  sha256,
  type TestStorage,
} from './harness/stack.ts';
import {
  createUpload,
  encodeMetadata,
  idOf,
  offsetOf,
  patch,
  tusClientUpload,
  uploadUrlOn,
} from './harness/tus.ts';

const LOCK_TTL_SECONDS = 2;

// Started by hand, not with serverOnStorage: several instances, one killed per round, on a
// Redis of their own that a test stops.
describe('several instances on one MinIO and one Redis', () => {
  let storage: TestStorage;
  let redis: TestRedis;
  let env: NodeJS.ProcessEnv;
  const instances: ServerProcess[] = [];
  const extra: ServerProcess[] = [];

  beforeAll(async () => {
    storage = createTestStorage('s3');
    redis = await startDedicatedRedis();
    env = {
      ...storage.env,
      REDIS_URL: redis.url,
      LOCK_TTL_SECONDS: String(LOCK_TTL_SECONDS),
      DEDUPE_PROOF: 'on',
    };
    for (let i = 0; i < 3; i += 1) instances.push(await startServer(env));
  });
  afterAll(async () => {
    await Promise.all([...instances, ...extra].map((server) => server.stop('SIGKILL')));
    await redis?.stop();
    await storage?.cleanup();
  });

  test('20 uploads of 24 MiB, each 6 MiB chunk sent to the next of three instances, all at once', async () => {
    const CHUNK = 6 * MIB;
    const results = await Promise.all(
      Array.from({ length: 20 }, async (_, n) => {
        const data = randomContent(24 * MIB);
        // The claimed hash is verified at the end although no instance saw every chunk.
        const url = await createUpload(instances[n % 3]?.url ?? '', data.length, {
          'Upload-Metadata': encodeMetadata({ sha256: sha256(data) }),
        });
        for (let offset = 0, k = n; offset < data.length; offset += CHUNK, k += 1) {
          const target = uploadUrlOn(instances[k % 3] as ServerProcess, url);
          const res = await patch(target, offset, data.subarray(offset, offset + CHUNK));
          expect(res.status).toBe(204);
        }
        return { id: idOf(url), expected: sha256(data), data };
      }),
    );
    for (const { id, expected } of results) expect(await storage.storedSha256(id)).toBe(expected);
    // Every upload was verified and indexed: announcing one of them again on another instance,
    // a client holding its bytes proves it and gets it without sending them.
    const again = await fetch(`${instances[2]?.url}/files/`, {
      method: 'POST',
      headers: {
        'Tus-Resumable': '1.0.0',
        'Upload-Length': String(24 * MIB),
        'Upload-Metadata': encodeMetadata({ sha256: results[0]?.expected ?? '' }),
      },
    });
    expect(again.status).toBe(201);
    const url = new URL(again.headers.get('location') ?? '', instances[2]?.url).toString();
    const answer = answerFrom(
      results[0]?.data ?? Buffer.alloc(0),
      again.headers.get('upload-dedupe-challenge'),
    );
    const proven = await prove(uploadUrlOn(instances[1] as ServerProcess, url), answer);
    expect(proven.status).toBe(204);
    expect(proven.headers.get('upload-offset')).toBe(String(24 * MIB));
  });

  test('a client that lost its PATCH to A gets its HEAD answered by B in under 1 s, then finishes', async () => {
    const [a, b] = instances as [ServerProcess, ServerProcess];
    const data = randomContent(20 * MIB);
    const url = await createUpload(a.url, data.length);
    // The client stops sending mid-chunk but its connection stays open, as when a network drops.
    const stalled = openPatch(url, 0, data.subarray(0, 9 * MIB));
    await stalled.read();

    const began = performance.now();
    const offset = await offsetOf(uploadUrlOn(b, url));
    const waitedMs = performance.now() - began;
    process.stdout.write(
      `scale-out: HEAD on B answered after ${waitedMs.toFixed(0)} ms (offset ${offset})\n`,
    );
    expect(waitedMs).toBeLessThan(1000);
    expect(offset).toBe(9 * MIB);
    stalled.req.destroy();

    await tusClientUpload(b.url, data, { uploadUrl: uploadUrlOn(b, url) });
    expect(await storage.storedSha256(idOf(url))).toBe(sha256(data));
  });

  test('kill -9 of A during a PATCH: the client resumes on B at once, not after the lease, 10 times out of 10', async () => {
    const b = instances[1] as ServerProcess;
    let finished = 0;
    const resumedAfterMs: number[] = [];
    for (let round = 0; round < 10; round += 1) {
      // A's lease outlasts B's patience (LOCK_TTL_SECONDS + 5 s): only noticing that A's Redis
      // connection is gone lets B in.
      const a = await startServer({ ...env, LOCK_TTL_SECONDS: '30' });
      extra.push(a);
      const data = randomContent(12 * MIB);
      const url = await createUpload(a.url, data.length);
      const inFlight = openPatch(url, 0, data.subarray(0, 10 * MIB));
      // A holds the upload's lock and has read the bytes when it dies.
      await inFlight.read();
      await a.stop('SIGKILL');
      inFlight.req.destroy();

      const began = performance.now();
      await tusClientUpload(b.url, data, {
        uploadUrl: uploadUrlOn(b, url),
        retryDelays: [],
      });
      resumedAfterMs.push(Math.round(performance.now() - began));
      if ((await storage.storedSha256(idOf(url))) === sha256(data)) finished += 1;
    }
    process.stdout.write(
      `scale-out: kill -9 rounds finished ${finished}/10; resumed after ${resumedAfterMs.join(', ')} ms\n`,
    );
    expect(finished).toBe(10);
    // The whole 12 MiB upload, HEAD to last byte, on B.
    for (const ms of resumedAfterMs) expect(ms).toBeLessThan(3000);
  });

  test('two PATCHes for one upload at once on two instances: one wins, the other gets a retryable status', async () => {
    const [a, b] = instances as [ServerProcess, ServerProcess];
    const data = randomContent(16 * MIB);
    const url = await createUpload(a.url, data.length);
    const statuses = await Promise.all([
      patch(uploadUrlOn(a, url), 0, data).then((res) => res.status),
      patch(uploadUrlOn(b, url), 0, data).then((res) => res.status),
    ]);
    expect(statuses).toContain(204);
    for (const status of statuses) expect([204, 409, 423]).toContain(status);
    process.stdout.write(`scale-out: concurrent PATCH statuses ${statuses.join(', ')}\n`);

    await tusClientUpload(b.url, data, { uploadUrl: uploadUrlOn(b, url) });
    expect(await offsetOf(uploadUrlOn(a, url))).toBe(data.length);
    expect(await storage.storedSha256(idOf(url))).toBe(sha256(data));
  });

  test('Redis stopped: PATCHes get 503 quickly; when it returns the uploads resume and finish', async () => {
    const [a, b, c] = instances as [ServerProcess, ServerProcess, ServerProcess];
    const uploads = await Promise.all(
      [a, b, c].map(async (server) => {
        const data = randomContent(8 * MIB);
        const url = await createUpload(server.url, data.length);
        expect((await patch(url, 0, data.subarray(0, 3 * MIB))).status).toBe(204);
        return { data, url };
      }),
    );

    await redis.stop();
    const timings = await Promise.all(
      uploads.map(async ({ data, url }) => {
        const began = performance.now();
        const res = await patch(url, 3 * MIB, data.subarray(3 * MIB, 4 * MIB));
        return { status: res.status, ms: Math.round(performance.now() - began) };
      }),
    );
    process.stdout.write(`scale-out: with Redis down ${JSON.stringify(timings)}\n`);
    for (const { status, ms } of timings) {
      expect(status).toBe(503);
      expect(ms).toBeLessThan(3000);
    }

    await redis.restart();
    for (const server of [a, b, c]) {
      await waitFor(
        async () => (await fetch(`${server.url}/readyz`)).status === 200,
        'the instance reconnected to Redis',
        15_000,
      );
    }
    for (const { data, url } of uploads) {
      await tusClientUpload(a.url, data, {
        uploadUrl: uploadUrlOn(a, url),
        retryDelays: [500, 1000, 2000],
      });
      expect(await storage.storedSha256(idOf(url))).toBe(sha256(data));
    }
  });
});
