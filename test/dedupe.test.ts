import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { Redis } from 'ioredis';
import { Upload } from 'tus-js-client';
import { serverOnStorage } from './harness/serverOnStorage.ts';
import { ROOT, type ServerProcess, startServer } from './harness/serverProcess.ts';
import {
  contentCopies,
  createTestStorage,
  MIB,
  randomContent,
  type StorageKind,
  sha256,
  type TestStorage,
} from './harness/stack.ts';
import { bearer, JWT_SECRET, tokenFor } from './harness/tokens.ts';
import {
  creationRequest,
  downloadedSha256,
  encodeMetadata,
  head,
  idOf,
  offsetOf,
  patch,
  TUS,
  tusClientUpload,
} from './harness/tus.ts';

const md5 = (data: Buffer) => createHash('md5').update(data).digest('hex');

/** Raw creation POST; returns status, URL and the Upload-Offset the server answered with. */
async function post(base: string, length: number, metadata: Record<string, string>) {
  const res = await creationRequest(
    base,
    length,
    Object.keys(metadata).length > 0 ? { 'Upload-Metadata': encodeMetadata(metadata) } : {},
  );
  return {
    status: res.status,
    url: new URL(res.headers.get('location') ?? '', base).toString(),
    offset: res.headers.get('upload-offset'),
  };
}

/** Uploads with raw requests in one PATCH; resolves with the PATCH response. */
async function rawUpload(base: string, data: Buffer, metadata: Record<string, string>) {
  const created = await post(base, data.length, metadata);
  const res = await patch(created.url, 0, data);
  return { url: created.url, status: res.status, body: await res.text() };
}

type Setup = { name: string; kind: StorageKind };
const SETUPS: Setup[] = [
  { name: 'embedded default (file store, in-process index)', kind: 'file' },
  { name: 'MinIO + Redis', kind: 's3+redis' },
  // Where S3 answers as AWS does: a mismatched upload is removed after its multipart completed.
  { name: 'VersityGW', kind: 's3-versity' },
];

