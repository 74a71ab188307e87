import { type Browser, chromium } from 'playwright-core';

/** Debian's chromium package; `npm test` installs it where it is missing. */
const CHROMIUM_PATH = '/usr/bin/chromium';

/** Headless Chromium with nothing of its own on the network (no updates, sync or QUIC probes). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-quic',
      '--no-first-run',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
