import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { serverOnStorage } from './harness/serverOnStorage.ts';
import { loggedRequest } from './harness/serverProcess.ts';
import { openPatch } from './harness/slowPatch.ts';
import { MIB, randomContent, S3_COMPAT_KINDS, STORAGE_KINDS, sha256 } from './harness/stack.ts';
import {
  createUpload,
  creationRequest,
  downloadedSha256,
  offsetOf,
  patch,
  patchHeaders,
  TUS,
} from './harness/tus.ts';

const ALGORITHMS = ['sha1', 'md5', 'sha256', 'sha512'] as const;

/** `Upload-Checksum` for `data` (what a client computes per chunk). */
function checksumOf(algorithm: string, data: Buffer): Record<string, string> {
  return {
    'Upload-Checksum': `${algorithm} ${createHash(algorithm).update(data).digest('base64')}`,
  };
}

/** A checksum of other bytes of the same length: what a corrupted chunk arrives with. */
function wrongChecksum(algorithm: string, data: Buffer): Record<string, string> {
  const other = Buffer.from(data);
  other[0] = (other[0] ?? 0) ^ 0xff;
  return checksumOf(algorithm, other);
}

describe.each([...STORAGE_KINDS, ...S3_COMPAT_KINDS])(
  'the checksum extension on the %s configuration',
  (kind) => {
    const stack = serverOnStorage(kind);

    test('OPTIONS lists checksum and concatenation, and the algorithms', async () => {
      const res = await fetch(`${stack.server.url}/files/`, { method: 'OPTIONS' });
      expect(res.status).toBe(204);
      const extensions = res.headers.get('tus-extension')?.split(',') ?? [];
      expect(extensions).toEqual(expect.arrayContaining(['checksum', 'concatenation']));
      expect(extensions).not.toContain('concatentation');
      expect(res.headers.get('tus-checksum-algorithm')).toBe('sha1,md5,sha256,sha512');
    });

    test.each(ALGORITHMS)('a chunk with a right %s checksum is stored', async (algorithm) => {
      const data = randomContent(3 * MIB + 5);
      const url = await createUpload(stack.server.url, data.length);
      const first = data.subarray(0, MIB);
      const rest = data.subarray(MIB);
      const one = await patch(url, 0, first, checksumOf(algorithm, first));
      expect(one.status).toBe(204);
      expect(one.headers.get('upload-offset')).toBe(String(MIB));
      const two = await patch(url, MIB, rest, checksumOf(algorithm, rest));
      expect(two.status).toBe(204);
      expect(await downloadedSha256(url)).toBe(sha256(data));
    });

    // [case, bytes stored before, chunk length]: a chunk that would be a whole part, and one that
    // would be the incomplete tail on S3.
    test.each([
      ['a part-sized chunk at offset 0', 0, 6 * MIB],
      ['a tail-sized chunk after a stored part', 5 * MIB, MIB + 3],
      ['a chunk that would finish the upload', 5 * MIB, 7 * MIB],
    ])(
      'a mismatch (%s) is 460: the offset and the stored bytes stay as they were',
      async (_case, before, length) => {
        const data = randomContent(12 * MIB);
        const url = await createUpload(stack.server.url, data.length);
        const id = url.split('/').pop() ?? '';
        if (before > 0) expect((await patch(url, 0, data.subarray(0, before))).status).toBe(204);
        const stored = await stack.storage.storedBytes(id);
        const inventory = await stack.storage.inventory();
        const chunk = data.subarray(before, before + length);

        const res = await patch(url, before, chunk, wrongChecksum('sha256', chunk));
        expect(res.status).toBe(460);
        expect(await res.text()).toMatch(/Checksum Mismatch/);
        expect(await offsetOf(url)).toBe(before);
        expect(await stack.storage.storedBytes(id)).toBe(stored);
        expect(await stack.storage.inventory()).toEqual(inventory);

        // The client sends the chunk again, right this time, and the upload is whole.
        expect((await patch(url, before, chunk, checksumOf('sha256', chunk))).status).toBe(204);
        const restStart = before + length;
        if (restStart < data.length) {
          expect((await patch(url, restStart, data.subarray(restStart))).status).toBe(204);
        }
        expect(await downloadedSha256(url)).toBe(sha256(data));
      },
    );

    test.each([
      [
        'an unknown algorithm',
        { 'Upload-Checksum': 'crc32 AAAAAA==' },
        /sha1, md5, sha256, sha512/,
      ],
      ['no digest', { 'Upload-Checksum': 'sha1' }, /Base64/],
      // A Base64 digest of another length is a mismatch (460): test/conformance.test.ts.
      ['a digest that is not Base64', { 'Upload-Checksum': 'sha256 A!A=' }, /Base64/],
    ])('%s is 400 and nothing is stored', async (_case, headers, message) => {
      const url = await createUpload(stack.server.url, 100);
      const res = await patch(url, 0, randomContent(100), headers);
      expect(res.status).toBe(400);
      expect(await res.text()).toMatch(message);
      expect(await offsetOf(url)).toBe(0);
    });

    test('a body longer than the upload is 413 before it is read whole', async () => {
      const url = await createUpload(stack.server.url, 1000);
      const body = randomContent(2000);
      const res = await patch(url, 0, body, checksumOf('sha1', body));
      expect(res.status).toBe(413);
      expect(await offsetOf(url)).toBe(0);
    });

    test('a body cut short by its client stores nothing', async () => {
      const data = randomContent(6 * MIB);
      const url = await createUpload(stack.server.url, data.length);
      const id = url.split('/').pop() ?? '';
      const { req, read, response } = openPatch(
        url,
        0,
        data.subarray(0, 4 * MIB),
        data.length,
        checksumOf('sha1', data),
      );
      await read();
      req.destroy();
      await response;
      await stack.server.waitForLog(
        (line) => loggedRequest(line)?.method === 'PATCH' && line.uploadId === id,
        'the cut PATCH to end',
      );
      expect(await offsetOf(url)).toBe(0);
      expect(await stack.storage.storedBytes(id)).toBe(0);
    });

    test('creation with upload: a right checksum stores the body, a wrong one creates nothing', async () => {
      const data = randomContent(2 * MIB + 1);
      const headers = { 'Content-Type': 'application/offset+octet-stream' };
      const right = await fetch(`${stack.server.url}/files/`, {
        method: 'POST',
        headers: {
          ...TUS,
          ...headers,
          'Upload-Length': String(data.length),
          ...checksumOf('md5', data),
        },
        body: new Uint8Array(data),
      });
      expect(right.status).toBe(201);
      expect(right.headers.get('upload-offset')).toBe(String(data.length));
      const url = new URL(right.headers.get('location') ?? '', stack.server.url).toString();
      expect(await downloadedSha256(url)).toBe(sha256(data));

      const inventory = await stack.storage.inventory();
      const wrong = await fetch(`${stack.server.url}/files/`, {
        method: 'POST',
        headers: {
          ...TUS,
          ...headers,
          'Upload-Length': String(data.length),
          ...wrongChecksum('md5', data),
        },
        body: new Uint8Array(data),
      });
      expect(wrong.status).toBe(460);
      expect(wrong.headers.get('location')).toBeNull();
      expect(await stack.storage.inventory()).toEqual(inventory);
    });

    test('a creation without a body ignores Upload-Checksum', async () => {
      const res = await creationRequest(stack.server.url, 10, { 'Upload-Checksum': 'sha1 AAAA' });
      expect(res.status).toBe(201);
    });

    test('a PATCH without Upload-Checksum is streamed as before', async () => {
      const data = randomContent(MIB);
      const url = await createUpload(stack.server.url, data.length);
      const res = await fetch(url, {
        method: 'PATCH',
        headers: patchHeaders(0),
        body: new Uint8Array(data),
      });
      expect(res.status).toBe(204);
      expect(await downloadedSha256(url)).toBe(sha256(data));
    });
  },
);

