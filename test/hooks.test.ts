import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { type HookReceiver, startHookReceiver } from './harness/hookReceiver.ts';
import { ROOT, type ServerProcess, startServer } from './harness/serverProcess.ts';
import { freePort, waitFor } from './harness/services.ts';
import { openPatch } from './harness/slowPatch.ts';
import {
  createTestStorage,
  MIB,
  randomContent,
  STORAGE_KINDS,
  sha256,
  type TestStorage,
} from './harness/stack.ts';
import { bearer, JWT_SECRET, tokenFor } from './harness/tokens.ts';
import {
  createUpload,
  downloadedSha256,
  encodeMetadata,
  head,
  idOf,
  patch,
  TUS,
  tusClientUpload,
} from './harness/tus.ts';

const ALL_EVENTS =
  'pre-create,post-create,post-receive,pre-finish,post-finish,pre-terminate,post-terminate';

describe.each(STORAGE_KINDS)('tusd-compatible HTTP hooks on the %s configuration', (kind) => {
  let storage: TestStorage;
  let receiver: HookReceiver;
  let server: ServerProcess;
  let alice: Record<string, string>;
  let bob: Record<string, string>;
  beforeAll(async () => {
    storage = createTestStorage(kind);
    receiver = await startHookReceiver();
    server = await startServer({
      ...storage.env,
      AUTH_JWT_SECRET: JWT_SECRET,
      HOOKS_HTTP_URL: receiver.url,
      HOOKS_ENABLED_EVENTS: ALL_EVENTS,
      HOOKS_HTTP_RETRY: '2',
      HOOKS_HTTP_BACKOFF_SECONDS: '0.3',
      HOOKS_HTTP_FORWARD_HEADERS: 'X-Request-Id',
    });
    alice = bearer(await tokenFor('alice'));
    bob = bearer(await tokenFor('bob'));
  });
  afterAll(async () => {
    await server?.stop();
    await receiver?.close();
    await storage?.cleanup();
  });

  // Each test scripts the answers it needs; the next starts from plain `{}` answers.
  afterEach(() => receiver.reset());

  const waitForHook = (type: string, id: string, count = 1) =>
    waitFor(
      async () => receiver.of(type, id).length >= count,
      `${count} ${type} hook(s) for ${id}`,
      15_000,
    );

  test("an upload's events reach the receiver in tusd's format, with the owner and forwarded headers", async () => {
    const data = randomContent(3 * MIB + 1);
    const url = await tusClientUpload(server.url, data, {
      chunkSize: MIB,
      headers: { ...alice, 'X-Request-Id': 'req-42' },
      metadata: { filename: 'report.pdf', filetype: 'application/pdf' },
    });
    const id = idOf(url);
    await waitForHook('post-finish', id);

    const created = receiver
      .of('pre-create')
      .find((hook) => hook.event.Upload.MetaData.filename === 'report.pdf');
    expect(created?.event.Upload).toEqual({
      ID: '',
      Size: data.length,
      SizeIsDeferred: false,
      Offset: 0,
      MetaData: { filename: 'report.pdf', filetype: 'application/pdf', 'tus-owner': 'alice' },
      IsPartial: false,
      IsFinal: false,
      PartialUploads: null,
      Storage: null,
    });
    expect(created?.event.HTTPRequest).toMatchObject({ Method: 'POST', URI: '/files/' });
    expect(created?.event.HTTPRequest.Header['Upload-Length']).toEqual([String(data.length)]);
    expect(created?.event.HTTPRequest.RemoteAddr).toMatch(
      /^(127\.0\.0\.1|\[::1\]|\[::ffff:127\.0\.0\.1\]):\d+$/,
    );
    expect(created?.headers['x-request-id']).toBe('req-42');

    expect(receiver.of('post-create', id)).toHaveLength(1);
    const finished = receiver.of('post-finish', id)[0];
    expect(finished?.event.Upload).toMatchObject({
      ID: id,
      Size: data.length,
      Offset: data.length,
    });
    expect(finished?.event.Upload.MetaData['tus-owner']).toBe('alice');
    expect(finished?.event.Upload.Storage).toEqual(
      storage.backend === 's3'
        ? { Type: 's3store', Bucket: storage.env.S3_BUCKET, Key: id }
        : { Type: 'filestore', Path: path.join(storage.env.DATA_DIR ?? '', id) },
    );
    expect(receiver.of('pre-finish', id)).toHaveLength(1);
    expect(receiver.of('post-receive', id).length).toBeGreaterThanOrEqual(1);
    for (const hook of receiver.of('post-receive', id)) {
      expect(hook.event.HTTPRequest.Method).toBe('PATCH');
    }
    // The order a receiver sees: created before anything is received, finished last.
    const order = receiver.received
      .filter((hook) => hook.event.Upload.ID === id || hook === created)
      .map((hook) => hook.type);
    expect(order[0]).toBe('pre-create');
    expect(order.indexOf('post-create')).toBeLessThan(order.indexOf('pre-finish'));
    expect(order.indexOf('pre-finish')).toBeLessThan(order.indexOf('post-finish'));
  });

  test('a pre-create hook rejects with its own status, body and header; nothing is created', async () => {
    receiver.answer('pre-create', (hook) =>
      hook.event.Upload.MetaData.filename === 'forbidden.exe'
        ? {
            body: {
              RejectUpload: true,
              HTTPResponse: {
                StatusCode: 403,
                Body: 'executables are not accepted',
                Header: { 'X-Why': 'policy' },
              },
            },
          }
        : {},
    );
    const before = await storage.inventory();
    const res = await fetch(`${server.url}/files/`, {
      method: 'POST',
      headers: {
        ...TUS,
        ...alice,
        'Upload-Length': '10',
        'Upload-Metadata': encodeMetadata({ filename: 'forbidden.exe' }),
      },
    });
    expect(res.status).toBe(403);
    expect(await res.text()).toBe('executables are not accepted');
    expect(res.headers.get('x-why')).toBe('policy');
    expect(res.headers.get('location')).toBeNull();
    expect(await storage.inventory()).toEqual(before);
  });

  test('ChangeFileInfo gives the upload its id and metadata; the owner stays', async () => {
    const chosen = `renamed-${Date.now()}`;
    receiver.answer('pre-create', {
      body: {
        ChangeFileInfo: {
          ID: chosen,
          MetaData: { filename: 'renamed.txt', 'tus-owner': 'mallory' },
        },
      },
    });
    const data = randomContent(5000);
    const url = await tusClientUpload(server.url, data, {
      headers: alice,
      metadata: { filename: 'original.txt' },
    });
    expect(idOf(url)).toBe(chosen);
    expect(await downloadedSha256(url, alice)).toBe(sha256(data));
    const state = await head(url, alice);
    expect(state.headers.get('upload-metadata')).toBe(encodeMetadata({ filename: 'renamed.txt' }));
    // The hook could not hand the upload to someone else.
    expect((await fetch(url, { headers: bob })).status).toBe(404);
    await waitForHook('post-finish', chosen);
    expect(receiver.of('post-finish', chosen)[0]?.event.Upload.MetaData['tus-owner']).toBe('alice');
  });

  test('a pre-terminate hook that rejects keeps the upload; post-terminate follows a termination', async () => {
    const data = randomContent(100);
    const url = await tusClientUpload(server.url, data, { headers: alice });
    const id = idOf(url);
    receiver.answer('pre-terminate', {
      body: { RejectTermination: true, HTTPResponse: { Body: 'kept for audit' } },
    });
    const refused = await fetch(url, { method: 'DELETE', headers: { ...TUS, ...alice } });
    expect(refused.status).toBe(400);
    expect(await refused.text()).toBe('kept for audit');
    expect(await downloadedSha256(url, alice)).toBe(sha256(data));
    receiver.reset();
    const deleted = await fetch(url, { method: 'DELETE', headers: { ...TUS, ...alice } });
    expect(deleted.status).toBe(204);
    await waitForHook('post-terminate', id);
    expect(receiver.of('post-terminate', id)[0]?.event.Upload).toMatchObject({ ID: id, Size: 100 });
    expect((await fetch(url, { headers: alice })).status).toBe(404);
  });

  test('StopUpload in a post-receive answer stops the PATCH and terminates the upload', async () => {
    const url = await createUpload(server.url, 20 * MIB, alice);
    const id = idOf(url);
    receiver.answer('post-receive', (hook) =>
      hook.event.Upload.ID === id
        ? { body: { StopUpload: true, HTTPResponse: { Body: 'quota exceeded' } } }
        : {},
    );
    const { req, read, response } = openPatch(url, 0, randomContent(2 * MIB), 20 * MIB, alice);
    await read();
    const answer = await new Promise<{ status: number; body: string }>((resolve) => {
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
        );
      });
    });
    await response;
    expect(answer).toEqual({ status: 400, body: 'quota exceeded' });
    expect((await head(url, alice)).status).toBe(404);
    await waitForHook('post-terminate', id);
  });

  test('post-receive comes at most once a second per upload, with growing offsets', async () => {
    const data = randomContent(3 * MIB);
    const url = await createUpload(server.url, data.length, alice);
    const id = idOf(url);
    const { req, response } = openPatch(url, 0, data.subarray(0, 512 * 1024), data.length, alice);
    for (let sent = 512 * 1024; sent < data.length; sent += 512 * 1024) {
      await new Promise((resolve) => setTimeout(resolve, 450));
      req.write(data.subarray(sent, sent + 512 * 1024));
    }
    req.end();
    expect(await response).toBe(204);
    await waitForHook('post-finish', id);
    const progress = receiver.of('post-receive', id);
    expect(progress.length).toBeGreaterThanOrEqual(2);
    for (let i = 1; i < progress.length; i += 1) {
      const [before, after] = [progress[i - 1], progress[i]];
      expect((after?.at ?? 0) - (before?.at ?? 0)).toBeGreaterThanOrEqual(900);
      expect(after?.event.Upload.Offset).toBeGreaterThan(before?.event.Upload.Offset ?? 0);
    }
  });

  test("a post-finish answered 500 is delivered again, and never delays the client's answer", async () => {
    const seen = new Map<string, number>();
    receiver.answer('post-finish', (hook) => {
      const count = (seen.get(hook.event.Upload.ID) ?? 0) + 1;
      seen.set(hook.event.Upload.ID, count);
      return count === 1 ? { status: 500, delayMs: 2000 } : {};
    });
    const url = await tusClientUpload(server.url, randomContent(1000), { headers: alice });
    const answeredAt = Date.now();
    const id = idOf(url);
    await waitForHook('post-finish', id, 2);
    const [first, second] = receiver.of('post-finish', id);
    // The client had its answer while the receiver still held the first delivery.
    expect(answeredAt).toBeLessThan((first?.at ?? 0) + 2000);
    expect((second?.at ?? 0) - (first?.at ?? 0)).toBeGreaterThanOrEqual(2000);
    expect(second?.event.Upload.ID).toBe(id);
  });

  test('a parallel upload: partials and the final are told as such', async () => {
    const data = randomContent(2 * MIB);
    const url = await tusClientUpload(server.url, data, {
      headers: alice,
      parallelUploads: 2,
      metadata: { filename: 'joined.bin' },
    });
    const id = idOf(url);
    await waitForHook('post-finish', id);
    const final = receiver.of('post-finish', id)[0]?.event.Upload;
    expect(final?.IsFinal).toBe(true);
    expect(final?.PartialUploads).toHaveLength(2);
    for (const partial of final?.PartialUploads ?? []) {
      expect(receiver.of('post-create', partial)[0]?.event.Upload.IsPartial).toBe(true);
    }
    const preCreate = receiver.of('pre-create').filter((hook) => hook.event.Upload.IsFinal);
    expect(preCreate.at(-1)?.event.Upload).toMatchObject({
      ID: '',
      Size: data.length,
      IsFinal: true,
    });
    expect(await downloadedSha256(url, alice)).toBe(sha256(data));
  });
});

