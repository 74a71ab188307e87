import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { launchChromium } from './harness/chromium.ts';
import { curl } from './harness/curl.ts';
import { finishedUpload } from './harness/downloads.ts';
import { type NginxProcess, startNginx } from './harness/nginx.ts';
import { loggedRequest, type ServerProcess, startServer } from './harness/serverProcess.ts';
import { waitFor } from './harness/services.ts';
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
  downloadedSha256,
  idOf,
  offsetOf,
  patch,
  tusClientUpload,
  uploadUrlOn,
} from './harness/tus.ts';
import { UploadPageDriver } from './harness/uploadPage.ts';

const run = promisify(execFile);

/** What dedupe/Dedupe.ts logs when an upload finishes on an instance without its hash state. */
const READ_BACK = 'dedupe: no hash state, reading the upload back';
const IDLE_SECONDS = 2;

/** Two instances of the server on the same storage and Redis, as docker compose scales them. */
function startInstances(env: NodeJS.ProcessEnv): Promise<ServerProcess[]> {
  return Promise.all([startServer(env), startServer(env)]);
}

/** The instances that logged a request for upload `id` itself (HEAD, PATCH, GET, DELETE). */
function instancesServing(instances: ServerProcess[], id: string): number[] {
  return instances.flatMap((instance, n) =>
    instance.logs().some((line) => loggedRequest(line)?.path === `/files/${id}`) ? [n] : [],
  );
}

/**
 * Resolves once an instance has logged the GET of upload `id`, the last request a test sends for
 * it: the lines of every earlier request have then reached us too (logs arrive through pipes).
 */
function downloadLogged(instances: ServerProcess[], id: string): Promise<void> {
  const logged = () =>
    instances.some((instance) =>
      instance.logs().some((line) => {
        const request = loggedRequest(line);
        return request?.method === 'GET' && request.path === `/files/${id}`;
      }),
    );
  return waitFor(async () => logged(), `an instance logging the GET of ${id}`, 5000);
}

/** Log lines of any instance about upload `id` with message `msg`. */
function logsAbout(instances: ServerProcess[], id: string, msg: string) {
  return instances.flatMap((instance) =>
    instance.logs().filter((line) => line.uploadId === id && String(line.msg).startsWith(msg)),
  );
}

/** A creation POST with curl (the real client, trusting nginx's self-signed certificate). */
function curlCreate(nginx: NginxProcess) {
  return curl(`${nginx.url}/files/`, [
    ...(nginx.certificateFile ? ['--cacert', nginx.certificateFile] : []),
    '-X',
    'POST',
    '-H',
    'Tus-Resumable: 1.0.0',
    '-H',
    'Upload-Length: 10',
  ]);
}

