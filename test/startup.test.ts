import { createServer } from 'node:net';
import { describe, expect, test } from '@jest/globals';
import { serverOnStorage } from './harness/serverOnStorage.ts';
import { runServerToExit } from './harness/serverProcess.ts';
import { freePort } from './harness/services.ts';
import { testServices } from './harness/stack.ts';

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

  test('a metrics port already taken exits non-zero with one line naming METRICS_PORT', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const address = taken.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    try {
      const result = await runServerToExit({ METRICS_PORT: String(port) });
      expect(result.code).not.toBe(0);
      expectOneLine(result.stderr, new RegExp(`127\\.0\\.0\\.1:${port} for metrics.*METRICS_PORT`));
    } finally {
      taken.close();
    }
  });

  describe('of the embedded default', () => {
    const stack = serverOnStorage('file');
    // What `npm start` does with nothing configured: the metrics on 127.0.0.1:9464 only.
    const defaults = serverOnStorage('file', { METRICS_PORT: '' });

    test('with nothing configured the metrics listen on 127.0.0.1:9464, not on the public port', async () => {
      expect(defaults.server.metricsUrl).toBe('http://127.0.0.1:9464/metrics');
      expect((await fetch(defaults.server.metricsUrl ?? '')).status).toBe(200);
      expect((await fetch(`${defaults.server.url}/metrics`)).status).toBe(404);
      const first = defaults.server.logs()[0];
      expect(String(first?.msg)).toContain('metrics: own listener on 127.0.0.1 (no token)');
    });

    test('with nothing configured the first log line names the embedded default', async () => {
      const first = stack.server.logs()[0];
      expect(String(first?.msg)).toMatch(/embedded default/);
      expect((await fetch(`${stack.server.url}/healthz`)).status).toBe(200);
    });
  });

  describe('on MinIO', () => {
    const stack = serverOnStorage('s3');

    test('S3_BUCKET is created at start-up when missing', async () => {
      expect(String(stack.server.logs()[0]?.msg)).toMatch(/S3 bucket "t-/);
      expect(await stack.storage.inventory()).toEqual([]);
    });
  });
});