describe('hooks across two instances (s3+redis)', () => {
  let storage: TestStorage;
  let receiver: HookReceiver;
  const instances: ServerProcess[] = [];
  beforeAll(async () => {
    storage = createTestStorage('s3+redis');
    receiver = await startHookReceiver();
    for (let i = 0; i < 2; i += 1) {
      instances.push(
        await startServer({
          ...storage.env,
          HOOKS_HTTP_URL: receiver.url,
          HOOKS_ENABLED_EVENTS: ALL_EVENTS,
        }),
      );
    }
  });
  afterAll(async () => {
    await Promise.all(instances.map((server) => server.stop()));
    await receiver?.close();
    await storage?.cleanup();
  });

  test('an upload whose chunks go to both instances is created and finished once each', async () => {
    const data = randomContent(12 * MIB);
    const [a, b] = instances as [ServerProcess, ServerProcess];
    const url = await createUpload(a.url, data.length);
    const id = idOf(url);
    for (let offset = 0, turn = 0; offset < data.length; offset += 4 * MIB, turn += 1) {
      const target = `${(turn % 2 === 0 ? b : a).url}/files/${id}`;
      expect((await patch(target, offset, data.subarray(offset, offset + 4 * MIB))).status).toBe(
        204,
      );
    }
    await waitFor(async () => receiver.of('post-finish', id).length >= 1, 'post-finish', 15_000);
    // Whatever else arrives now would be a duplicate.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(receiver.of('post-create', id)).toHaveLength(1);
    expect(receiver.of('pre-finish', id)).toHaveLength(1);
    expect(receiver.of('post-finish', id)).toHaveLength(1);
    expect(await downloadedSha256(`${a.url}/files/${id}`)).toBe(sha256(data));
  });
});

