import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { Redis } from 'ioredis';
import { type ServerProcess, startServer } from './harness/serverProcess.ts';
import { startDedicatedRedis, type TestRedis } from './harness/services.ts';
import { createTestStorage, MIB, randomContent, type TestStorage } from './harness/stack.ts';
import { createUpload, idOf, offsetOf, patchHeaders, uploadUrlOn } from './harness/tus.ts';

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
