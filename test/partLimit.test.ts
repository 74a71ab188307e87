import { describe, expect, test } from '@jest/globals';
import { serverOnStorage } from './harness/serverOnStorage.ts';
import { MIB, randomContent } from './harness/stack.ts';
import { patchHeaders, TUS } from './harness/tus.ts';

/** "Maximum object size: 5 TiB" (S3). */
const MAX_OBJECT = 5 * 1024 ** 4;

async function create(base: string, length: number): Promise<string> {
  const created = await fetch(`${base}/files/`, {
    method: 'POST',
    headers: { ...TUS, 'Upload-Length': String(length) },
  });
  expect(created.status).toBe(201);
  return new URL(created.headers.get('location') ?? '', base).toString();
}

const patch = (url: string, offset: number, body: Buffer) =>
  fetch(url, { method: 'PATCH', headers: patchHeaders(offset), body: new Uint8Array(body) });

const offsetOf = async (url: string) =>
  Number((await fetch(url, { method: 'HEAD', headers: TUS })).headers.get('upload-offset'));

// The part plan itself (10,000 parts for every length and chunk size) is tested in
// test/unit/partPlan.test.ts; here only what a client sees, without gigabytes.
describe.each(['s3', 's3+redis'] as const)('S3 part limits on the %s configuration', (kind) => {
  const stack = serverOnStorage(kind, { S3_PART_SIZE: String(5 * MIB) });

  test('an upload S3 cannot hold (past 5 TiB) gets 413 at its first PATCH, before its bytes', async () => {
    const url = await create(stack.server.url, MAX_OBJECT + 1);
    const refused = await patch(url, 0, randomContent(MIB));
    expect(refused.status).toBe(413);
    expect(await refused.text()).toContain('10,000 parts');
    expect(await offsetOf(url)).toBe(0);
  });

  test('an upload of exactly 5 TiB takes its bytes', async () => {
    const url = await create(stack.server.url, MAX_OBJECT);
    expect((await patch(url, 0, randomContent(6 * MIB))).status).toBe(204);
    expect((await patch(url, 6 * MIB, randomContent(MIB))).status).toBe(204);
    expect(await offsetOf(url)).toBe(7 * MIB);
  });
});
