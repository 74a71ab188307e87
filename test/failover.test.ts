import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { Redis } from 'ioredis';
import { Upload } from 'tus-js-client';
import { median } from '../bench/stats.ts';
import { startNginx } from './harness/nginx.ts';
import { bytesWaitingAt } from './harness/processProbe.ts';
import { loggedRequest, type ServerProcess, startServer } from './harness/serverProcess.ts';
import { startDedicatedRedis, type TestRedis, waitFor } from './harness/services.ts';
import {
  createTestStorage,
  MIB,
  randomContent,
  sha256,
  type TestStorage,
} from './harness/stack.ts';
import {
  createUpload,
  downloadedSha256,
  idOf,
  offsetOf,
  patchHeaders,
  uploadUrlOn,
} from './harness/tus.ts';

/** What one PATCH was answered: its status and, on 204, the range of the upload it wrote. */
type Answer = { writer: string; status: number | undefined; from: number; to?: number };

/**
 * A PATCH of `bytes` from `offset`, sent in 256 KiB pieces `paceMs` apart so that writers on
 * two instances overlap; resolves with the answer (status undefined: the connection failed).
 */
function pacedPatch(url: string, offset: number, bytes: Buffer, paceMs: number) {
  return new Promise<{ status?: number; offset?: number }>((resolve) => {
    const req = request(url, {
      method: 'PATCH',
      headers: { ...patchHeaders(offset), 'Content-Length': String(bytes.length) },
    });
    req.on('response', (res) => {
      res.resume();
      const after = res.headers['upload-offset'];
      resolve({ status: res.statusCode, offset: after === undefined ? undefined : Number(after) });
    });
    req.on('error', () => resolve({}));
    void (async () => {
      for (let at = 0; at < bytes.length && !req.destroyed; at += 256 * 1024) {
        req.write(bytes.subarray(at, at + 256 * 1024));
        await sleep(paceMs);
      }
      req.end();
    })();
  });
}

/**
 * A client that sends its own bytes (`data`, the whole file as it sees it) until the upload is
 * complete: HEAD for the offset, PATCH one chunk from there, again. Every answer is recorded.
 */
async function writer(
  name: string,
  url: string,
  data: Buffer,
  chunk: number,
  answers: Answer[],
  paceMs = 2,
): Promise<void> {
  for (let round = 0; round < 200; round += 1) {
    const from = await offsetOf(url);
    if (from === data.length) return;
    const { status, offset } = await pacedPatch(
      url,
      from,
      data.subarray(from, from + chunk),
      paceMs,
    );
    answers.push({ writer: name, status, from, to: status === 204 ? offset : undefined });
    if (status !== 204) await sleep(20);
  }
  throw new Error(`${name} did not see the upload complete`);
}

/**
 * The two-writer property: the 204 answers' ranges tile the upload exactly once (no byte
 * acknowledged to two writers, none stored without an acknowledgement) and each range holds
 * the bytes of the writer it was acknowledged to.
 */
function expectTiled(
  stored: Buffer,
  answers: Answer[],
  data: Record<string, Buffer>,
  statuses = [204, 409, 423],
) {
  const written = answers.filter((answer) => answer.status === 204).sort((x, y) => x.from - y.from);
  let next = 0;
  for (const { writer, from, to } of written) {
    expect({ writer, from }).toEqual({ writer, from: next });
    expect(to).toBeGreaterThanOrEqual(from);
    const theirs = (data[writer] as Buffer).subarray(from, to);
    expect(stored.subarray(from, to).equals(theirs)).toBe(true);
    next = to as number;
  }
  expect(next).toBe(stored.length);
  for (const { status } of answers) expect(statuses).toContain(status);
}

async function downloaded(url: string): Promise<Buffer> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

