import { rmSync } from 'node:fs';
import { afterAll, describe, expect, test } from '@jest/globals';
import { type ServerProcess, startServer } from './harness/serverProcess.ts';
import { startDedicatedRedis, waitFor } from './harness/services.ts';
import {
  createTestStorage,
  randomContent,
  STORAGE_KINDS,
  type TestStorage,
} from './harness/stack.ts';
import { createUpload, head, idOf, patch, TUS } from './harness/tus.ts';

// Started by hand, not with serverOnStorage: a server per test, on a storage or Redis the test
// breaks, or whose every request line the test counts.
describe('health, readiness and logs', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });
  async function serverOn(
    storage: TestStorage,
    env: NodeJS.ProcessEnv = {},
  ): Promise<ServerProcess> {
    cleanups.push(() => storage.cleanup());
    const server = await startServer({ ...storage.env, ...env });
    cleanups.push(() => server.stop());
    return server;
  }

  test('/readyz is 200 while MinIO and Redis answer, 503 with a JSON reason once Redis is gone', async () => {
    const redis = await startDedicatedRedis();
    cleanups.push(() => redis.stop());
    const server = await serverOn(createTestStorage('s3'), { REDIS_URL: redis.url });
    await waitFor(
      async () => (await fetch(`${server.url}/readyz`)).status === 200,
      'readyz',
      10_000,
    );
    expect(await (await fetch(`${server.url}/readyz`)).json()).toEqual({ status: 'ready' });

    await redis.stop();
    const res = await fetch(`${server.url}/readyz`);
    expect(res.status).toBe(503);
    const body = (await res.json()) as { reasons: string[] };
    expect(body.reasons).toHaveLength(1);
    expect(body.reasons[0]).toMatch(/^redis: /);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });

  test('/readyz is 503 naming storage when the data directory is gone', async () => {
    const storage = createTestStorage('file');
    const server = await serverOn(storage);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    rmSync(String(storage.env.DATA_DIR), { recursive: true, force: true });
    const res = await fetch(`${server.url}/readyz`);
    expect(res.status).toBe(503);
    expect(((await res.json()) as { reasons: string[] }).reasons[0]).toMatch(/^storage: /);
  });

  test('every request logs one JSON line with method, path, status, duration and upload id; no secret', async () => {
    const storage = createTestStorage('s3');
    const server = await serverOn(storage);
    const url = await createUpload(server.url, 5);
    await patch(url, 0, Buffer.from('hello'), { Authorization: 'Bearer token-that-must-not-leak' });
    await head(url);
    await fetch(`${server.url}/files/`, { method: 'POST', headers: TUS });
    // Each line is written when its response has ended, which the client may see first.
    await waitFor(
      async () => server.logs().filter((line) => line.req !== undefined).length >= 4,
      'the four request lines',
      5000,
    );

    const requests = server.logs().filter((line) => line.req !== undefined);
    expect(requests.map((line) => (line.req as { method: string }).method)).toEqual([
      'POST',
      'PATCH',
      'HEAD',
      'POST',
    ]);
    for (const line of requests) {
      expect(line).toMatchObject({
        req: { method: expect.any(String), path: expect.stringMatching(/^\/files\//) },
        res: { status: expect.any(Number) },
        responseTime: expect.any(Number),
      });
    }
    expect(requests.slice(0, 3).map((line) => line.uploadId)).toEqual([
      idOf(url),
      idOf(url),
      idOf(url),
    ]);
    expect(requests[3]?.res).toEqual({ status: 400 });
    const output = server.output();
    expect(output).not.toContain(String(storage.env.S3_SECRET_ACCESS_KEY));
    expect(output).not.toContain('token-that-must-not-leak');
  });

  test.each(STORAGE_KINDS)(
    'every line a request logs carries its id: X-Request-Id from a proxy, echoed back, or a new one (%s)',
    async (kind) => {
      // A hook receiver that is not there: the creation's hook logs a line of its own (503).
      const server = await serverOn(createTestStorage(kind), {
        HOOKS_HTTP_URL: 'http://127.0.0.1:9/hooks',
        HOOKS_ENABLED_EVENTS: 'pre-create',
      });
      const sent = await fetch(`${server.url}/files`, {
        method: 'POST',
        headers: { ...TUS, 'Upload-Length': '5', 'X-Request-Id': 'proxy-7f3a.1' },
      });
      expect(sent.status).toBe(503);
      expect(sent.headers.get('x-request-id')).toBe('proxy-7f3a.1');
      const mine = (line: Record<string, unknown>) => line.requestId === 'proxy-7f3a.1';
      await server.waitForLog((line) => mine(line) && line.req !== undefined, 'the request line');
      const lines = server.logs().filter(mine);
      expect(lines.map((line) => line.msg)).toEqual([
        'hook delivery failed',
        expect.stringMatching(/^POST \/files 503/),
      ]);

      // No id, or one that is not a short printable token: the server makes one.
      for (const header of [undefined, 'x'.repeat(129), 'a b']) {
        const res = await fetch(`${server.url}/healthz`, {
          headers: header === undefined ? {} : { 'X-Request-Id': header },
        });
        const id = res.headers.get('x-request-id') ?? '';
        expect(id).toMatch(/^[0-9a-f-]{36}$/);
        await server.waitForLog((line) => line.requestId === id, `the line of ${id}`);
      }
    },
  );

  test('a malformed request never crashes the server', async () => {
    const server = await serverOn(createTestStorage('file'));
    const url = await createUpload(server.url, 10);
    const bad: Array<[string, RequestInit]> = [
      [
        url,
        {
          method: 'PATCH',
          headers: {
            ...TUS,
            'Upload-Offset': '-5',
            'Content-Type': 'application/offset+octet-stream',
          },
          body: 'x',
        },
      ],
      [
        url,
        {
          method: 'PATCH',
          headers: { ...TUS, 'Content-Type': 'application/offset+octet-stream' },
          body: 'x',
        },
      ],
      [
        url,
        {
          method: 'PATCH',
          headers: {
            ...TUS,
            'Upload-Offset': '0',
            'Content-Type': 'application/offset+octet-stream',
            'Upload-Length': 'x',
          },
          body: 'x',
        },
      ],
      [
        `${server.url}/files/`,
        { method: 'POST', headers: { ...TUS, 'Upload-Length': '5', 'Upload-Defer-Length': '1' } },
      ],
      [`${server.url}/files/${'a'.repeat(32)}/extra`, { method: 'PATCH', headers: TUS }],
      [`${server.url}/files/`, { method: 'PUT', headers: TUS }],
    ];
    for (const [target, init] of bad) {
      const res = await fetch(target, init);
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
    }
    expect((await head(url)).headers.get('upload-offset')).toBe('0');
    const data = randomContent(10);
    expect((await patch(url, 0, data)).status).toBe(204);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });
});
