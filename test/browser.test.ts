import { createReadStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import express from 'express';
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
import { serverOnStorage } from './harness/serverOnStorage.ts';
import { loggedRequest, ROOT } from './harness/serverProcess.ts';
import { waitFor } from './harness/services.ts';
import { contentCopies, MIB, randomContent, sha256, sha256OfStream } from './harness/stack.ts';
import { downloadedSha256 } from './harness/tus.ts';
import { type FinishedEntry, UploadPageDriver } from './harness/uploadPage.ts';

const ARTIFACTS = path.join(ROOT, 'test/artifacts');

type SourceFile = { path: string; size: number; sha256: string };

const bodyBytes = (requests: ProxiedRequest[]) =>
  requests.reduce((sum, request) => sum + request.bodyBytes, 0);

describe('the upload page in Chromium, on MinIO with the dedupe index in Redis', () => {
  // A Redis database of its own: the dedupe index starts empty and meets no other suite's.
  const stack = serverOnStorage('s3+redis', { DEDUPE_PROOF: 'on' });
  let proxy: CountingProxy;
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

  /**
   * Opens the page, picks `filePath` and resolves with the finished entry once the batch is
   * complete; `beforeAdd` runs on the opened page just before the file is picked.
   */
  async function uploadInPage(
    filePath: string,
    beforeAdd: () => Promise<void> | void = () => {},
  ): Promise<FinishedEntry> {
    await uploadPage.open();
    await beforeAdd();
    await uploadPage.addFile(filePath);
    await uploadPage.waitUntilComplete();
    return uploadPage.readFinished();
  }

  /** Log lines the server wrote about one upload. */
  const serverLogsFor = (id: string) => stack.server.logs().filter((line) => line.uploadId === id);

  beforeAll(async () => {
    workDir = mkdtempSync(path.join(tmpdir(), 'tus-browser-'));
    // The page talks to the server through this proxy, which counts what the server was sent.
    proxy = await startCountingProxy(stack.server.url);
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
    rmSync(workDir, { recursive: true, force: true });
  });

  test('a 30 MiB file picked in the page is hashed, uploaded in chunks and downloads from its link unchanged', async () => {
    const file = sourceFile('thirty.bin', 30 * MIB);
    let started = 0;
    const entry = await uploadInPage(file.path, async () => {
      await uploadPage.recordStatusTexts();
      // On loopback the six chunks can pass between two renders of the status bar; at 20 MiB/s
      // the upload lasts long enough for its progress to be drawn whatever the machine's load.
      await uploadPage.throttleUpload(20 * MIB);
      started = Date.now();
    });
    const elapsedMs = Date.now() - started;
    await uploadPage.throttleUpload(undefined);
    // Progress was shown for hashing, then for the upload.
    const shown = await uploadPage.statusTextsSeen();
    expect(shown.some((text) => text.includes('Computing SHA-256'))).toBe(true);
    expect(shown.some((text) => /Uploading.*\d+%/.test(text))).toBe(true);

    expect(entry).toMatchObject({ name: 'thirty.bin', size: '30 MiB', deduplicated: false });
    // The browser's sha256 (hash-wasm over the file's stream) is the file's.
    expect(entry.sha256).toBe(file.sha256);
    expect(entry.downloadHref).toBe(`/files/${entry.id}`);
    expect(await stack.storage.storedSha256(entry.id)).toBe(file.sha256);

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
    process.stdout.write(`upload page: 30 MiB hashed and uploaded in ${elapsedMs} ms\n`);
  });

  test('the same file again finishes by a proof of ownership: the server receives none of its bytes', async () => {
    // The first time, in a page of its own: an upload like any other.
    const file = sourceFile('twice.bin', 30 * MIB);
    const first = await uploadInPage(file.path);
    expect(first).toMatchObject({ name: 'twice.bin', deduplicated: false });
    const copiesBefore = await contentCopies(stack.storage);
    expect(copiesBefore).toContain(first.id);

    let seen = 0;
    const entry = await uploadInPage(file.path, () => {
      seen = proxy.requests.length;
    });
    expect(entry).toMatchObject({
      name: 'twice.bin',
      deduplicated: true,
      sha256: file.sha256,
    });
    expect(entry.id).not.toBe(first.id);
    // Server side: the creation came with a challenge, the page answered it from the whole file
    // (read in the page), and nothing of the file itself arrived (anonymous: no one owns content).
    const sent = proxy.requests.slice(seen).filter((r) => r.path.startsWith('/files/'));
    expect(sent.map((r) => `${r.method} ${r.path.replace(/[0-9a-f]{32}/, '<id>')}`)).toEqual([
      'POST /files/',
      'POST /files/<id>/proof',
    ]);
    expect(bodyBytes(sent)).toBeLessThan(200);
    const logs = serverLogsFor(entry.id);
    expect(
      logs.some((line) => line.msg === 'dedupe: proof of ownership accepted, upload finished'),
    ).toBe(true);
    expect(logs.filter((line) => loggedRequest(line)?.method === 'PATCH')).toEqual([]);
    // Storage holds one copy, shared by both uploads: the hit added none.
    expect(await contentCopies(stack.storage)).toEqual(copiesBefore);

    expect(await downloadedSha256(`${stack.server.url}${entry.downloadHref}`)).toBe(file.sha256);
    process.stdout.write(`upload page: proof of ownership, ${bodyBytes(sent)} body bytes sent\n`);
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
    await waitFor(
      async () => patchesFrom(seen).every((request) => request.ended),
      'the PATCH in flight to end',
      10_000,
    );
    const whilePaused = arrived(seen);
    // Paused for a while: that nothing arrives meanwhile is what is tested.
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
    expect(await stack.storage.storedSha256(entry.id)).toBe(file.sha256);
    // One upload was created (and its challenge answered, in vain: no one stored this file),
    // before the reload; after it the page asked where to go on.
    const sent = proxy.requests.slice(seen).filter((request) => request.path.startsWith('/files/'));
    expect(sent.filter((request) => request.path === '/files/')).toHaveLength(1);
    expect(new Set(sent.map((request) => request.path))).toEqual(
      new Set(['/files/', `/files/${entry.id}/proof`, `/files/${entry.id}`]),
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
    let seen = 0;
    const entry = await uploadInPage(file.path, () => {
      seen = proxy.requests.length;
      proxy.failNext('PATCH', 2);
    });
    expect(entry).toMatchObject({ name: 'flaky.bin', sha256: file.sha256 });
    expect(await stack.storage.storedSha256(entry.id)).toBe(file.sha256);
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
    // The image to upload: a picture of the page itself.
    await uploadInPage(picture, async () => void (await page.screenshot({ path: picture })));
    const preview = uploadPage.newestFinished().locator('.finished-preview img');
    await preview.waitFor();
    await waitFor(
      async () => preview.evaluate((img) => (img as HTMLImageElement).naturalWidth > 0),
      'the image preview',
      10_000,
    );
    // The status bar's bar fills on a short transition: wait until nothing moves any more.
    await page.waitForFunction(() =>
      document.getAnimations().every((animation) => animation.playState !== 'running'),
    );
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