describe('a hook receiver that cannot be reached', () => {
  let storage: TestStorage;
  let server: ServerProcess;
  let finishing: ServerProcess;
  beforeAll(async () => {
    storage = createTestStorage('s3+redis');
    const away = `http://127.0.0.1:${await freePort()}/hooks`;
    const common = {
      ...storage.env,
      HOOKS_HTTP_URL: away,
      HOOKS_HTTP_RETRY: '1',
      HOOKS_HTTP_BACKOFF_SECONDS: '0.1',
    };
    server = await startServer({ ...common, HOOKS_ENABLED_EVENTS: 'pre-create' });
    finishing = await startServer({
      ...common,
      HOOKS_ENABLED_EVENTS: 'pre-finish,pre-terminate,post-finish',
    });
  });
  afterAll(async () => {
    await server?.stop();
    await finishing?.stop();
    await storage?.cleanup();
  });

  test('pre-create: 503 with Retry-After, and nothing is created', async () => {
    const before = await storage.inventory();
    const res = await fetch(`${server.url}/files/`, {
      method: 'POST',
      headers: { ...TUS, 'Upload-Length': '5' },
    });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    expect(await res.json()).toEqual({ error: 'hook receiver unavailable, retry later' });
    expect(await storage.inventory()).toEqual(before);
  });

  test('pre-terminate: 503 and the upload stays; pre-finish: 503; post-finish failures do not matter', async () => {
    const url = await createUpload(finishing.url, 10);
    const res = await patch(url, 0, randomContent(10));
    expect(res.status).toBe(503);
    const deleted = await fetch(url, { method: 'DELETE', headers: TUS });
    expect(deleted.status).toBe(503);
    expect((await head(url)).status).toBe(200);
  });
});

