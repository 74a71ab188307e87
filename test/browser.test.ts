import { createReadStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import express from 'express';
import { Redis } from 'ioredis';
import type { Browser, Page } from 'playwright-core';
import { createLogger } from '../server/logger.ts';
import { buildPageBundle } from '../web/pageBundle.ts';
import { LazyPageBundle, uploadPageRoutes } from '../web/routes.ts';
import { launchChromium } from './harness/chromium.ts';
import {
  type CountingProxy,
  type ProxiedRequest,
  startCountingProxy,
} from './harness/countingProxy.ts';
import { type ServerProcess, startServer } from './harness/serverProcess.ts';
import { waitFor } from './harness/services.ts';
import {
  createTestStorage,
  randomContent,
  sha256,
  sha256OfStream,
  type TestStorage,
  testServices,
} from './harness/stack.ts';
import { UploadPageDriver } from './harness/uploadPage.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ARTIFACTS = path.join(ROOT, 'test/artifacts');
const MIB = 1024 * 1024;
/** Redis database of this suite, so its dedupe index starts empty and meets no other suite's. */
const REDIS_DB = 6;

type SourceFile = { path: string; size: number; sha256: string };

const bodyBytes = (requests: ProxiedRequest[]) =>
  requests.reduce((sum, request) => sum + request.bodyBytes, 0);

describe('the upload page in Chromium, on MinIO with the dedupe index in Redis', () => {
  let storage: TestStorage;
  let server: ServerProcess;
  let proxy: CountingProxy;
  let redis: Redis;
  let browser: Browser;
  let page: Page;
  let uploadPage: UploadPageDriver;
  let workDir: string;
  /** Every URL the page asked for: all of them must be the server's own. */
  const requestedUrls: string[] = [];

  function sourceFile(name: string, size: number): SourceFile {
    const data = randomContent(size);
    const filePath = path.join(workDir, name);
    writeFileSync(filePath, data);
    return { path: filePath, size, sha256: sha256(data) };
  }

  /** Log lines the server wrote about one upload. */
  const serverLogsFor = (id: string) => server.logs().filter((line) => line.uploadId === id);

  beforeAll(async () => {
    workDir = mkdtempSync(path.join(tmpdir(), 'tus-browser-'));
    storage = createTestStorage('s3');
    const redisUrl = `${testServices().redisUrl.replace(/\/\d+$/, '')}/${REDIS_DB}`;
    redis = new Redis(redisUrl);
    await redis.flushdb();
    server = await startServer({ ...storage.env, REDIS_URL: redisUrl });
    // The page talks to the server through this proxy, which counts what the server was sent.
    proxy = await startCountingProxy(server.url);
    browser = await launchChromium();
    const context = await browser.newContext({
      acceptDownloads: true,
      viewport: { width: 1100, height: 900 },
      locale: 'en-US',
    });
    page = await context.newPage();
    page.on('request', (request) => requestedUrls.push(request.url()));
    uploadPage = new UploadPageDriver(page, proxy.url);
  });

  afterAll(async () => {
    await browser?.close();
    await proxy?.close();
    await server?.stop();
    redis?.disconnect();
    await storage?.cleanup();
    rmSync(workDir, { recursive: true, force: true });
  });

  let first: { file: SourceFile; id: string };

  test('a 30 MiB file picked in the page is hashed, uploaded in chunks and downloads from its link unchanged', async () => {
    const file = sourceFile('thirty.bin', 30 * MIB);
    await uploadPage.open();
    await uploadPage.recordStatusTexts();
    const started = Date.now();
    await uploadPage.addFile(file.path);
    await uploadPage.waitUntilComplete();
    const elapsedMs = Date.now() - started;
    // Progress was shown for hashing, then for the upload.
    const shown = await uploadPage.statusTextsSeen();
    expect(shown.some((text) => text.includes('Computing SHA-256'))).toBe(true);
    expect(shown.some((text) => /Uploading.*\d+%/.test(text))).toBe(true);

    const entry = await uploadPage.readFinished();
    expect(entry).toMatchObject({ name: 'thirty.bin', size: '30 MiB', deduplicated: false });
    // The browser's sha256 (hash-wasm over the file's stream) is the file's.
    expect(entry.sha256).toBe(file.sha256);
    expect(entry.downloadHref).toBe(`/files/${entry.id}`);
    expect(await storage.storedSha256(entry.id)).toBe(file.sha256);

    // The page chose the chunk size: 30 MiB / 20 is below the 5 MiB floor, so six PATCHes of 5 MiB.
    const patches = proxy.requests.filter(
      (request) => request.method === 'PATCH' && request.path === `/files/${entry.id}`,
    );
    expect(patches.map((request) => request.bodyBytes)).toEqual(Array(6).fill(5 * MIB));

    const [download] = await Promise.all([
      page.waitForEvent('download'),
      uploadPage.newestFinished().locator('.finished-download').click(),
    ]);
    expect(download.suggestedFilename()).toBe('thirty.bin');
    expect(await sha256OfStream(createReadStream(await download.path()))).toBe(file.sha256);

    // Bundled by the server itself: nothing comes from anywhere else (works offline).
    const origins = new Set(requestedUrls.map((url) => new URL(url).origin));
    expect([...origins]).toEqual([proxy.url]);
    first = { file, id: entry.id };
    process.stdout.write(`upload page: 30 MiB hashed and uploaded in ${elapsedMs} ms\n`);
  });

  test('the same file again finishes as a dedupe hit: the server receives none of its bytes', async () => {
    await uploadPage.open();
    const seen = proxy.requests.length;
    await uploadPage.addFile(first.file.path);
    await uploadPage.waitUntilComplete();

    const entry = await uploadPage.readFinished();
    expect(entry).toMatchObject({
      name: 'thirty.bin',
      deduplicated: true,
      sha256: first.file.sha256,
    });
    expect(entry.id).not.toBe(first.id);
    // Server side: the creation was answered as finished, and nothing but headers arrived.
    const sent = proxy.requests.slice(seen);
    expect(
      sent.filter((request) => request.path.startsWith('/files/')).map((r) => r.method),
    ).toEqual(['POST']);
    expect(bodyBytes(sent)).toBe(0);
    const logs = serverLogsFor(entry.id);
    expect(logs.some((line) => line.msg === 'dedupe hit: upload created finished')).toBe(true);
    expect(logs.filter((line) => (line.req as { method?: string })?.method === 'PATCH')).toEqual(
      [],
    );
    // Storage holds one copy, shared by both uploads.
    const copies = (await storage.inventory()).filter((name) => /^[0-9a-f]{32}$/.test(name));
    expect(copies).toEqual([first.id]);

    const downloaded = await fetch(`${server.url}${entry.downloadHref}`);
    expect(downloaded.status).toBe(200);
    expect(sha256(Buffer.from(await downloaded.arrayBuffer()))).toBe(first.file.sha256);
    process.stdout.write(`upload page: dedupe hit, ${bodyBytes(sent)} body bytes sent\n`);
  });

  test('pause and resume, then a reload mid-upload: the same file added again resumes where the server stopped', async () => {
    const file = sourceFile('resume.bin', 20 * MIB);
    const patchesFrom = (index: number) =>
      proxy.requests.slice(index).filter((request) => request.method === 'PATCH');
    const arrived = (index: number) => bodyBytes(patchesFrom(index));
    const seen = proxy.requests.length;

    await uploadPage.open();
    await uploadPage.throttleUpload(4 * MIB);
    await uploadPage.addFile(file.path);
    await waitFor(async () => arrived(seen) >= 3 * MIB, 'the first bytes at the server', 30_000);
    // Uppy's status bar shows the upload going on, with its pause button.
    await page.locator('.uppy-StatusBar.is-uploading').waitFor();

    // Pause: the page stops sending. Resume: it goes on.
    await page.locator('.uppy-StatusBar-actionCircleBtn[title="Pause"]').click();
    await new Promise((resolve) => setTimeout(resolve, 300));
    const whilePaused = arrived(seen);
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(arrived(seen)).toBe(whilePaused);
    await page.locator('.uppy-StatusBar-actionCircleBtn[title="Resume"]').click();

    await waitFor(async () => arrived(seen) >= 10 * MIB, 'half of the file at the server', 30_000);
    await uploadPage.reload();
    const reloaded = proxy.requests.length;
    const beforeReload = arrived(seen);
    // What survives the reload: the URL of the upload the page created, in localStorage.
    expect(
      (await uploadPage.storageKeys()).filter((key) => key.startsWith('upload-page:created:')),
    ).toHaveLength(1);
    await uploadPage.throttleUpload(undefined);
    await uploadPage.addFile(file.path);
    await uploadPage.waitUntilComplete();

    const entry = await uploadPage.readFinished();
    expect(entry).toMatchObject({ name: 'resume.bin', sha256: file.sha256, deduplicated: false });
    expect(await storage.storedSha256(entry.id)).toBe(file.sha256);
    // One upload was created, before the reload; after it the page asked where to go on.
    const sent = proxy.requests.slice(seen).filter((request) => request.path.startsWith('/files/'));
    expect(sent.filter((request) => request.method === 'POST')).toHaveLength(1);
    expect(new Set(sent.map((request) => request.path))).toEqual(
      new Set(['/files/', `/files/${entry.id}`]),
    );
    const resumeHead = proxy.requests
      .slice(reloaded)
      .find((request) => request.method === 'HEAD' && request.path === `/files/${entry.id}`);
    const resumedAt = resumeHead?.uploadOffset ?? 0;
    // The server kept what arrived before the reload (all but what was in flight, if anything).
    expect(resumedAt).toBeGreaterThan(beforeReload - MIB);
    expect(resumedAt).toBeLessThan(file.size);
    // After the reload only the rest was sent; in all, the server received about the file once.
    expect(arrived(reloaded)).toBe(file.size - resumedAt);
    const received = arrived(seen);
    expect(received).toBeGreaterThanOrEqual(file.size);
    expect(received - file.size).toBeLessThan(MIB);
    // Finished: nothing is left stored for resuming it (only the list and the language).
    expect(
      (await uploadPage.storageKeys()).filter(
        (key) => key.startsWith('tus::') || key.startsWith('upload-page:created:'),
      ),
    ).toEqual([]);
    process.stdout.write(
      `upload page: reload at ${beforeReload} bytes, resumed at ${resumedAt}, ` +
        `received ${received} for ${file.size}\n`,
    );
  });

  test('a failing request is retried with back-off, and the upload still completes', async () => {
    const file = sourceFile('flaky.bin', 6 * MIB);
    await uploadPage.open();
    const seen = proxy.requests.length;
    proxy.failNext('PATCH', 2);
    await uploadPage.addFile(file.path);
    await uploadPage.waitUntilComplete();

    const entry = await uploadPage.readFinished();
    expect(entry).toMatchObject({ name: 'flaky.bin', sha256: file.sha256 });
    expect(await storage.storedSha256(entry.id)).toBe(file.sha256);
    const patches = proxy.requests.slice(seen).filter((request) => request.method === 'PATCH');
    expect(patches.map((request) => request.failedByProxy === true)).toEqual([
      true,
      true,
      false,
      false,
    ]);
    // retryDelays: the first retry at once, the second a second later.
    const [firstTry, secondTry, thirdTry] = patches.map((request) => request.at);
    expect(Number(thirdTry) - Number(secondTry)).toBeGreaterThanOrEqual(1000);
    expect(Number(secondTry) - Number(firstTry)).toBeLessThan(1000);
  });

  test('finished images preview inline; the page switches to Chinese (zh-CN); screenshots saved', async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    const picture = path.join(workDir, 'page.png');
    await uploadPage.open();
    await page.screenshot({ path: picture });
    await uploadPage.addFile(picture);
    await uploadPage.waitUntilComplete();
    const preview = uploadPage.newestFinished().locator('.finished-preview img');
    await preview.waitFor();
    await waitFor(
      async () => preview.evaluate((img) => (img as HTMLImageElement).naturalWidth > 0),
      'the image preview',
      10_000,
    );
    // The status bar's bar fills on a short transition.
    await new Promise((resolve) => setTimeout(resolve, 600));
    await page.screenshot({ path: path.join(ARTIFACTS, 'upload-page.png'), fullPage: true });

    await page.locator('#language').selectOption('zh-CN');
    expect(await page.locator('h1').textContent()).toBe('上传文件');
    expect(await page.locator('html').getAttribute('lang')).toBe('zh-CN');
    // Uppy's own words come from its zh_CN language pack.
    await uploadPage.statusBar().filter({ hasText: '上传完毕' }).waitFor();
    await page.screenshot({ path: path.join(ARTIFACTS, 'upload-page.zh-CN.png'), fullPage: true });
    // The choice is remembered by this browser.
    await uploadPage.reload();
    expect(await page.locator('h1').textContent()).toBe('上传文件');
    await page.locator('#language').selectOption('en');
    expect(await page.locator('h1').textContent()).toBe('Upload files');
  });
});

