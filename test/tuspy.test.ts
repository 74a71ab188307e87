import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { ReadableStream } from 'node:stream/web';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { parse as parseContentDisposition } from 'content-disposition';
import { serverOnStorage } from './harness/serverOnStorage.ts';
import { MIB, randomContent, STORAGE_KINDS, sha256, sha256OfStream } from './harness/stack.ts';
import { bearer, JWT_SECRET, tokenFor } from './harness/tokens.ts';
import { createUpload, encodeMetadata, head, patch } from './harness/tus.ts';
import { requireTuspy, tuspyUpload } from './harness/tuspy.ts';

/** One tuspy upload: a size and the chunk size it is sent in (one PATCH without one). */
type Case = [name: string, size: number, chunkSize: number | undefined];

const CASES: Case[] = [
  ['0 B (creation only)', 0, undefined],
  ['1 KiB in one request', 1024, undefined],
  ['5 MiB + 1 in 2 MiB chunks', 5 * MIB + 1, 2 * MIB],
  ['12 MiB + 7 in 5 MiB chunks', 12 * MIB + 7, 5 * MIB],
];

const FILETYPE = 'application/octet-stream';

/** What a GET of the upload answers: status, sha256 of the body (streamed) and the filename. */
async function download(url: string, headers: Record<string, string> = {}) {
  const res = await fetch(url, { headers });
  if (res.status !== 200 || !res.body) return { status: res.status };
  const disposition = parseContentDisposition(res.headers.get('content-disposition') ?? '');
  return {
    status: res.status,
    sha256: await sha256OfStream(Readable.fromWeb(res.body as ReadableStream)),
    filename: disposition.parameters.filename,
  };
}

// Fails every test, rather than skipping them, where npm test has not installed tuspy yet.
beforeAll(requireTuspy);

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'tuspy-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Random bytes of `size` in a file of their own, for tuspy to read. */
function fileOf(size: number): { data: Buffer; file: string } {
  const data = randomContent(size);
  const file = path.join(dir, `${size}-${data.subarray(0, 4).toString('hex')}.bin`);
  writeFileSync(file, data);
  return { data, file };
}

describe.each(STORAGE_KINDS)(
  'tuspy (Python tus client) uploads on the %s configuration',
  (kind) => {
    const stack = serverOnStorage(kind);

    test.each(CASES)(
      '%s with Upload-Checksum: GET returns the bytes sent, named by the metadata',
      async (name, size, chunkSize) => {
        const { data, file } = fileOf(size);
        const filename = `tuspy ${name}.bin`.replace(/[^\w .+-]/g, '');
        const { url, offset } = await tuspyUpload({
          endpoint: `${stack.server.url}/files/`,
          file_path: file,
          ...(chunkSize ? { chunk_size: chunkSize } : {}),
          metadata: { filename, filetype: FILETYPE },
          upload_checksum: true,
        });
        expect(offset).toBe(size);
        const res = await head(url);
        expect(res.headers.get('upload-offset')).toBe(String(size));
        expect(res.headers.get('upload-length')).toBe(String(size));
        expect(await download(url)).toEqual({ status: 200, sha256: sha256(data), filename });
      },
    );

    test('resumes an upload another client began, from the offset HEAD reports', async () => {
      const { data, file } = fileOf(7 * MIB + 3);
      const filename = 'resumed.bin';
      const url = await createUpload(stack.server.url, data.length, {
        'Upload-Metadata': encodeMetadata({ filename, filetype: FILETYPE }),
      });
      expect((await patch(url, 0, data.subarray(0, MIB + 5))).status).toBe(204);
      const result = await tuspyUpload({
        endpoint: `${stack.server.url}/files/`,
        file_path: file,
        url,
        chunk_size: 2 * MIB,
        upload_checksum: true,
      });
      expect(result).toEqual({ url, offset: data.length });
      expect(await download(url)).toEqual({ status: 200, sha256: sha256(data), filename });
    });
  },
);

describe.each(STORAGE_KINDS)('tuspy with access control on the %s configuration', (kind) => {
  const stack = serverOnStorage(kind, { AUTH_JWT_SECRET: JWT_SECRET });

  test("uploads with the owner's token in its client headers; only the owner downloads", async () => {
    const { data, file } = fileOf(3 * MIB + 11);
    const alice = bearer(await tokenFor('alice'));
    const { url, offset } = await tuspyUpload({
      endpoint: `${stack.server.url}/files/`,
      file_path: file,
      chunk_size: 2 * MIB,
      metadata: { filename: 'alice.bin', filetype: FILETYPE },
      headers: alice,
      upload_checksum: true,
    });
    expect(offset).toBe(data.length);
    expect(await download(url, alice)).toEqual({
      status: 200,
      sha256: sha256(data),
      filename: 'alice.bin',
    });
    expect((await download(url)).status).toBe(401);
    expect((await download(url, bearer(await tokenFor('bob')))).status).toBe(404);
  });
});
