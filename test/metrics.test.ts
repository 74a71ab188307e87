import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { curl } from './harness/curl.ts';
import { type HookReceiver, startHookReceiver } from './harness/hookReceiver.ts';
import { serverOnStorage } from './harness/serverOnStorage.ts';
import { type ServerProcess, startServer } from './harness/serverProcess.ts';
import { waitFor } from './harness/services.ts';
import {
  createTestStorage,
  MIB,
  randomContent,
  STORAGE_KINDS,
  sha256,
  type TestStorage,
} from './harness/stack.ts';
import { bearer, JWT_SECRET, tokenFor } from './harness/tokens.ts';
import { downloadedSha256, encodeMetadata, TUS, tusClientUpload } from './harness/tus.ts';

/** The samples of a Prometheus text exposition at `url`: `name{labels}` → value. */
async function scrape(url: string | undefined, headers: Record<string, string> = {}) {
  if (!url) throw new Error('the server has no metrics listener');
  const res = await fetch(url, { headers });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const samples = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (match?.[1] && match[2]) samples.set(match[1], Number(match[2]));
  }
  return samples;
}

/** How a client may spell the route: the app's routes ignore case and a trailing slash. */
const SPELLINGS = ['/metrics', '/metrics/', '/Metrics', '/METRICS/', '/metrics?x=1'];

/** The sum of the samples named `name` whose labels include every one of `labels`. */
function sum(samples: Map<string, number>, name: string, labels: Record<string, string> = {}) {
  let total = 0;
  for (const [key, value] of samples) {
    const [sampleName, rest = ''] = key.split('{');
    if (sampleName !== name) continue;
    if (Object.entries(labels).every(([label, v]) => rest.includes(`${label}="${v}"`)))
      total += value;
  }
  return total;
}

