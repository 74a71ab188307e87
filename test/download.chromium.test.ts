import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { Browser } from 'playwright-core';
import { launchChromium } from './harness/chromium.ts';
import { serverOnStorage } from './harness/serverOnStorage.ts';
import { randomContent, sha256 } from './harness/stack.ts';
import { tusClientUpload } from './harness/tus.ts';

describe('downloads in Chromium', () => {
  const stack = serverOnStorage('s3');
  let browser: Browser;

  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });

  test('a file named 报告 2024.pdf downloads under its name, with the bytes sent', async () => {
    const data = randomContent(300_000);
    const url = await tusClientUpload(stack.server.url, data, {
      metadata: { filename: '报告 2024.pdf', filetype: 'application/pdf' },
    });
    const context = await browser.newContext({ acceptDownloads: true });
    try {
      const page = await context.newPage();
      const [download] = await Promise.all([
        page.waitForEvent('download'),
        // An attachment ends the navigation with a download instead of a page.
        page.goto(url).catch(() => undefined),
      ]);
      expect(download.suggestedFilename()).toBe('报告 2024.pdf');
      const saved = await download.path();
      expect(sha256(await readFile(saved))).toBe(sha256(data));
    } finally {
      await context.close();
    }
  });
});