// Started by hand, not with serverOnStorage: the last test restarts the server.
// Hits are content the requester uploaded itself (dedupe.attacks.test.ts covers everyone else):
// every request of this suite is one owner's, as from an application with one user.
describe.each(SETUPS)('dedupe for one owner on $name', ({ kind }) => {
  let storage: TestStorage;
  let server: ServerProcess;
  let env: NodeJS.ProcessEnv;
  /** The dedupe index's Redis, where there is one. */
  let redis: Redis | undefined;
  let owner: Record<string, string>;
  const anonymousFetch = globalThis.fetch;

  beforeAll(async () => {
    storage = createTestStorage(kind);
    env = { ...storage.env, AUTH_JWT_SECRET: JWT_SECRET };
    if (storage.env.REDIS_URL) redis = new Redis(storage.env.REDIS_URL);
    server = await startServer(env);
    owner = bearer(await tokenFor('owner'));
    globalThis.fetch = (input, init) =>
      anonymousFetch(input, {
        ...init,
        headers: { ...owner, ...(init?.headers as Record<string, string> | undefined) },
      });
  });
  afterAll(async () => {
    globalThis.fetch = anonymousFetch;
    await server?.stop();
    redis?.disconnect();
    await storage?.cleanup();
  });

  test('a POST announcing a known sha256 and the same length is created finished; nothing is sent', async () => {
    const data = randomContent(3 * MIB + 11);
    const first = await rawUpload(server.url, data, { sha256: sha256(data), filename: 'a.bin' });
    expect(first.status).toBe(204);

    const hit = await post(server.url, data.length, {
      sha256: sha256(data),
      filename: 'again.bin',
    });
    expect(hit.status).toBe(201);
    expect(hit.offset).toBe(String(data.length));
    const state = await head(hit.url);
    expect(state.headers.get('upload-offset')).toBe(String(data.length));
    expect(state.headers.get('upload-length')).toBe(String(data.length));
    expect(await storage.storedSha256(idOf(hit.url))).toBe(sha256(data));
    expect(await downloadedSha256(hit.url)).toBe(sha256(data));
    const ranged = await fetch(hit.url, { headers: { Range: 'bytes=100-199' } });
    expect(ranged.status).toBe(206);
    expect(Buffer.from(await ranged.arrayBuffer()).equals(data.subarray(100, 200))).toBe(true);
    expect(await contentCopies(storage)).toContain(idOf(first.url));
    expect(await contentCopies(storage)).not.toContain(idOf(hit.url));
  });

  test('the same works with md5', async () => {
    const data = randomContent(70_000);
    await rawUpload(server.url, data, { md5: md5(data) });
    const hit = await post(server.url, data.length, { md5: md5(data) });
    expect(hit.status).toBe(201);
    expect(hit.offset).toBe(String(data.length));
    expect(await storage.storedSha256(idOf(hit.url))).toBe(sha256(data));
  });

  // md5 is computed only for uploads that claim one: content stored without such a claim is
  // found by its md5 once an upload claiming it has been verified against the same bytes.
  test('content stored without an md5 claim is found by md5 after an md5-claiming upload', async () => {
    const data = randomContent(90_000);
    await rawUpload(server.url, data, { sha256: sha256(data) });
    const miss = await post(server.url, data.length, { md5: md5(data) });
    expect(miss.offset).toBe('0');
    // Counted after the miss: an unfinished upload is a (partial) copy in the file store.
    const copies = (await contentCopies(storage)).length;
    const second = await rawUpload(server.url, data, { md5: md5(data) });
    expect(second.status).toBe(204);
    // Verified and linked to the stored bytes: still one copy.
    expect((await contentCopies(storage)).length).toBe(copies);
    const hit = await post(server.url, data.length, { md5: md5(data) });
    expect(hit.offset).toBe(String(data.length));
    expect(await downloadedSha256(hit.url)).toBe(sha256(data));
  });

  test('uploads that claimed no hash are indexed by the digests the server computed', async () => {
    const data = randomContent(5000);
    await rawUpload(server.url, data, {});
    const hit = await post(server.url, data.length, { sha256: sha256(data) });
    expect(hit.offset).toBe(String(data.length));
  });

  test('the same hash with a different length is a miss', async () => {
    const data = randomContent(4000);
    await rawUpload(server.url, data, { sha256: sha256(data) });
    const miss = await post(server.url, data.length + 1, { sha256: sha256(data) });
    expect(miss.status).toBe(201);
    expect(miss.offset).toBe('0');
    expect(await offsetOf(miss.url)).toBe(0);
  });

  test('stock tus-js-client on a hit succeeds, bytes equal, storage keeps one copy', async () => {
    const data = randomContent(6 * MIB);
    const first = await tusClientUpload(server.url, data, {
      metadata: { sha256: sha256(data) },
      headers: owner,
    });
    const copiesBefore = await contentCopies(storage);
    expect(copiesBefore).toContain(idOf(first));

    // Default options: no retries are turned off, nothing is tuned (chunkSize is Infinity).
    let sent = 0;
    const url = await new Promise<string>((resolve, reject) => {
      const upload = new Upload(data, {
        endpoint: `${server.url}/files/`,
        headers: owner,
        metadata: { sha256: sha256(data) },
        onProgress: (bytes) => {
          sent = Math.max(sent, bytes);
        },
        onError: reject,
        onSuccess: () => resolve(upload.url ?? ''),
      });
      upload.start();
    });
    expect(await offsetOf(url)).toBe(data.length);
    expect(await storage.storedSha256(idOf(url))).toBe(sha256(data));
    expect(await contentCopies(storage)).toEqual(copiesBefore);
    // The client ignores the creation's Upload-Offset and PATCHes its first chunk from 0; with
    // the default chunk size that chunk is the whole file. The server answers it without
    // storing it (the copies above): the body bytes on a hit are the file's length.
    expect(sent).toBe(data.length);
  });

  test('a client claiming the wrong sha256 gets 460, nothing is indexed, an honest upload is stored right', async () => {
    const a = randomContent(2 * MIB);
    const b = randomContent(2 * MIB);
    const lie = await rawUpload(server.url, b, { sha256: sha256(a) });
    expect(lie.status).toBe(460);
    expect(lie.body).toMatch(/sha256/);
    expect((await head(lie.url)).status).toBe(404);
    expect((await fetch(lie.url)).status).toBe(404);
    const kept = idOf(lie.url);
    expect((await storage.inventory()).filter((name) => name.includes(kept))).toEqual([]);

    const honest = await post(server.url, a.length, { sha256: sha256(a) });
    expect(honest.offset).toBe('0');
    expect((await patch(honest.url, 0, a)).status).toBe(204);
    expect(await storage.storedSha256(idOf(honest.url))).toBe(sha256(a));

    const hit = await post(server.url, a.length, { sha256: sha256(a) });
    expect(hit.offset).toBe(String(a.length));
    expect(await storage.storedSha256(idOf(hit.url))).toBe(sha256(a));
  });

  test('a wrong md5 is caught across several PATCHes too', async () => {
    const data = randomContent(3 * MIB);
    const created = await post(server.url, data.length, { md5: md5(randomContent(10)) });
    expect((await patch(created.url, 0, data.subarray(0, MIB))).status).toBe(204);
    expect((await patch(created.url, MIB, data.subarray(MIB, 2 * MIB))).status).toBe(204);
    expect((await patch(created.url, 2 * MIB, data.subarray(2 * MIB))).status).toBe(460);
    expect((await head(created.url)).status).toBe(404);
    const kept = idOf(created.url);
    expect((await storage.inventory()).filter((name) => name.includes(kept))).toEqual([]);
  });

  test('deleting the first upload keeps the deduplicated one; deleting both frees the content', async () => {
    const data = randomContent(MIB + 3);
    const first = await rawUpload(server.url, data, { sha256: sha256(data) });
    const second = await post(server.url, data.length, { sha256: sha256(data) });
    expect(second.offset).toBe(String(data.length));

    expect((await fetch(first.url, { method: 'DELETE', headers: TUS })).status).toBe(204);
    expect((await head(first.url)).status).toBe(404);
    expect(await offsetOf(second.url)).toBe(data.length);
    expect(await storage.storedSha256(idOf(second.url))).toBe(sha256(data));
    expect(await downloadedSha256(second.url)).toBe(sha256(data));
    expect((await fetch(first.url)).status).toBe(404);
    // The bytes are still shared, so a third upload of them is still a hit.
    const third = await post(server.url, data.length, { sha256: sha256(data) });
    expect(third.offset).toBe(String(data.length));

    for (const url of [second.url, third.url]) {
      expect((await fetch(url, { method: 'DELETE', headers: TUS })).status).toBe(204);
    }
    const left = (await storage.inventory()).filter((name) =>
      [first.url, second.url, third.url].some((url) => name.includes(idOf(url))),
    );
    expect(left).toEqual([]);
    const after = await post(server.url, data.length, { sha256: sha256(data) });
    expect(after.offset).toBe('0');
  });

  test('ten clients uploading the same new content at once all succeed and one entry remains', async () => {
    const data = randomContent(2 * MIB + 5);
    const copiesBefore = (await contentCopies(storage)).length;
    const urls = await Promise.all(
      Array.from({ length: 10 }, () =>
        tusClientUpload(server.url, data, {
          metadata: { sha256: sha256(data) },
          chunkSize: MIB,
          headers: owner,
        }),
      ),
    );
    for (const url of urls) expect(await storage.storedSha256(idOf(url))).toBe(sha256(data));
    // Copies that finished after the first were linked to it and freed.
    expect((await contentCopies(storage)).length).toBe(copiesBefore + 1);
    if (redis) {
      // One entry for the stored content, one for what this owner has of it.
      const keys = await redis.keys(`*sha256:${sha256(data)}*`);
      const bucket = storage.env.S3_BUCKET;
      expect(keys.map((key) => key.split(':').slice(0, 4).join(':')).sort()).toEqual([
        `tus:dedupe:${bucket}:global`,
        `tus:dedupe:${bucket}:owned`,
      ]);
      const shared = keys.find((key) => key.includes(':global:')) ?? '';
      const entry = JSON.parse((await redis.get(shared)) ?? '{}');
      expect(entry).toMatchObject({ sha256: sha256(data), size: data.length });
      // No upload claimed an md5: none was computed.
      expect(entry.md5).toBeUndefined();
      expect(urls.map(idOf)).toContain(entry.owner);
      const owned = keys.find((key) => key.includes(':owned:')) ?? '';
      expect(urls.map(idOf)).toContain(JSON.parse((await redis.get(owned)) ?? '{}').uploadId);
    }
    const hit = await post(server.url, data.length, { sha256: sha256(data) });
    expect(hit.offset).toBe(String(data.length));
  });

  test('a lost index is rebuilt from storage: flush/restart → miss or hit after reindex', async () => {
    const data = randomContent(100_000);
    await rawUpload(server.url, data, { sha256: sha256(data) });
    if (redis) {
      await redis.flushdb();
      expect((await post(server.url, data.length, { sha256: sha256(data) })).offset).toBe('0');
      await promisify(execFile)(process.execPath, ['dist/server/reindex.js'], {
        cwd: ROOT,
        env: { PATH: process.env.PATH, ...storage.env },
      });
    } else {
      // The in-process index is rebuilt from storage at start, after the server listens.
      await server.stop();
      server = await startServer(env);
      await server.waitForLog(
        (line) => line.msg === 'dedupe index rebuilt from storage',
        'the dedupe index rebuilt',
      );
    }
    expect((await post(server.url, data.length, { sha256: sha256(data) })).offset).toBe(
      String(data.length),
    );
  });
});

describe('dedupe off', () => {
  const stack = serverOnStorage('file', { DEDUPE: 'off' });

  test('DEDUPE=off never answers a creation as finished', async () => {
    const data = randomContent(1000);
    await rawUpload(stack.server.url, data, { sha256: sha256(data) });
    const again = await post(stack.server.url, data.length, { sha256: sha256(data) });
    expect(again.status).toBe(201);
    expect(again.offset).toBe('0');
  });
});