describe.each([...STORAGE_KINDS, ...S3_COMPAT_KINDS])(
  'CHECKSUM_MAX_CHUNK_SIZE on the %s configuration',
  (kind) => {
    // The server's own temp dir, so that a spool left behind shows.
    const spoolDir = mkdtempSync(path.join(tmpdir(), 'checksum-spool-'));
    const stack = serverOnStorage(kind, { CHECKSUM_MAX_CHUNK_SIZE: String(MIB), TMPDIR: spoolDir });
    afterAll(() => rmSync(spoolDir, { recursive: true, force: true }));
    const spools = () => readdirSync(spoolDir).filter((name) => name.startsWith('tus-spool-'));

    test('a Content-Length over it is 413 at once: nothing stored, the offset unchanged', async () => {
      const data = randomContent(4 * MIB);
      const url = await createUpload(stack.server.url, data.length);
      const id = url.split('/').pop() ?? '';
      const chunk = data.subarray(0, MIB + 1);
      const res = await patch(url, 0, chunk, wrongChecksum('sha256', chunk));
      expect(res.status).toBe(413);
      expect(res.headers.get('tus-resumable')).toBe('1.0.0');
      expect(await res.text()).toBe(
        `a request with Upload-Checksum may carry at most ${MIB} bytes; send smaller chunks\n`,
      );
      expect(await offsetOf(url)).toBe(0);
      expect(await stack.storage.storedBytes(id)).toBe(0);
      expect(spools()).toEqual([]);
    });

    test('a chunked body is refused with 413 as it passes it, and its spool is removed', async () => {
      const data = randomContent(4 * MIB);
      const url = await createUpload(stack.server.url, data.length);
      const id = url.split('/').pop() ?? '';
      // Never finished: the server must answer without waiting for the end of the body.
      const { req, response } = openPatch(
        url,
        0,
        data.subarray(0, 2 * MIB),
        undefined,
        checksumOf('sha1', data),
      );
      expect(await response).toBe(413);
      req.destroy();
      expect(await offsetOf(url)).toBe(0);
      expect(await stack.storage.storedBytes(id)).toBe(0);
      expect(spools()).toEqual([]);
    });

    test('a chunk of exactly the limit with the right digest is stored (204)', async () => {
      const data = randomContent(MIB + 7);
      const url = await createUpload(stack.server.url, data.length);
      const first = data.subarray(0, MIB);
      const one = await patch(url, 0, first, checksumOf('sha256', first));
      expect(one.status).toBe(204);
      expect(one.headers.get('upload-offset')).toBe(String(MIB));
      const rest = data.subarray(MIB);
      expect((await patch(url, MIB, rest, checksumOf('sha256', rest))).status).toBe(204);
      expect(await downloadedSha256(url)).toBe(sha256(data));
      expect(spools()).toEqual([]);
    });

    test('a PATCH without Upload-Checksum is not bounded by it', async () => {
      const data = randomContent(2 * MIB);
      const url = await createUpload(stack.server.url, data.length);
      expect((await patch(url, 0, data)).status).toBe(204);
      expect(await downloadedSha256(url)).toBe(sha256(data));
    });
  },
);
