import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { type ServerProcess, startServer } from './harness/serverProcess.ts';
import {
  createTestStorage,
  randomContent,
  STORAGE_KINDS,
  sha256,
  type TestStorage,
} from './harness/stack.ts';
import { head, idOf, tusClientUpload } from './harness/tus.ts';

const MIB = 1024 * 1024;

describe.each(STORAGE_KINDS)('tus-js-client uploads on the %s storage', (kind) => {
  let storage: TestStorage;
  let server: ServerProcess;

  beforeAll(async () => {
    storage = createTestStorage(kind);
    server = await startServer(storage.env);
  });
  afterAll(async () => {
    await server?.stop();
    await storage?.cleanup();
  });

  const cases: Array<[string, number, number | undefined]> = [
    ['0 B in one request', 0, undefined],
    ['1 B in one request', 1, undefined],
    ['5 MiB - 1 in 1 MiB chunks', 5 * MIB - 1, 1 * MIB],
    ['5 MiB + 1 in 1 MiB chunks', 5 * MIB + 1, 1 * MIB],
    ['5 MiB + 1 in 6 MiB chunks', 5 * MIB + 1, 6 * MIB],
    ['64 MiB in 1 MiB chunks', 64 * MIB, 1 * MIB],
    ['64 MiB in 16 MiB chunks', 64 * MIB, 16 * MIB],
    ['7 MiB + 3 in odd 1,234,567 B chunks', 7 * MIB + 3, 1_234_567],
  ];

  test.each(cases)('%s: stored bytes equal the source', async (_name, size, chunkSize) => {
    const data = randomContent(size);
    const url = await tusClientUpload(server.url, data, chunkSize ? { chunkSize } : {});
    const res = await head(url);
    expect(res.headers.get('upload-offset')).toBe(String(size));
    expect(res.headers.get('upload-length')).toBe(String(size));
    expect(await storage.storedSha256(idOf(url))).toBe(sha256(data));
  });

  test('creation-with-upload (uploadDataDuringCreation) with 2 MiB chunks', async () => {
    const data = randomContent(9 * MIB + 17);
    const url = await tusClientUpload(server.url, data, {
      uploadDataDuringCreation: true,
      chunkSize: 2 * MIB,
    });
    expect(await storage.storedSha256(idOf(url))).toBe(sha256(data));
  });

  test('non-ASCII metadata survives the round trip', async () => {
    const data = randomContent(1000);
    const metadata = { filename: '报告.pdf', note: 'słońce', filetype: 'application/pdf' };
    const url = await tusClientUpload(server.url, data, { metadata });
    const res = await head(url);
    const stored = Object.fromEntries(
      (res.headers.get('upload-metadata') ?? '').split(',').map((pair) => {
        const [key, value] = pair.split(' ');
        return [key, Buffer.from(value ?? '', 'base64').toString('utf8')];
      }),
    );
    expect(stored).toEqual(metadata);
    expect(await storage.storedSha256(idOf(url))).toBe(sha256(data));
  });
});