describe('two writers on two instances never append to one upload at once', () => {
  let storage: TestStorage;
  let redis: TestRedis;
  let a: ServerProcess;
  let b: ServerProcess;

  beforeAll(async () => {
    storage = createTestStorage('s3');
    redis = await startDedicatedRedis();
    const env = { ...storage.env, REDIS_URL: redis.url };
    [a, b] = await Promise.all([startServer(env), startServer(env)]);
  });
  afterAll(async () => {
    await Promise.all([a, b].map((server) => server?.stop('SIGKILL')));
    await redis?.stop();
    await storage?.cleanup();
  });

  test('racing clients with different bytes, 4 rounds: every byte acknowledged once, to the writer whose byte it is', async () => {
    for (let round = 0; round < 4; round += 1) {
      const length = 12 * MIB + round * 333_333;
      const data = { A: randomContent(length), B: randomContent(length) };
      const url = await createUpload(a.url, length);
      const answers: Answer[] = [];
      await Promise.all([
        writer('A', uploadUrlOn(a, url), data.A, 3 * MIB, answers),
        writer('B', uploadUrlOn(b, url), data.B, 3 * MIB + 1, answers),
      ]);
      expectTiled(await downloaded(uploadUrlOn(b, url)), answers, data);
      // The race happened: both writers were turned away at least once.
      const refused = answers.filter((answer) => answer.status !== 204).map((x) => x.writer);
      process.stdout.write(
        `failover: round ${round}: ${answers.length} PATCHes, ${refused.length} refused (${refused.join('')})\n`,
      );
      expect(refused.length).toBeGreaterThan(0);
    }
  });

  test('a holder stopped (SIGSTOP) mid-PATCH keeps its lock: the other writer waits, and the bytes tile', async () => {
    const length = 10 * MIB;
    const data = { A: randomContent(length), B: randomContent(length) };
    const url = await createUpload(a.url, length);
    const answers: Answer[] = [];
    // A's client sends 6 MiB slowly; A is stopped while it holds the lock.
    const first = pacedPatch(uploadUrlOn(a, url), 0, data.A.subarray(0, 6 * MIB), 20);
    await sleep(300);
    process.kill(a.pid, 'SIGSTOP');
    const stoppedAt = performance.now();
    const second = (async () => {
      const { status, offset } = await pacedPatch(uploadUrlOn(b, url), 0, data.B, 0);
      answers.push({ writer: 'B', status, from: 0, to: status === 204 ? offset : undefined });
      return performance.now();
    })();
    await sleep(3000);
    process.kill(a.pid, 'SIGCONT');
    const continuedAt = performance.now();
    const answeredAt = await second;
    const { status, offset } = await first;
    answers.push({ writer: 'A', status, from: 0, to: status === 204 ? offset : undefined });
    process.stdout.write(
      `failover: A stopped for ${Math.round(continuedAt - stoppedAt)} ms; B answered ${Math.round(answeredAt - continuedAt)} ms after A continued\n`,
    );
    // B was not let in while A, alive, held the lock.
    expect(answeredAt).toBeGreaterThan(continuedAt);
    await Promise.all([
      writer('A', uploadUrlOn(a, url), data.A, 4 * MIB, answers),
      writer('B', uploadUrlOn(b, url), data.B, 4 * MIB, answers),
    ]);
    expectTiled(await downloaded(uploadUrlOn(a, url)), answers, data);
  });

  test('a holder whose Redis connection drops stops writing at once (503): the other writer takes over, the bytes tile', async () => {
    const admin = new Redis(redis.url);
    try {
      for (let round = 0; round < 3; round += 1) {
        const length = 10 * MIB;
        const data = { A: randomContent(length), B: randomContent(length) };
        const url = await createUpload(a.url, length);
        const answers: Answer[] = [];
        // 8 MiB, one S3 part, streamed over ~0.6 s: A is mid-part when its connection drops.
        const first = pacedPatch(uploadUrlOn(a, url), 0, data.A.subarray(0, 8 * MIB), 20);
        await sleep(250 + 50 * round);
        const token = String(await admin.get(`tus:lock:{${idOf(url)}}`));
        expect(await admin.client('KILL', 'ID', token.split('.')[0] as string)).toBe(1);
        const takeover = writer('B', uploadUrlOn(b, url), data.B, 4 * MIB, answers);
        const { status, offset } = await first;
        answers.push({ writer: 'A', status, from: 0, to: status === 204 ? offset : undefined });
        // Fenced: not the graceful 204 of a request asked to let go, which would store its bytes.
        expect(status).toBe(503);
        await takeover;
        expectTiled(await downloaded(uploadUrlOn(a, url)), answers, data, [204, 409, 423, 503]);
      }
    } finally {
      admin.disconnect();
    }
  });
});

