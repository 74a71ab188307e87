import { crc32 } from 'node:zlib';
import { ListMultipartUploadsCommand, ListPartsCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { loggedRequest, type ServerProcess, startServer } from './harness/serverProcess.ts';
import { openPatch } from './harness/slowPatch.ts';
import {
  createTestStorage,
  MIB,
  randomContent,
  S3_COMPAT_KINDS,
  type StorageKind,
  s3ClientFor,
  s3ServicesOf,
  sha256,
  type TestStorage,
} from './harness/stack.ts';
import { createUpload, downloadedSha256, idOf, offsetOf, patch } from './harness/tus.ts';

/** The base64 of a part's CRC32 as S3 reports it (big-endian). */
function crc32Of(bytes: Buffer): string {
  const value = Buffer.alloc(4);
  value.writeUInt32BE(crc32(bytes));
  return value.toString('base64');
}

// Every part and tail the server sends carries a CRC32 the store verifies, so a body cut short
// on its way to S3 is refused there instead of stored with its declared size.
const KINDS: StorageKind[] = ['s3', ...S3_COMPAT_KINDS];

describe.each(KINDS)('part checksums on the %s storage', (kind) => {
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

  test('each stored part is the bytes sent for it, with the CRC32 of those bytes where the store lists it', async () => {
    const data = randomContent(20 * MIB);
    const url = await createUpload(server.url, data.length);
    expect((await patch(url, 0, data.subarray(0, 17 * MIB))).status).toBe(204);
    const client = s3ClientFor(s3ServicesOf(kind));
    const Bucket = storage.env.S3_BUCKET ?? '';
    const id = idOf(url);
    const { Uploads = [] } = await client.send(
      new ListMultipartUploadsCommand({ Bucket, Prefix: id }),
    );
    const upload = Uploads.find((candidate) => candidate.Key === id);
    const { Parts = [] } = await client.send(
      new ListPartsCommand({ Bucket, Key: id, UploadId: upload?.UploadId }),
    );
    // 8 MiB parts (S3_PART_SIZE), the last 1 MiB is the tail.
    expect(Parts.map((part) => part.Size)).toEqual([8 * MIB, 8 * MIB]);
    for (const [index, part] of Parts.entries()) {
      const sent = data.subarray(index * 8 * MIB, (index + 1) * 8 * MIB);
      if (part.ChecksumCRC32 !== undefined) expect(part.ChecksumCRC32).toBe(crc32Of(sent));
    }
    if (kind === 's3') expect(Parts.every((part) => part.ChecksumCRC32 !== undefined)).toBe(true);
    expect((await patch(url, 17 * MIB, data.subarray(17 * MIB))).status).toBe(204);
    expect(await downloadedSha256(url)).toBe(sha256(data));
    client.destroy();
  });

  test('a body that reaches the server in 1 KiB pieces is stored whole (each goes to S3 in chunks of at least 8 KiB)', async () => {
    // aws-chunked sends each chunk of a streamed body as one chunk on the wire, and AWS-like
    // stores refuse one under 8 KiB that is not the last (VersityGW closes mid-body).
    const data = randomContent(6 * MIB);
    const url = await createUpload(server.url, data.length);
    const KIB = 1024;
    const trickle = openPatch(url, 0, data.subarray(0, KIB), data.length);
    await trickle.read();
    // Each piece is written once the server has read the one before: it arrives alone.
    await trickle.write(data.subarray(KIB, 2 * KIB));
    await trickle.write(data.subarray(2 * KIB, 3 * KIB));
    await trickle.write(data.subarray(3 * KIB));
    trickle.req.end();
    expect(await trickle.response).toBe(204);
    expect(await offsetOf(url)).toBe(data.length);
    expect(await downloadedSha256(url)).toBe(sha256(data));
  });

  test.each([
    // A tail (under S3's 5 MiB minimum part): a 3 MiB PATCH cut after 2 MiB.
    [3 * MIB, 2 * MIB],
    // A part and a cut piece: a 12 MiB PATCH cut after 10 MiB, 2 MiB into its second piece.
    [12 * MIB, 10 * MIB],
  ])(
    'a %d-byte PATCH cut after %d bytes keeps exactly those bytes; resuming gives equal bytes',
    async (length, sent) => {
      const data = randomContent(length);
      const url = await createUpload(server.url, length);
      const cut = openPatch(url, 0, data.subarray(0, sent), length);
      await cut.read();
      cut.req.destroy();
      await server.waitForLog(
        (line) => loggedRequest(line)?.method === 'PATCH' && line.uploadId === idOf(url),
        'the cut PATCH',
      );
      expect(await offsetOf(url)).toBe(sent);
      expect((await patch(url, sent, data.subarray(sent))).status).toBe(204);
      expect(await offsetOf(url)).toBe(length);
      expect(await downloadedSha256(url)).toBe(sha256(data));
      expect(await storage.storedSha256(idOf(url))).toBe(sha256(data));
    },
  );
});
