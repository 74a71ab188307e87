import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { Browser } from 'playwright-core';
import { launchChromium } from './harness/chromium.ts';
import { type CountingProxy, startCountingProxy } from './harness/countingProxy.ts';
import { serverOnStorage } from './harness/serverOnStorage.ts';
import { contentCopies, MIB, randomContent, sha256 } from './harness/stack.ts';
import { bearer, JWT_SECRET, tokenFor } from './harness/tokens.ts';
import { tusClientUpload } from './harness/tus.ts';
import { UploadPageDriver } from './harness/uploadPage.ts';

describe('the upload page in Chromium with a token, and a file someone else stored', () => {
  const stack = serverOnStorage('s3+redis', { AUTH_JWT_SECRET: JWT_SECRET, DEDUPE_PROOF: 'on' });
  let proxy: CountingProxy;
  let browser: Browser;
  let workDir: string;

  beforeAll(async () => {
    workDir = mkdtempSync(path.join(tmpdir(), 'tus-browser-auth-'));
    proxy = await startCountingProxy(stack.server.url);
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await proxy?.close();
    rmSync(workDir, { recursive: true, force: true });
  });

  test('the page proves it holds the file: finished with under 1 MiB sent, one copy stored, its link downloads', async () => {
    const data = randomContent(24 * MIB + 123);
    const filePath = path.join(workDir, 'shared.bin');
    writeFileSync(filePath, data);
    // Bob stored the same content first, with a stock client.
    await tusClientUpload(stack.server.url, data, {
      headers: bearer(await tokenFor('bob')),
      chunkSize: 8 * MIB,
    });
    const copiesBefore = await contentCopies(stack.storage);

    const alice = await tokenFor('alice');
    const page = await browser.newPage();
    const uploadPage = new UploadPageDriver(page, `${proxy.url}/#token=${alice}`);
    await uploadPage.open();
    const seen = proxy.requests.length;
    await uploadPage.addFile(filePath);
    await uploadPage.waitUntilComplete();
    const entry = await uploadPage.readFinished();

    const sent = proxy.requests.slice(seen).filter((r) => r.path.startsWith('/files/'));
    const bytes = sent.reduce((sum, r) => sum + r.bodyBytes, 0);
    process.stdout.write(`upload page with a proof: ${bytes} body bytes sent for 24 MiB\n`);
    expect(sent.map((r) => `${r.method} ${r.status}`)).toEqual([
      'POST 201',
      'POST 204',
      'POST 201',
    ]);
    expect(sent[1]?.path).toMatch(/^\/files\/[0-9a-f]{32}\/proof$/);
    expect(sent[2]?.path).toMatch(/^\/files\/[0-9a-f]{32}\/links$/);
    expect(bytes).toBeLessThan(1024);
    expect(entry.deduplicated).toBe(true);
    expect(await contentCopies(stack.storage)).toEqual(copiesBefore);

    // The finished list links to a signed URL: it downloads without the token.
    const link = new URL(entry.downloadHref, proxy.url);
    expect(link.searchParams.get('signature')).toBeTruthy();
    const res = await fetch(`${stack.server.url}${link.pathname}${link.search}`);
    expect(res.status).toBe(200);
    expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(sha256(data));
    // Without the link or the token, alice's upload is not there for anyone.
    expect((await fetch(`${stack.server.url}${link.pathname}`)).status).toBe(401);
    await page.close();
  });

  test('a download served from the upload origin cannot run as a script or a service worker', async () => {
    const alice = await tokenFor('alice');
    const url = await tusClientUpload(stack.server.url, Buffer.from('window.ran = true;'), {
      headers: bearer(alice),
      metadata: { filename: 'x.js', filetype: 'text/javascript' },
    });
    const linkRes = await fetch(`${url}/links`, {
      method: 'POST',
      headers: { ...bearer(alice), 'Content-Type': 'application/json' },
      body: '{"expiresIn": 300}',
    });
    const link = new URL(((await linkRes.json()) as { url: string }).url);
    const script = `${link.pathname}${link.search}`;
    const page = await browser.newPage();
    await page.goto(`${stack.server.url}/`);
    const outcome = await page.evaluate(async (src) => {
      const loaded = await new Promise<string>((resolve) => {
        const tag = document.createElement('script');
        tag.src = src;
        tag.onload = () => resolve('loaded');
        tag.onerror = () => resolve('refused');
        document.head.append(tag);
      });
      const worker = await navigator.serviceWorker.register(src).then(
        () => 'registered',
        () => 'refused',
      );
      return { loaded, ran: (window as { ran?: boolean }).ran === true, worker };
    }, script);
    expect(outcome).toEqual({ loaded: 'refused', ran: false, worker: 'refused' });
    await page.close();
  });
});
