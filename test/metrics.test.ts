import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
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

/** The samples of a Prometheus text exposition: `name{labels}` → value. */
async function scrape(base: string): Promise<Map<string, number>> {
  const res = await fetch(`${base}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const samples = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (match?.[1] && match[2]) samples.set(match[1], Number(match[2]));
  }
  return samples;
}

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
    const before = await scrape(server.url);
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

    const after = await scrape(server.url);
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

  test('METRICS=off: no /metrics', async () => {
    expect((await fetch(`${off.server.url}/metrics`)).status).toBe(404);
  });
});
