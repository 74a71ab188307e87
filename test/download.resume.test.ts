import { execFile, spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { type FinishedUpload, finishedUpload } from './harness/downloads.ts';
import { serverOnStorage } from './harness/serverOnStorage.ts';
import { waitFor } from './harness/services.ts';
import { MIB, STORAGE_KINDS, sha256 } from './harness/stack.ts';

const run = promisify(execFile);
const SIZE = 4 * MIB;

/**
 * wget, rate-limited, killed once a part of the file is on disk, like a user whose connection
 * drops. Resolves with the number of bytes it left behind.
 */
async function wgetPartly(url: string, file: string): Promise<number> {
  const child = spawn('wget', ['-q', '--limit-rate=2m', '-O', file, url], { stdio: 'ignore' });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const size = () => (existsSync(file) ? statSync(file).size : 0);
  await waitFor(async () => size() >= MIB, `wget writing ${file}`, 30_000);
  child.kill('SIGKILL');
  await exited;
  return size();
}

/**
 * curl writing to stdout (`curl URL > file`), killed after its first MiB. curl's own rate limit
 * lets a whole small file through in one burst, so the test reads the pipe itself.
 */
async function curlPartly(url: string, file: string): Promise<number> {
  const child = spawn('curl', ['-s', url], { stdio: ['ignore', 'pipe', 'ignore'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  let written = 0;
  child.stdout.on('data', (chunk: Buffer) => {
    if (written >= MIB) return;
    appendFileSync(file, chunk);
    written += chunk.length;
    if (written >= MIB) child.kill('SIGKILL');
  });
  await exited;
  return written;
}

describe.each(STORAGE_KINDS)('resuming downloads with real clients on the %s storage', (kind) => {
  const stack = serverOnStorage(kind);
  let upload: FinishedUpload;
  let dir: string;

  beforeAll(async () => {
    upload = await finishedUpload(stack.server.url, SIZE, {
      filename: 'movie.mp4',
      filetype: 'video/mp4',
    });
    dir = mkdtempSync(path.join(tmpdir(), 'resume-'));
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
  });

  test('wget killed halfway, then `wget -c`, ends with the whole file', async () => {
    const file = path.join(dir, 'wget.mp4');
    const partial = await wgetPartly(upload.url, file);
    expect(partial).toBeLessThan(SIZE);

    const resumed = await run('wget', ['-c', '-O', file, upload.url]);
    // wget reports the server's answer: the rest of the file, not all of it again.
    expect(resumed.stderr).toMatch(/206 Partial Content/);
    expect(resumed.stderr).toContain(`Length: ${SIZE} (4.0M), ${SIZE - partial} `);
    expect(sha256(readFileSync(file))).toBe(sha256(upload.data));
  });

  test('curl killed halfway, then `curl -C -`, ends with the whole file', async () => {
    const file = path.join(dir, 'curl.mp4');
    const partial = await curlPartly(upload.url, file);
    expect(partial).toBeLessThan(SIZE);

    const resumed = await run('curl', [
      '-sS',
      '-C',
      '-',
      '-o',
      file,
      '-w',
      '%{http_code} %{size_download}',
      upload.url,
    ]);
    expect(resumed.stdout).toBe(`206 ${SIZE - partial}`);
    expect(sha256(readFileSync(file))).toBe(sha256(upload.data));
  });
});
