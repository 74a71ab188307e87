import { describe, expect, test } from '@jest/globals';
import type { UploadOptions } from 'tus-js-client';
import { serverOnStorage } from './harness/serverOnStorage.ts';
import { MIB, randomContent, S3_COMPAT_KINDS, STORAGE_KINDS, sha256 } from './harness/stack.ts';
import {
  downloadedSha256,
  head,
  idOf,
  tusClientTerminate,
  tusClientUpload,
} from './harness/tus.ts';

/** One row of the tus-js-client option matrix: a size and the options it is sent with. */
type Case = [name: string, size: number, options: Partial<UploadOptions>];

const deferred = { uploadLengthDeferred: true };
const withCreation = { uploadDataDuringCreation: true };

const CASES: Case[] = [
  ['0 B in one request', 0, {}],
  ['1 B in one request', 1, {}],
  ['5 MiB - 1 in 1 MiB chunks', 5 * MIB - 1, { chunkSize: MIB }],
  ['5 MiB + 1 in 1 MiB chunks', 5 * MIB + 1, { chunkSize: MIB }],
  ['5 MiB + 1 in 6 MiB chunks', 5 * MIB + 1, { chunkSize: 6 * MIB }],
  ['64 MiB in 1 MiB chunks', 64 * MIB, { chunkSize: MIB }],
  ['64 MiB in 16 MiB chunks', 64 * MIB, { chunkSize: 16 * MIB }],
  ['7 MiB + 3 in odd 1,234,567 B chunks', 7 * MIB + 3, { chunkSize: 1_234_567 }],
  ['deferred length, 0 B', 0, deferred],
  ['deferred length, 1 B', 1, deferred],
  ['deferred length, 5 MiB + 1 in one request', 5 * MIB + 1, deferred],
  ['deferred length, 12 MiB in 6 MiB chunks', 12 * MIB, { ...deferred, chunkSize: 6 * MIB }],
  ['creation with upload, 1 B', 1, withCreation],
  [
    'creation with upload, 9 MiB + 17 in 2 MiB chunks',
    9 * MIB + 17,
    { ...withCreation, chunkSize: 2 * MIB },
  ],
  ['deferred length with creation with upload, 0 B', 0, { ...deferred, ...withCreation }],
  ['deferred length with creation with upload, 1 B', 1, { ...deferred, ...withCreation }],
  [
    'deferred length with creation with upload, 12 MiB in 6 MiB chunks',
    12 * MIB,
    { ...deferred, ...withCreation, chunkSize: 6 * MIB },
  ],
];

/** Every configuration, and S3 on VersityGW: how parts are written depends on what S3 answers. */
const KINDS = [...STORAGE_KINDS, ...S3_COMPAT_KINDS];

describe.each(KINDS)('tus-js-client uploads on the %s configuration', (kind) => {
  const stack = serverOnStorage(kind);

  test.each(CASES)(
    '%s: HEAD says finished, GET returns the bytes sent',
    async (_name, size, options) => {
      const data = randomContent(size);
      const url = await tusClientUpload(stack.server.url, data, options);
      const res = await head(url);
      expect(res.status).toBe(200);
      expect(res.headers.get('upload-defer-length')).toBeNull();
      expect(res.headers.get('upload-length')).toBe(String(size));
      expect(res.headers.get('upload-offset')).toBe(String(size));
      expect(await downloadedSha256(url)).toBe(sha256(data));
      expect(await stack.storage.storedSha256(idOf(url))).toBe(sha256(data));
    },
  );

  test('non-ASCII metadata survives the round trip', async () => {
    const data = randomContent(1000);
    const metadata = { filename: '报告.pdf', note: 'słońce', filetype: 'application/pdf' };
    const url = await tusClientUpload(stack.server.url, data, { metadata });
    const res = await head(url);
    const stored = Object.fromEntries(
      (res.headers.get('upload-metadata') ?? '').split(',').map((pair) => {
        const [key, value] = pair.split(' ');
        return [key, Buffer.from(value ?? '', 'base64').toString('utf8')];
      }),
    );
    expect(stored).toEqual(metadata);
    expect(await downloadedSha256(url)).toBe(sha256(data));
  });

  test('termination by the client: HEAD and GET answer 404, storage keeps nothing of it', async () => {
    const data = randomContent(6 * MIB + 5);
    const url = await tusClientUpload(stack.server.url, data, { chunkSize: 4 * MIB });
    expect(await downloadedSha256(url)).toBe(sha256(data));
    await tusClientTerminate(url);
    expect((await head(url)).status).toBe(404);
    expect((await fetch(url)).status).toBe(404);
    expect(await stack.storage.inventory()).not.toContainEqual(expect.stringContaining(idOf(url)));
  });
});
