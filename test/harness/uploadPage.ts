import type { CDPSession, Locator, Page } from 'playwright-core';

/** What the page's list of finished uploads shows for one upload. */
export type FinishedEntry = {
  id: string;
  name: string;
  size: string;
  sha256: string;
  deduplicated: boolean;
  downloadHref: string;
};

/** Drives the upload page (web/page) the way a user does: pick files, watch, download. */
export class UploadPageDriver {
  private cdp?: CDPSession;

  constructor(
    readonly page: Page,
    readonly url: string,
  ) {}

  /** Loads (or reloads) the page and waits for the Dashboard to take files. */
  async open(): Promise<void> {
    await this.page.goto(this.url);
    await this.fileInput().waitFor({ state: 'attached' });
  }

  async reload(): Promise<void> {
    await this.page.reload();
    await this.fileInput().waitFor({ state: 'attached' });
  }

  /** The Dashboard's own file picker input. */
  fileInput(): Locator {
    return this.page.locator('input.uppy-Dashboard-input[name="files[]"]').first();
  }

  /** Picks a file; the page starts hashing and uploading it at once. */
  async addFile(filePath: string): Promise<void> {
    await this.fileInput().setInputFiles(filePath);
  }

  /** Uppy's status bar in its complete state: every file of the batch finished. */
  async waitUntilComplete(timeout = 60_000): Promise<void> {
    await this.page.locator('.uppy-StatusBar.is-complete').waitFor({ timeout });
  }

  statusBar(): Locator {
    return this.page.locator('.uppy-StatusBar');
  }

  /** The first entry of the finished list: the upload that finished last. */
  newestFinished(): Locator {
    return this.page.locator('.finished-upload').first();
  }

  async readFinished(entry: Locator = this.newestFinished()): Promise<FinishedEntry> {
    const text = async (selector: string) => (await entry.locator(selector).textContent()) ?? '';
    return {
      id: (await entry.getAttribute('data-upload-id')) ?? '',
      name: await text('.finished-name'),
      size: await text('.finished-size'),
      sha256: await text('.finished-sha256'),
      deduplicated: (await entry.getAttribute('data-deduplicated')) === 'true',
      downloadHref: (await entry.locator('.finished-download').getAttribute('href')) ?? '',
    };
  }

  /** Starts noting every text Uppy's status bar shows (hashing, uploading, complete, …). */
  async recordStatusTexts(): Promise<void> {
    await this.page.evaluate(() => {
      const seen = new Set<string>();
      (window as unknown as { statusTexts: Set<string> }).statusTexts = seen;
      new MutationObserver(() => {
        const text = document.querySelector('.uppy-StatusBar')?.textContent;
        if (text) seen.add(text);
      }).observe(document.body, { subtree: true, childList: true, characterData: true });
    });
  }

  async statusTextsSeen(): Promise<string[]> {
    return this.page.evaluate(() => [
      ...(window as unknown as { statusTexts: Set<string> }).statusTexts,
    ]);
  }

  /** The page's localStorage keys: what it keeps for resuming and for the finished list. */
  async storageKeys(): Promise<string[]> {
    return this.page.evaluate(() => Object.keys(window.localStorage));
  }

  /** Slows what the page sends to `bytesPerSecond` (Chromium's network emulation); undefined lifts it. */
  async throttleUpload(bytesPerSecond: number | undefined): Promise<void> {
    if (!this.cdp) {
      this.cdp = await this.page.context().newCDPSession(this.page);
      await this.cdp.send('Network.enable');
    }
    await this.cdp.send('Network.emulateNetworkConditions', {
      offline: false,
      latency: 0,
      downloadThroughput: -1,
      uploadThroughput: bytesPerSecond ?? -1,
    });
  }
}