describe('through nginx (deploy/nginx.conf), two instances: kill -9 of the one receiving a PATCH', () => {
  let storage: TestStorage;
  let redis: TestRedis;

  beforeAll(async () => {
    storage = createTestStorage('s3');
    redis = await startDedicatedRedis();
  });
  afterAll(async () => {
    await redis?.stop();
    await storage?.cleanup();
  });

  test('tus-js-client continues on the other instance within 3 s, 3 rounds, and the bytes are intact', async () => {
    const env = { ...storage.env, REDIS_URL: redis.url };
    const stalls: number[] = [];
    for (let round = 0; round < 3; round += 1) {
      const instances = await Promise.all([startServer(env), startServer(env)]);
      const nginx = await startNginx({ upstreams: instances.map((server) => server.url) });
      try {
        const data = randomContent(96 * MIB);
        const CHUNK = 8 * MIB;
        const chunksDone: number[] = [];
        let killedAt = 0;
        let receiving: ServerProcess | undefined;
        let uploadUrl = '';
        let patches = 0;
        // The instance that logged this upload's PATCHes receives the next one too: it is stopped
        // before that PATCH is sent, and killed once the PATCH's bytes wait at its socket. The
        // PATCH is then cut whatever the machine's speed (a kill on a timer could land between
        // two PATCHes).
        let killed: Promise<void> = Promise.resolve();
        const stopThenKill = () => {
          const id = idOf(uploadUrl);
          receiving = instances.find((server) =>
            server.logs().some((line) => {
              const req = loggedRequest(line);
              return req?.method === 'PATCH' && req.path.endsWith(id);
            }),
          );
          if (!receiving) return;
          const { pid, url } = receiving;
          process.kill(pid, 'SIGSTOP');
          killed = waitFor(
            async () => bytesWaitingAt(Number(new URL(url).port)) > 0,
            'the next PATCH reaching the stopped instance',
            10_000,
          ).then(() => {
            killedAt = performance.now();
            process.kill(pid, 'SIGKILL');
          });
        };
        await new Promise<void>((resolve, reject) => {
          const upload = new Upload(data, {
            endpoint: `${nginx.url}/files/`,
            chunkSize: CHUNK,
            retryDelays: [0, 200, 500, 1000, 2000],
            onBeforeRequest: (req) => {
              if (req.getMethod() === 'PATCH') patches += 1;
            },
            onChunkComplete: () => {
              chunksDone.push(performance.now());
              uploadUrl = upload.url ?? '';
              if (chunksDone.length === 3 + round) stopThenKill();
            },
            onError: reject,
            onSuccess: () => resolve(),
          });
          upload.start();
        });
        await killed;
        expect(receiving).toBeDefined();
        // The PATCH in flight was cut by the kill and sent again: one more PATCH than chunks.
        expect(patches).toBe(data.length / CHUNK + 1);
        expect(killedAt).toBeGreaterThan(0);
        const before = chunksDone.filter((at) => at < killedAt);
        const next = chunksDone.find((at) => at > killedAt) as number;
        const usual = median(before.slice(1).map((at, i) => at - (before[i] as number)));
        // From the kill to the end of the chunk that was cut: that chunk is sent whole again.
        const stall = next - killedAt;
        stalls.push(Math.round(stall));
        process.stdout.write(
          `failover: round ${round}: kill -9 during chunk ${before.length + 1}; next chunk done ${Math.round(stall)} ms later (a chunk usually takes ${Math.round(usual)} ms)\n`,
        );
        expect(stall).toBeLessThan(3000);
        expect(await downloadedSha256(uploadUrl)).toBe(sha256(data));
        // The upload went through both instances, one of them dead now.
        const survivor = instances.find((server) => server !== receiving) as ServerProcess;
        expect(await downloadedSha256(uploadUrlOn(survivor, uploadUrl))).toBe(sha256(data));
      } finally {
        await nginx.stop();
        await Promise.all(instances.map((server) => server.stop('SIGKILL')));
      }
    }
    process.stdout.write(`failover: stalls after kill -9: ${stalls.join(', ')} ms\n`);
  });
});