describe('the upload page build', () => {
  /** The page routes alone in an app of their own, with a 404 for everything else. */
  async function pageApp(bundle: LazyPageBundle) {
    const app = express();
    app.use(uploadPageRoutes(createLogger('silent'), bundle));
    app.get('/healthz', (_req, res) => void res.json({ status: 'ok' }));
    app.use((_req, res) => void res.status(404).json({ error: 'not found' }));
    const listener = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => listener.once('listening', resolve));
    const address = listener.address();
    const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    return { base, close: () => listener.close() };
  }
  const unbuildable = () =>
    new LazyPageBundle(() => buildPageBundle(path.join(ROOT, 'web/no-such-page')));

  test('a page that cannot be built answers 500 with a reason; the server and its other routes go on', async () => {
    const app = await pageApp(unbuildable());
    try {
      // A failed build is tried again on the next request, and fails the same way.
      for (let attempt = 0; attempt < 2; attempt++) {
        const res = await fetch(`${app.base}/`);
        expect(res.status).toBe(500);
        expect(await res.text()).toMatch(/upload page could not be built/);
      }
      expect((await fetch(`${app.base}/assets/main.js`)).status).toBe(500);
      expect((await fetch(`${app.base}/healthz`)).status).toBe(200);
    } finally {
      app.close();
    }
  });

  test('a tus request to / is not for the page: it gets 404 like any path that is no upload', async () => {
    const app = await pageApp(unbuildable());
    try {
      const res = await fetch(`${app.base}/`, {
        method: 'HEAD',
        headers: { 'Tus-Resumable': '1.0.0' },
      });
      expect(res.status).toBe(404);
    } finally {
      app.close();
    }
  });

  test('the page is built from web/page with its assets under /assets/, names carrying a content hash', async () => {
    const bundle = await buildPageBundle();
    const names = [...bundle.assets.keys()];
    expect(names).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^main-\w+\.js$/),
        expect.stringMatching(/^main-\w+\.css$/),
      ]),
    );
    for (const name of names.filter((n) => n.startsWith('main-'))) {
      expect(bundle.html).toContain(`/assets/${name}`);
    }
  });
});