describe('deploy/nginx.conf: nginx in front of two instances on one MinIO and one Redis', () => {
  let storage: TestStorage;
  let workDir: string;

  beforeAll(() => {
    storage = createTestStorage('s3+redis');
    workDir = mkdtempSync(path.join(tmpdir(), 'tus-deploy-'));
  });
  afterAll(async () => {
    await storage?.cleanup();
    rmSync(workDir, { recursive: true, force: true });
  });

  describe('as deployed (TRUST_PROXY and PUBLIC_URL unset)', () => {
    let instances: ServerProcess[] = [];
    let nginx: NginxProcess;

    beforeAll(async () => {
      instances = await startInstances(storage.env);
      nginx = await startNginx({ upstreams: instances.map((instance) => instance.url) });
    });
    afterAll(async () => {
      await nginx?.stop();
      await Promise.all(instances.map((instance) => instance.stop()));
    });

    test('tus-js-client sends four files at once in chunks through nginx; each downloads through nginx unchanged', async () => {
      const files = [
        ...[1, 2, 3].map(() => ({ data: randomContent(24 * MIB), chunkSize: 5 * MIB })),
        // An odd chunk size: no PATCH ends on an S3 part boundary.
        { data: randomContent(16 * MIB + 5), chunkSize: 3 * MIB + 1 },
      ];
      const urls = await Promise.all(
        files.map(({ data, chunkSize }) => tusClientUpload(nginx.url, data, { chunkSize })),
      );
      for (const [n, url] of urls.entries()) {
        const { data, chunkSize } = files[n] as (typeof files)[number];
        const id = idOf(url);
        // Location names nginx (the Host it passes on), so the client stays behind it.
        expect(url).toBe(`${nginx.url}/files/${id}`);
        expect(await downloadedSha256(url)).toBe(sha256(data));
        expect(await storage.storedSha256(id)).toBe(sha256(data));

        // Every PATCH (and the GET) went to one instance, which kept the running hash.
        await downloadLogged(instances, id);
        const serving = instancesServing(instances, id);
        expect(serving).toHaveLength(1);
        const patches = (instances[serving[0] as number] as ServerProcess).logs().filter((line) => {
          const request = loggedRequest(line);
          return request?.method === 'PATCH' && request.path === `/files/${id}`;
        });
        expect(patches).toHaveLength(Math.ceil(data.length / chunkSize));
        expect(logsAbout(instances, id, READ_BACK)).toEqual([]);
      }
    });

    test('consistent hashing: the HEAD, PATCHes and GET of each of 16 uploads reach one instance, and both instances get uploads', async () => {
      const ids = await Promise.all(
        Array.from({ length: 16 }, async () => {
          const data = randomContent(96 * 1024 + 3);
          const url = await createUpload(nginx.url, data.length);
          expect((await patch(url, 0, data.subarray(0, 40_000))).status).toBe(204);
          expect(await offsetOf(url)).toBe(40_000);
          expect((await patch(url, 40_000, data.subarray(40_000))).status).toBe(204);
          expect(await downloadedSha256(url)).toBe(sha256(data));
          return idOf(url);
        }),
      );
      for (const id of ids) await downloadLogged(instances, id);
      const serving = ids.map((id) => instancesServing(instances, id));
      for (const one of serving) expect(one).toHaveLength(1);
      // By the hash of random ids: all 16 on one instance would happen once in 32,768 runs.
      expect(new Set(serving.flat()).size).toBe(2);
      for (const id of ids) expect(logsAbout(instances, id, READ_BACK)).toEqual([]);
    });

    test('what the checks above look for: an upload whose PATCHes go straight to both instances is read back when it finishes', async () => {
      const [a, b] = instances as [ServerProcess, ServerProcess];
      const data = randomContent(200_000);
      const url = await createUpload(a.url, data.length);
      expect((await patch(uploadUrlOn(a, url), 0, data.subarray(0, 100_000))).status).toBe(204);
      expect((await patch(uploadUrlOn(b, url), 100_000, data.subarray(100_000))).status).toBe(204);
      await b.waitForLog(
        (line) => line.uploadId === idOf(url) && line.msg === READ_BACK,
        'the read-back',
        5000,
      );
      expect(logsAbout(instances, idOf(url), READ_BACK)).toHaveLength(1);
      expect(await storage.storedSha256(idOf(url))).toBe(sha256(data));
    });

    test('a Range GET through nginx answers 206 with those bytes, and `wget -c` finishes a partial file', async () => {
      const size = 4 * MIB + 17;
      const upload = await finishedUpload(nginx.url, size, {
        filename: 'movie.mp4',
        filetype: 'video/mp4',
      });
      const ranged = await curl(upload.url, ['-H', 'Range: bytes=1000-65535']);
      expect(ranged.status).toBe(206);
      expect(ranged.headers['content-range']).toBe(`bytes 1000-65535/${size}`);
      expect(ranged.body.equals(upload.data.subarray(1000, 65536))).toBe(true);

      // A download that stopped after 1 MiB + 5 bytes, resumed by wget.
      const file = path.join(workDir, 'movie.mp4');
      const partial = MIB + 5;
      writeFileSync(file, upload.data.subarray(0, partial));
      const resumed = await run('wget', ['-c', '-O', file, upload.url]);
      expect(resumed.stderr).toMatch(/206 Partial Content/);
      expect(resumed.stderr).toContain(`Length: ${size} (4.0M), ${size - partial} `);
      expect(sha256(readFileSync(file))).toBe(sha256(upload.data));
    });

    test('the upload page and its assets through nginx: a file picked in Chromium is stored with its sha256', async () => {
      const data = randomContent(12 * MIB);
      const filePath = path.join(workDir, 'page.bin');
      writeFileSync(filePath, data);
      const browser = await launchChromium();
      try {
        const page = await browser.newPage();
        const requested: string[] = [];
        page.on('request', (request) => requested.push(request.url()));
        const uploadPage = new UploadPageDriver(page, `${nginx.url}/`);
        await uploadPage.open();
        await uploadPage.addFile(filePath);
        await uploadPage.waitUntilComplete();
        const entry = await uploadPage.readFinished();

        expect(entry).toMatchObject({ name: 'page.bin', sha256: sha256(data) });
        expect(await storage.storedSha256(entry.id)).toBe(sha256(data));
        expect(await downloadedSha256(`${nginx.url}${entry.downloadHref}`)).toBe(sha256(data));
        // The page, its scripts and styles, and every upload request came through nginx.
        expect([...new Set(requested.map((url) => new URL(url).origin))]).toEqual([nginx.url]);
        await downloadLogged(instances, entry.id);
        expect(instancesServing(instances, entry.id)).toHaveLength(1);
        expect(logsAbout(instances, entry.id, READ_BACK)).toEqual([]);
      } finally {
        await browser.close();
      }
    });

    test('/metrics answers 404 through nginx, however it is spelled, while each instance serves it on its own listener', async () => {
      // The instances' routes ignore case and a trailing slash; nginx must refuse every spelling
      // even though the instances' public ports have no /metrics either.
      const spellings = ['/metrics', '/metrics/', '/Metrics', '/METRICS/', '/metrics?x=1'];
      for (const spelling of spellings) {
        const proxied = await fetch(`${nginx.url}${spelling}`);
        expect({ spelling, status: proxied.status }).toEqual({ spelling, status: 404 });
        expect(await proxied.text()).not.toContain('tus_');
        for (const instance of instances) {
          const direct = await fetch(`${instance.url}${spelling}`);
          expect({ spelling, status: direct.status }).toEqual({ spelling, status: 404 });
          const own = new URL(spelling, instance.metricsUrl);
          const scraped = await fetch(own);
          expect({ spelling, status: scraped.status }).toEqual({ spelling, status: 200 });
          expect(await scraped.text()).toContain('tus_uploads_created_total');
        }
      }
    });

    test('TLS at nginx, TRUST_PROXY off: Location keeps http (the instance does not believe X-Forwarded-Proto)', async () => {
      const tls = await startNginx({
        upstreams: instances.map((instance) => instance.url),
        tls: true,
      });
      try {
        const created = await curlCreate(tls);
        expect(created.status).toBe(201);
        expect(created.headers.location).toMatch(
          new RegExp(`^http://127\\.0\\.0\\.1:${tls.port}/files/[0-9a-f]{32}$`),
        );
      } finally {
        await tls.stop();
      }
    });
  });

  describe(`with TRUST_PROXY=on and REQUEST_IDLE_TIMEOUT_SECONDS=${IDLE_SECONDS}`, () => {
    let instances: ServerProcess[] = [];
    let nginx: NginxProcess;
    let tls: NginxProcess;

    beforeAll(async () => {
      instances = await startInstances({
        ...storage.env,
        TRUST_PROXY: 'on',
        REQUEST_IDLE_TIMEOUT_SECONDS: String(IDLE_SECONDS),
      });
      const upstreams = instances.map((instance) => instance.url);
      [nginx, tls] = await Promise.all([
        startNginx({ upstreams }),
        startNginx({ upstreams, tls: true }),
      ]);
    });
    afterAll(async () => {
      await Promise.all([nginx?.stop(), tls?.stop()]);
      await Promise.all(instances.map((instance) => instance.stop()));
    });

    test('TLS at nginx: Location is https://127.0.0.1:<nginx port>/files/<id>, and the upload answers there', async () => {
      const created = await curlCreate(tls);
      expect(created.status).toBe(201);
      const location = created.headers.location ?? '';
      expect(location).toMatch(
        new RegExp(`^https://127\\.0\\.0\\.1:${tls.port}/files/[0-9a-f]{32}$`),
      );
      const state = await curl(location, [
        '--cacert',
        tls.certificateFile ?? '',
        '-I',
        '-H',
        'Tus-Resumable: 1.0.0',
      ]);
      expect(state.status).toBe(200);
      expect(state.headers['upload-offset']).toBe('0');
    });

    test('a PATCH body that stops is ended by the server after its idle period, not by nginx; every byte sent is kept', async () => {
      const data = randomContent(12 * MIB + 3);
      const url = await createUpload(nginx.url, data.length);
      const sent = 9 * MIB + 7;
      const stalled = openPatch(url, 0, data.subarray(0, sent), data.length);
      await stalled.sent;
      const stalledAt = Date.now();
      const status = await stalled.response;
      const endedAfter = Date.now() - stalledAt;
      stalled.req.destroy();
      // nginx would wait its client_body_timeout (65 s) before giving up on the client.
      expect(endedAfter).toBeGreaterThanOrEqual(IDLE_SECONDS * 1000 - 500);
      expect(endedAfter).toBeLessThan(IDLE_SECONDS * 1000 + 8000);
      // The instance logged why it closed the connection (its log may reach us after nginx's 502).
      const idleLogs = () => logsAbout(instances, idOf(url), 'request body idle');
      await waitFor(async () => idleLogs().length > 0, 'an instance logging the idle body', 5000);
      expect(idleLogs()).toHaveLength(1);
      // The instance closed the connection without an answer; nginx tells the client so.
      expect(status).toBe(502);
      expect(nginx.errorLog()).toContain('upstream prematurely closed connection');

      expect(await offsetOf(url)).toBe(sent);
      await tusClientUpload(nginx.url, data, { uploadUrl: url });
      expect(await downloadedSha256(url)).toBe(sha256(data));
    });
  });

  describe('with PUBLIC_URL=https://uploads.example.test', () => {
    let instances: ServerProcess[] = [];
    let nginx: NginxProcess;

    beforeAll(async () => {
      instances = await startInstances({
        ...storage.env,
        PUBLIC_URL: 'https://uploads.example.test',
      });
      nginx = await startNginx({ upstreams: instances.map((instance) => instance.url) });
    });
    afterAll(async () => {
      await nginx?.stop();
      await Promise.all(instances.map((instance) => instance.stop()));
    });

    test('Location starts with PUBLIC_URL, whatever Host nginx passes on', async () => {
      const created = await curlCreate(nginx);
      expect(created.status).toBe(201);
      expect(created.headers.location).toMatch(
        /^https:\/\/uploads\.example\.test\/files\/[0-9a-f]{32}$/,
      );
    });
  });
});
