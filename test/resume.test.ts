import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, test } from '@jest/globals';
import { Upload } from 'tus-js-client';
import { peakResidentBytes } from './harness/processProbe.ts';
import { loggedRequest, type ServerProcess, startServer } from './harness/serverProcess.ts';
import { waitFor } from './harness/services.ts';
import { openPatch } from './harness/slowPatch.ts';
import {
  createTestStorage,
  MIB,
  randomContent,
  S3_COMPAT_KINDS,
  STORAGE_KINDS,
  sha256,
  type TestStorage,
} from './harness/stack.ts';
import { createUpload, idOf, offsetOf, tusClientUpload, uploadUrlOn } from './harness/tus.ts';

// Started by hand, not with serverOnStorage: the tests kill and restart servers.
describe.each([...STORAGE_KINDS, ...S3_COMPAT_KINDS])('resuming on the %s storage', (kind) => {
  let storage: TestStorage;
  const servers: ServerProcess[] = [];
  const start = async () => {
    const server = await startServer(storage.env);
    servers.push(server);
    return server;
  };

  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.stop('SIGKILL')));
    await storage?.cleanup();
  });

  test('a client that aborts mid-chunk resumes from the URL at the persisted offset', async () => {
    storage = createTestStorage(kind);
    const server = await start();
    const data = randomContent(24 * MIB);
    // A source that trickles 1 MiB every 50 ms, so the abort lands inside the one big chunk
    // (the pauses are the slow client under test).
    const trickle = Readable.from(
      (async function* () {
        for (let at = 0; at < data.length; at += MIB) {
          await sleep(50);
          yield data.subarray(at, at + MIB);
        }
      })(),
    );
    const url = await new Promise<string>((resolve, reject) => {
      const upload: Upload = new Upload(trickle, {
        endpoint: `${server.url}/files/`,
        uploadSize: data.length,
        chunkSize: data.length,
        retryDelays: [],
        onError: reject,
        onProgress: (sent) => {
          if (sent >= 8 * MIB && upload.url) {
            void upload.abort().then(() => resolve(upload.url ?? ''));
          }
        },
      });
      upload.start();
    });
    // The server has seen the client go away (it logs the PATCH when the connection closes);
    // HEAD then waits for the lock until that PATCH has persisted what it received.
    await server.waitForLog(
      (line) => loggedRequest(line)?.method === 'PATCH' && line.uploadId === idOf(url),
      'the aborted PATCH',
    );
    const persisted = await offsetOf(url);
    expect(persisted).toBeGreaterThan(0);
    expect(persisted).toBeLessThan(data.length);

    let resumedAt = -1;
    await tusClientUpload(server.url, data, {
      uploadUrl: url,
      onProgress: (sent) => {
        if (resumedAt < 0) resumedAt = sent;
      },
    });
    expect(resumedAt).toBeGreaterThanOrEqual(persisted);
    expect(await offsetOf(url)).toBe(data.length);
    expect(await storage.storedSha256(idOf(url))).toBe(sha256(data));
  });

  test('kill -9 during a PATCH: after restart HEAD gives the persisted offset and the upload finishes intact', async () => {
    storage = createTestStorage(kind);
    const first = await start();
    const data = randomContent(24 * MIB);
    const url = await createUpload(first.url, data.length);
    const sent = 20 * MIB;
    const patch = openPatch(url, 0, data.subarray(0, sent));
    // Killed once some of the bytes are in storage (on S3: a part, once one has filled).
    await waitFor(async () => (await storage.storedBytes(idOf(url))) > 0, 'bytes in storage');
    await first.stop('SIGKILL');
    patch.req.destroy();

    const second = await start();
    const persisted = await offsetOf(uploadUrlOn(second, url));
    expect(persisted).toBeGreaterThan(0);
    expect(persisted).toBeLessThanOrEqual(sent);

    await tusClientUpload(second.url, data, {
      uploadUrl: uploadUrlOn(second, url),
      chunkSize: 4 * MIB,
    });
    expect(await offsetOf(uploadUrlOn(second, url))).toBe(data.length);
    expect(await storage.storedSha256(idOf(url))).toBe(sha256(data));
  });

  // A body with a declared length streams to S3 part by part as it arrives; a request cut short
  // still keeps every byte it delivered (the part in flight is sent again from its spool).
  test('a PATCH cut short of its Content-Length keeps every byte it sent; resuming gives equal bytes', async () => {
    storage = createTestStorage(kind);
    const server = await start();
    const data = randomContent(20 * MIB);
    const url = await createUpload(server.url, data.length);
    const sent = 13 * MIB;
    const patch = openPatch(url, 0, data.subarray(0, sent), data.length);
    await patch.read();
    patch.req.destroy();
    await server.waitForLog(
      (line) => loggedRequest(line)?.method === 'PATCH' && line.uploadId === idOf(url),
      'the cut PATCH',
    );
    // 8 MiB went as a whole part, 5 MiB were in flight: both are kept.
    expect(await offsetOf(url)).toBe(sent);
    await tusClientUpload(server.url, data, { uploadUrl: url });
    expect(await storage.storedSha256(idOf(url))).toBe(sha256(data));
  });

  // The declared length is the client's word: claiming petabytes on an upload of deferred length
  // (no maximum configured) must cost nothing before the bytes come, and keep what came.
  test('a PATCH declaring petabytes on a deferred-length upload keeps what it sent; the server lives', async () => {
    storage = createTestStorage(kind);
    const server = await start();
    const url = await createUpload(server.url, 'deferred');
    const data = randomContent(6 * MIB);
    const patch = openPatch(url, 0, data, 2 ** 53 - 1);
    await patch.read();
    patch.req.destroy();
    await server.waitForLog(
      (line) => loggedRequest(line)?.method === 'PATCH' && line.uploadId === idOf(url),
      'the cut PATCH',
    );
    expect(await offsetOf(url)).toBe(data.length);
    expect(server.child.exitCode).toBeNull();
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    // Planned all at once, the 16 million pieces of such a claim took over a GiB.
    expect(peakResidentBytes(server.pid)).toBeLessThan(300 * MIB);
  });

  test('SIGTERM during a PATCH persists every received byte and exits 0 within 10 s', async () => {
    storage = createTestStorage(kind);
    const first = await start();
    const data = randomContent(16 * MIB + 1234);
    const url = await createUpload(first.url, data.length);
    const sent = 11 * MIB + 77;
    const patch = openPatch(url, 0, data.subarray(0, sent));
    await patch.read();

    const began = Date.now();
    const code = await first.stop('SIGTERM');
    const tookMs = Date.now() - began;
    expect(code).toBe(0);
    expect(tookMs).toBeLessThan(10_000);
    expect(await patch.response).toBe(204);

    const second = await start();
    expect(await offsetOf(uploadUrlOn(second, url))).toBe(sent);
    await tusClientUpload(second.url, data, { uploadUrl: uploadUrlOn(second, url) });
    expect(await storage.storedSha256(idOf(url))).toBe(sha256(data));
  });
});
