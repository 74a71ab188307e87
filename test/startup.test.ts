import { describe, expect, test } from '@jest/globals';
import { runServerToExit, startServer } from './harness/serverProcess.ts';
import { freePort } from './harness/services.ts';
import { createTestStorage, testServices } from './harness/stack.ts';

function expectOneLine(stderr: string, mention: RegExp) {
  const lines = stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(mention);
  expect(stderr).not.toMatch(/^\s+at /m);
}

describe('start-up', () => {
  test.each([
    [{ PORT: 'abc' }, /PORT/],
    [{ S3_PART_SIZE: '1000' }, /S3_PART_SIZE/],
    [{ DEDUPE: 'maybe' }, /DEDUPE/],
  ])('bad configuration %p exits non-zero with one line naming the variable', async (env, name) => {
    const result = await runServerToExit(env);
    expect(result.code).not.toBe(0);
    expectOneLine(result.stderr, name);
  });

  test('unreachable MinIO exits non-zero with one clear line', async () => {
    const port = await freePort();
    const result = await runServerToExit({
      S3_ENDPOINT: `http://127.0.0.1:${port}`,
      S3_ACCESS_KEY_ID: 'a',
      S3_SECRET_ACCESS_KEY: 'b',
    });
    expect(result.code).not.toBe(0);
    expectOneLine(result.stderr, /S3_ENDPOINT .* unreachable/);
  });

  test('wrong MinIO credentials exit non-zero with one clear line and no secret', async () => {
    const result = await runServerToExit({
      S3_ENDPOINT: testServices().s3Endpoint,
      S3_ACCESS_KEY_ID: 'wrong-user',
      S3_SECRET_ACCESS_KEY: 'wrong-secret-value',
    });
    expect(result.code).not.toBe(0);
    expectOneLine(result.stderr, /rejected the credentials/);
    expect(result.stderr + result.stdout).not.toContain('wrong-secret-value');
  });

  test('with nothing configured the first log line names the embedded default', async () => {
    const storage = createTestStorage('file');
    const server = await startServer(storage.env);
    try {
      const first = server.logs()[0];
      expect(String(first?.msg)).toMatch(/embedded default/);
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    } finally {
      await server.stop();
      await storage.cleanup();
    }
  });

  test('S3_BUCKET is created at start-up when missing', async () => {
    const storage = createTestStorage('s3');
    const server = await startServer(storage.env);
    try {
      expect(String(server.logs()[0]?.msg)).toMatch(/S3 bucket "t-/);
      expect(await storage.inventory()).toEqual([]);
    } finally {
      await server.stop();
      await storage.cleanup();
    }
  });
});