describe.each(STORAGE_KINDS)('Prometheus metrics on the %s configuration', (kind) => {
  let storage: TestStorage;
  let receiver: HookReceiver;
  let server: ServerProcess;
  let alice: Record<string, string>;
  const off = serverOnStorage(kind, { METRICS: 'off' });
  beforeAll(async () => {
    storage = createTestStorage(kind);
    receiver = await startHookReceiver();
    server = await startServer({
      ...storage.env,
      AUTH_JWT_SECRET: JWT_SECRET,
      HOOKS_HTTP_URL: receiver.url,
    });
    alice = bearer(await tokenFor('alice'));
  });
  afterAll(async () => {
    await server?.stop();
    await receiver?.close();
    await storage?.cleanup();
  });

  test('what uploads, downloads, dedupe, hooks and terminations do shows in the counters', async () => {
    const before = await scrape(server.metricsUrl);
    const data = randomContent(2 * MIB + 1);
    const digest = sha256(data);
    const url = await tusClientUpload(server.url, data, {
      chunkSize: MIB,
      headers: alice,
      metadata: { filename: 'm.bin', sha256: digest },
    });
    expect(await downloadedSha256(url, alice)).toBe(digest);
    // The same bytes again: a dedupe hit, created finished without a transfer.
    const hit = await fetch(`${server.url}/files/`, {
      method: 'POST',
      headers: {
        ...TUS,
        ...alice,
        'Upload-Length': String(data.length),
        'Upload-Metadata': encodeMetadata({ filename: 'again.bin', sha256: digest }),
      },
    });
    expect(hit.headers.get('upload-offset')).toBe(String(data.length));
    const hitUrl = new URL(hit.headers.get('location') ?? '', server.url).toString();
    expect((await fetch(hitUrl, { method: 'DELETE', headers: { ...TUS, ...alice } })).status).toBe(
      204,
    );
    await waitFor(
      async () => receiver.of('post-terminate').length >= 1,
      'the post-terminate hook',
      15_000,
    );

    const after = await scrape(server.metricsUrl);
    const delta = (name: string, labels: Record<string, string> = {}) =>
      sum(after, name, labels) - sum(before, name, labels);
    expect(delta('tus_uploads_created_total')).toBe(2);
    expect(delta('tus_uploads_finished_total')).toBe(2);
    expect(delta('tus_uploads_terminated_total')).toBe(1);
    expect(delta('tus_bytes_received_total')).toBe(data.length);
    expect(delta('tus_bytes_served_total')).toBe(data.length);
    expect(delta('tus_dedupe_hits_total', { kind: 'owner' })).toBe(1);
    expect(delta('tus_dedupe_misses_total')).toBe(1);
    expect(
      delta('tus_request_duration_seconds_count', {
        method: 'PATCH',
        route: '/files/:id',
        status: '204',
      }),
    ).toBe(3);
    expect(
      delta('tus_request_duration_seconds_count', {
        method: 'POST',
        route: '/files',
        status: '201',
      }),
    ).toBe(2);
    expect(
      delta('tus_request_duration_seconds_count', {
        method: 'GET',
        route: '/files/:id',
        status: '200',
      }),
    ).toBe(1);
    expect(delta('tus_lock_wait_seconds_count')).toBeGreaterThanOrEqual(3);
    expect(delta('tus_hook_invocations_total', { hooktype: 'post-finish' })).toBe(2);
    expect(delta('tus_hook_invocations_total', { hooktype: 'post-terminate' })).toBe(1);
    expect(sum(after, 'tus_active_uploads')).toBe(0);
    expect(sum(after, 'process_resident_memory_bytes')).toBeGreaterThan(10 * MIB);
    if (storage.backend === 's3') {
      expect(
        delta('tus_s3_request_duration_seconds_count', { operation: 'UploadPart' }),
      ).toBeGreaterThanOrEqual(1);
      expect(
        delta('tus_s3_request_duration_seconds_count', { operation: 'GetObject' }),
      ).toBeGreaterThanOrEqual(1);
    }
    // Labels name routes, never upload ids.
    expect([...after.keys()].some((key) => key.includes(url.split('/').pop() ?? '-'))).toBe(false);
  });

  test('the public port has no /metrics, however it is spelled: they are on a loopback listener of their own', async () => {
    const unknown = await fetch(`${server.url}/no-such-route`);
    const unknownBody = await unknown.text();
    for (const spelling of SPELLINGS) {
      for (const headers of [{}, alice]) {
        const res = await fetch(`${server.url}${spelling}`, { headers });
        expect({ spelling, status: res.status }).toEqual({ spelling, status: 404 });
        expect(await res.text()).toBe(unknownBody);
      }
    }
    const listener = new URL(server.metricsUrl ?? '');
    expect(listener.port).not.toBe(new URL(server.url).port);
    const logged = server.logs().find((line) => String(line.msg).startsWith('metrics served at'));
    expect(logged).toMatchObject({ host: '127.0.0.1', port: Number(listener.port) });
    // Bound to 127.0.0.1 itself: another loopback address finds nothing listening there.
    await expect(fetch(`http://127.0.0.2:${listener.port}/metrics`)).rejects.toThrow();
    expect(sum(await scrape(server.metricsUrl), 'process_resident_memory_bytes')).toBeGreaterThan(
      0,
    );
  });

  test('the metrics listener serves /metrics only', async () => {
    const base = new URL(server.metricsUrl ?? '').origin;
    for (const spelling of SPELLINGS) {
      const res = await fetch(`${base}${spelling}`);
      expect({ spelling, status: res.status }).toEqual({ spelling, status: 200 });
    }
    for (const path of ['/', '/files/', '/healthz', '/metrics/x', '/readyz']) {
      const res = await fetch(`${base}${path}`);
      expect({ path, status: res.status }).toEqual({ path, status: 404 });
    }
    // A name of someone else's pointed at 127.0.0.1 (DNS rebinding from a browser here).
    for (const host of ['evil.example', `evil.example:${new URL(base).port}`, '10.0.0.5']) {
      const rebound = await curl(`${base}/metrics`, ['-H', `Host: ${host}`]);
      expect({ host, status: rebound.status }).toEqual({ host, status: 421 });
      expect(rebound.body).not.toContain('tus_');
    }
    const post = await fetch(`${base}/metrics`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  test('METRICS=off: no /metrics anywhere', async () => {
    expect((await fetch(`${off.server.url}/metrics`)).status).toBe(404);
    expect(off.server.metricsUrl).toBeUndefined();
  });
});

describe.each(STORAGE_KINDS)('METRICS_TOKEN on the %s configuration', (kind) => {
  const token = 'metrics-token-0123456789abcdef-0123456789';
  // No METRICS_PORT: with a token the public port serves the metrics, and nothing else does.
  const withToken = serverOnStorage(kind, {
    AUTH_JWT_SECRET: JWT_SECRET,
    METRICS_TOKEN: token,
    METRICS_PORT: '',
  });
  const both = serverOnStorage(kind, { METRICS_TOKEN: token });

  test('the public port serves /metrics to the token holder only', async () => {
    const { server } = withToken;
    expect(server.metricsUrl).toBeUndefined();
    const alice = bearer(await tokenFor('alice'));
    const refusals = [{}, alice, { Authorization: `Bearer ${token}x` }, { Authorization: token }];
    for (const spelling of SPELLINGS) {
      for (const headers of refusals) {
        const res = await fetch(`${server.url}${spelling}`, { headers });
        expect({ spelling, status: res.status }).toEqual({ spelling, status: 401 });
        expect(res.headers.get('www-authenticate')).toBe('Bearer realm="metrics"');
        expect(await res.text()).not.toContain('tus_');
      }
      const samples = await scrape(`${server.url}${spelling}`, {
        Authorization: `Bearer ${token}`,
      });
      expect(samples.has('tus_uploads_created_total')).toBe(true);
    }
    // The secret stays out of the logs.
    expect(server.output()).not.toContain(token);
  });

  test('with METRICS_PORT too, the token is needed on the metrics listener as well', async () => {
    const { server } = both;
    expect((await fetch(server.metricsUrl ?? '')).status).toBe(401);
    const samples = await scrape(server.metricsUrl, { Authorization: `Bearer ${token}` });
    expect(samples.has('tus_uploads_created_total')).toBe(true);
    expect((await fetch(`${server.url}/metrics`)).status).toBe(401);
  });
});