describe("tusd's own example receiver (examples/hooks/http/server.py)", () => {
  let storage: TestStorage;
  let python: ChildProcess;
  let server: ServerProcess;
  let output = '';
  beforeAll(async () => {
    storage = createTestStorage('s3');
    const port = await freePort();
    python = spawn('python3', [path.join(ROOT, 'test/harness/tusdReceiver.py'), String(port)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    python.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    python.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    await waitFor(
      async () => (await fetch(`http://127.0.0.1:${port}/`).catch(() => undefined))?.status === 200,
      "tusd's example receiver",
      15_000,
    );
    // tusd's default events.
    server = await startServer({ ...storage.env, HOOKS_HTTP_URL: `http://127.0.0.1:${port}/` });
  });
  afterAll(async () => {
    await server?.stop();
    python?.kill();
    await storage?.cleanup();
  });

  test('no filename: rejected with its 400 and its body', async () => {
    const res = await fetch(`${server.url}/files/`, {
      method: 'POST',
      headers: { ...TUS, 'Upload-Length': '5' },
    });
    expect(res.status).toBe(400);
    expect(await res.text()).toBe('no filename provided');
    // The example answers `Headers`, which tusd's HTTPResponse (field `Header`) does not read:
    // tusd drops that header too.
    expect(res.headers.get('x-some-header')).toBeNull();
  });

  test('with a filename: its id (prefix-<uuid>) and metadata, and the upload works', async () => {
    const data = randomContent(2 * MIB + 3);
    const url = await tusClientUpload(server.url, data, {
      chunkSize: MIB,
      metadata: { filename: 'a.txt', filetype: 'text/plain' },
    });
    expect(idOf(url)).toMatch(/^prefix-[0-9a-f-]{36}$/);
    expect(await downloadedSha256(url)).toBe(sha256(data));
    const metadata = (await head(url)).headers.get('upload-metadata') ?? '';
    expect(metadata).toContain(`filename ${Buffer.from('a.txt').toString('base64')}`);
    expect(metadata).toContain('creation_time ');
    expect(metadata).not.toContain('filetype');
    await waitFor(
      async () => output.includes(`Upload ${idOf(url)} (${data.length} bytes) is finished`),
      'post-finish at the receiver',
      15_000,
    );
  });
});
