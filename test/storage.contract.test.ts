/**
 * One contract every storage backend keeps, run against each through the UploadStorage
 * interface and its tus DataStore (as tus-node-server's packages/utils/src/test/stores.ts runs
 * one suite against every store): the file store on a temporary directory, and the S3 store on
 * the run's MinIO, with its in-process metadata cache and with the shared one in Redis, and on
 * the run's VersityGW (an S3 that answers as AWS does where MinIO does not).
 * Every byte comparison is the sha256 of what was written against that of what was read.
 */
import { stat as fsStat, readdir } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { HeadBucketCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { MetadataValue } from '@tus/s3-store';
import { IoRedisKvStore } from '@tus/server';
import { type DataStore, Upload } from '@tus/utils';
import { Redis } from 'ioredis';
import { FileStorage } from '../storage/file/FileStorage.ts';
import { S3Storage } from '../storage/s3/S3Storage.ts';
import {
  type ByteRange,
  type ContentRecord,
  FINISHED_KEY,
  type UploadStorage,
} from '../storage/types.ts';
import {
  createTestStorage,
  randomContent,
  type StorageKind,
  s3ClientFor,
  s3ServicesOf,
  sha256,
  sha256OfStream,
  type TestStorage,
} from './harness/stack.ts';

const MIB = 1024 * 1024;
/** The smallest S3 part, and the part size the S3 storages here are given. */
const PART = 5 * MIB;

/** One directory or bucket of a backend, with its storage and a direct look at what it holds. */
type Site = {
  storage: UploadStorage;
  /** Another instance on the same directory or bucket, as a restarted server would open it. */
  reopen(): UploadStorage;
  /** Whether the directory or bucket exists, looked at without the storage. */
  exists(): Promise<boolean>;
  /** The names the directory or bucket holds, and `multipart:<key>` per unfinished multipart upload. */
  inventory(): Promise<string[]>;
};

type Backend = {
  kind: StorageKind;
  /** A fresh directory or bucket, not created yet, that cleanup() removes. */
  site(expirySeconds?: number): Site;
  /** Closes every storage opened here and removes every directory and bucket. */
  cleanup(): Promise<void>;
};

/** Backend factories: one per configuration the server can start. */
function backend(kind: StorageKind): Backend {
  const places: TestStorage[] = [];
  const opened: UploadStorage[] = [];
  const redisClients: Redis[] = [];

  const open = (place: TestStorage, expirySeconds: number): UploadStorage => {
    let storage: UploadStorage;
    if (kind === 'file') {
      storage = new FileStorage({ directory: directoryOf(place), expirySeconds });
    } else {
      const services = s3ServicesOf(kind);
      let metadataCache: IoRedisKvStore<MetadataValue> | undefined;
      if (place.env.REDIS_URL) {
        const redis = new Redis(place.env.REDIS_URL, { maxRetriesPerRequest: 1 });
        redisClients.push(redis);
        // The key prefix the server gives it (server/compose.ts).
        metadataCache = new IoRedisKvStore<MetadataValue>(redis, 'tus:s3meta:');
      }
      storage = new S3Storage({
        endpoint: services.s3Endpoint,
        bucket: place.env.S3_BUCKET ?? '',
        region: 'us-east-1',
        credentials: {
          accessKeyId: services.s3AccessKeyId,
          secretAccessKey: services.s3SecretAccessKey,
        },
        partSize: PART,
        expirySeconds,
        metadataCache,
      });
    }
    opened.push(storage);
    return storage;
  };

  return {
    kind,
    site(expirySeconds = 0) {
      const place = createTestStorage(kind);
      places.push(place);
      const storage = open(place, expirySeconds);
      if (kind === 'file') {
        const directory = directoryOf(place);
        return {
          storage,
          reopen: () => open(place, 0),
          exists: async () =>
            (await fsStat(directory).catch(() => undefined))?.isDirectory() ?? false,
          inventory: async () => (await readdir(directory)).sort(),
        };
      }
      return {
        storage,
        reopen: () => open(place, 0),
        async exists() {
          const client = s3ClientFor(s3ServicesOf(kind));
          try {
            await client.send(new HeadBucketCommand({ Bucket: place.env.S3_BUCKET }));
            return true;
          } catch {
            return false;
          } finally {
            client.destroy();
          }
        },
        inventory: () => place.inventory(),
      };
    },
    async cleanup() {
      await Promise.all(opened.map((storage) => storage.close()));
      for (const redis of redisClients) redis.disconnect();
      await Promise.all(places.map((place) => place.cleanup()));
    },
  };
}

/** The file store's directory: below the temporary one, so that init() has to create it. */
function directoryOf(place: TestStorage): string {
  return path.join(place.env.DATA_DIR ?? '', 'uploads', 'data');
}

function sum(sizes: number[]): number {
  return sizes.reduce((a, b) => a + b, 0);
}

/** Upload ids as the server makes them: 32 lower-case hex characters. */
function newId(): string {
  return randomContent(16).toString('hex');
}

/** A request body: the bytes in 64 KiB chunks, as an HTTP body arrives (none for no bytes). */
function body(data: Buffer): Readable {
  const chunk = 64 * 1024;
  function* chunks() {
    for (let start = 0; start < data.length; start += chunk)
      yield data.subarray(start, start + chunk);
  }
  return Readable.from(chunks(), { objectMode: false });
}

async function create(
  store: DataStore,
  size: number | undefined,
  metadata: Record<string, string | null> = {},
): Promise<string> {
  const id = newId();
  await store.create(new Upload({ id, size, offset: 0, metadata }));
  return id;
}

/**
 * Writes `data` from `from` on in pieces of the given sizes; after each one the returned offset
 * and getUpload's offset are where that piece ended.
 */
async function writeInPieces(
  store: DataStore,
  id: string,
  data: Buffer,
  sizes: number[],
  from = 0,
): Promise<number> {
  let offset = from;
  for (const size of sizes) {
    const piece = data.subarray(offset, offset + size);
    expect(piece.length).toBe(size);
    const next = await store.write(body(piece), id, offset);
    expect({ after: size, offset: next }).toEqual({ after: size, offset: offset + size });
    offset = next;
    expect({ after: size, offset: (await store.getUpload(id)).offset }).toEqual({
      after: size,
      offset,
    });
  }
  return offset;
}

/** A finished upload of `data`, written in one piece; returns its id. */
async function finishedUpload(
  storage: UploadStorage,
  data: Buffer,
  metadata: Record<string, string | null> = {},
): Promise<string> {
  const id = await create(storage.datastore, data.length, metadata);
  if (data.length > 0) await writeInPieces(storage.datastore, id, data, [data.length]);
  return id;
}

async function readSha256(storage: UploadStorage, id: string, range?: ByteRange) {
  return sha256OfStream(await storage.read(id, range));
}

/** What sha256 of the range of `data` is: the bytes an inclusive range names. */
function sha256Of(data: Buffer, range?: ByteRange): string {
  return sha256(range ? data.subarray(range.start, range.end + 1) : data);
}

async function expectFinished(storage: UploadStorage, id: string, data: Buffer) {
  const upload = await storage.datastore.getUpload(id);
  expect({ offset: upload.offset, size: upload.size }).toEqual({
    offset: data.length,
    size: data.length,
  });
  expect((await storage.stat(id))?.size).toBe(data.length);
  expect(await readSha256(storage, id)).toBe(sha256(data));
}

/** A tus "not found": what HEAD, PATCH and DELETE answer 404 with. */
async function expectNotFound(promise: Promise<unknown>) {
  await expect(promise).rejects.toMatchObject({ status_code: 404 });
}

function record(data: Buffer): ContentRecord {
  return { sha256: sha256(data), md5: randomContent(16).toString('hex'), size: data.length };
}

async function refsOf(storage: UploadStorage, owner: string) {
  const found: Record<string, ContentRecord> = {};
  for await (const ref of storage.refs.all()) {
    if (ref.owner === owner) found[ref.uploadId] = ref.record;
  }
  return found;
}

const BACKENDS: StorageKind[] = ['file', 's3', 's3+redis', 's3-versity'];

describe.each(BACKENDS)('storage contract on %s', (kind) => {
  const factory = backend(kind);
  let site: Site;
  let storage: UploadStorage;

  beforeAll(async () => {
    site = factory.site();
    storage = site.storage;
    await storage.init();
  });
  afterAll(() => factory.cleanup());

  test('init() creates the directory or bucket and is idempotent; check() succeeds', async () => {
    const fresh = factory.site();
    if (kind !== 'file') {
      // (The file store makes its directory as soon as it is constructed.)
      expect(await fresh.exists()).toBe(false);
      await expect(fresh.storage.check()).rejects.toThrow();
    }
    await fresh.storage.init();
    expect(await fresh.exists()).toBe(true);
    await expect(fresh.storage.check()).resolves.toBeUndefined();

    const data = randomContent(1000);
    const id = await finishedUpload(fresh.storage, data);
    // Again on the same instance, and on another one as a second server starting up.
    await expect(fresh.storage.init()).resolves.toBeUndefined();
    const other = fresh.reopen();
    await expect(other.init()).resolves.toBeUndefined();
    await expect(other.check()).resolves.toBeUndefined();
    await expectFinished(fresh.storage, id, data);
    await expectFinished(other, id, data);
  });

  test('an upload written in pieces (a tail under 5 MiB, an empty piece) reports each offset and reads back byte for byte', async () => {
    const metadata = {
      filename: 'Menü ✓ report.bin',
      filetype: 'application/octet-stream',
      flag: null,
    };
    // On S3: part 1 + a 1 MiB tail; an empty PATCH; the tail grows; part 2 + a 22-byte tail;
    // the final part, smaller than 5 MiB.
    const sizes = [PART + MIB + 5, 0, 17, 4 * MIB, MIB + 3];
    const data = randomContent(sum(sizes));
    const id = await create(storage.datastore, data.length, metadata);
    const created = await storage.datastore.getUpload(id);
    expect({ offset: created.offset, size: created.size, metadata: created.metadata }).toEqual({
      offset: 0,
      size: data.length,
      metadata,
    });

    await writeInPieces(storage.datastore, id, data, sizes.slice(0, 1));
    // The case under test: S3 holds the bytes past the first part as an incomplete tail.
    if (kind !== 'file') expect(await site.inventory()).toContain(`${id}.part`);
    await writeInPieces(storage.datastore, id, data, sizes.slice(1, 3), sum(sizes.slice(0, 1)));
    if (kind !== 'file') expect(await site.inventory()).toContain(`${id}.part`);
    expect(await storage.stat(id)).toBeUndefined();
    await writeInPieces(storage.datastore, id, data, sizes.slice(3), sum(sizes.slice(0, 3)));

    await expectFinished(storage, id, data);
    expect((await storage.datastore.getUpload(id)).metadata).toEqual(metadata);
    // Another instance (a restarted server, an empty in-process cache) reads the same.
    await expectFinished(site.reopen(), id, data);
  });

  test('stat() of a finished upload: size, a quoted ETag that stays for the same bytes, lastModified, metadata', async () => {
    const started = Date.now();
    const metadata = { filename: 'a.txt', filetype: 'text/plain', empty: null };
    const data = randomContent(PART + 123);
    const id = await finishedUpload(storage, data, metadata);
    const stat = await storage.stat(id);
    expect(stat).toBeDefined();
    if (!stat) return;
    expect(stat.size).toBe(data.length);
    expect(stat.etag).toMatch(/^"[^"]+"$/);
    expect(stat.metadata).toEqual(metadata);
    // (A Date of Node's realm, not of jest's sandbox, so no toBeInstanceOf.)
    expect(Object.prototype.toString.call(stat.lastModified)).toBe('[object Date]');
    // S3 dates have whole seconds.
    expect(stat.lastModified.getTime()).toBeGreaterThanOrEqual(started - 1000);
    expect(stat.lastModified.getTime()).toBeLessThanOrEqual(Date.now() + 1000);

    await sleep(1100);
    const again = await storage.stat(id);
    expect(again?.etag).toBe(stat.etag);
    expect(again?.lastModified.getTime()).toBe(stat.lastModified.getTime());
    expect((await site.reopen().stat(id))?.etag).toBe(stat.etag);

    // Other bytes of the same length have another validator.
    const other = await finishedUpload(storage, randomContent(data.length), metadata);
    expect((await storage.stat(other))?.etag).not.toBe(stat.etag);
  });

  test('read() of an inclusive range returns exactly those bytes', async () => {
    const data = randomContent(PART + MIB + 11);
    const id = await finishedUpload(storage, data);
    const last = data.length - 1;
    const ranges: ByteRange[] = [
      { start: 0, end: 0 },
      { start: 0, end: 99 },
      { start: 1, end: 1 },
      // Across the boundary of S3's first part.
      { start: PART - 1000, end: PART + 1000 },
      { start: PART, end: PART },
      { start: 12_345, end: last - 6789 },
      { start: last, end: last },
      { start: last - 10, end: last },
      { start: 0, end: last },
    ];
    for (const range of ranges) {
      expect({ range, sha256: await readSha256(storage, id, range) }).toEqual({
        range,
        sha256: sha256Of(data, range),
      });
    }
  });

  test('stat() of an unfinished, a length-deferred or an unknown upload is undefined', async () => {
    const unfinished = await create(storage.datastore, 2 * PART);
    expect(await storage.stat(unfinished)).toBeUndefined();
    const data = randomContent(PART + 10);
    await writeInPieces(storage.datastore, unfinished, data, [data.length]);
    expect(await storage.stat(unfinished)).toBeUndefined();

    const deferred = await create(storage.datastore, undefined);
    await writeInPieces(storage.datastore, deferred, data, [1000]);
    expect(await storage.stat(deferred)).toBeUndefined();

    expect(await storage.stat(newId())).toBeUndefined();
    await expectNotFound(storage.datastore.getUpload(newId()));
  });

  test('a 0-byte upload is finished at creation and reads back empty; an empty write adds nothing', async () => {
    const empty = Buffer.alloc(0);
    const id = await create(storage.datastore, 0, { filename: 'empty.txt' });
    await expectFinished(storage, id, empty);
    // creation-with-upload with an empty body
    expect(await storage.datastore.write(body(empty), id, 0)).toBe(0);
    await expectFinished(storage, id, empty);
    const stat = await storage.stat(id);
    expect(stat?.etag).toMatch(/^"[^"]+"$/);
    expect(stat?.metadata).toEqual({ filename: 'empty.txt' });
  });

  test('deferred length: write, declare the length, write the rest: finished, bytes equal', async () => {
    // On S3 the first piece waits as a tail, the second makes a part with it, the last finishes.
    const sizes = [3 * MIB + 1, 4 * MIB, MIB + 7];
    const data = randomContent(sum(sizes));
    const id = await create(storage.datastore, undefined, { filename: 'deferred.bin' });
    expect((await storage.datastore.getUpload(id)).size).toBeUndefined();

    const written = await writeInPieces(storage.datastore, id, data, sizes.slice(0, 2));
    const before = await storage.datastore.getUpload(id);
    expect({ offset: before.offset, size: before.size }).toEqual({
      offset: written,
      size: undefined,
    });
    expect(await storage.stat(id)).toBeUndefined();

    await storage.datastore.declareUploadLength(id, data.length);
    const declared = await storage.datastore.getUpload(id);
    expect({ offset: declared.offset, size: declared.size }).toEqual({
      offset: written,
      size: data.length,
    });
    // What another instance (or, with Redis, the shared cache) holds has the length too.
    expect((await site.reopen().datastore.getUpload(id)).size).toBe(data.length);

    await writeInPieces(storage.datastore, id, data, sizes.slice(2), written);
    await expectFinished(storage, id, data);
    expect((await storage.stat(id))?.metadata).toEqual({ filename: 'deferred.bin' });
  });

  test('deferred length: declaring length 0 on an empty upload finishes it', async () => {
    const id = await create(storage.datastore, undefined);
    await storage.datastore.declareUploadLength(id, 0);
    await expectFinished(storage, id, Buffer.alloc(0));
    await expectFinished(site.reopen(), id, Buffer.alloc(0));
  });

  test('refs: add/get/isReferenced/remove/all round-trip', async () => {
    const owner = newId();
    const linked = newId();
    const elsewhere = newId();
    const own = record(randomContent(10));
    const shared = record(randomContent(20));
    expect(await storage.refs.get(owner, owner)).toBeUndefined();
    expect(await storage.refs.isReferenced(owner)).toBe(false);

    await storage.refs.add(owner, owner, own);
    await storage.refs.add(owner, linked, shared);
    await storage.refs.add(elsewhere, elsewhere, shared);
    expect(await storage.refs.get(owner, owner)).toEqual(own);
    expect(await storage.refs.get(owner, linked)).toEqual(shared);
    expect(await storage.refs.get(owner, elsewhere)).toBeUndefined();
    expect(await storage.refs.isReferenced(owner)).toBe(true);
    expect(await storage.refs.isReferenced(elsewhere)).toBe(true);
    expect(await refsOf(storage, owner)).toEqual({ [owner]: own, [linked]: shared });

    await storage.refs.remove(owner, linked);
    expect(await storage.refs.get(owner, linked)).toBeUndefined();
    expect(await storage.refs.isReferenced(owner)).toBe(true);
    expect(await refsOf(storage, owner)).toEqual({ [owner]: own });

    await storage.refs.remove(owner, owner);
    // Removing what is gone is no error.
    await storage.refs.remove(owner, owner);
    expect(await storage.refs.isReferenced(owner)).toBe(false);
    expect(await refsOf(storage, owner)).toEqual({});
    expect(await storage.refs.get(elsewhere, elsewhere)).toEqual(shared);
    expect(await refsOf(storage, elsewhere)).toEqual({ [elsewhere]: shared });
  });

  test('refs: an owner stays referenced until its last reference goes', async () => {
    const owner = newId();
    const ids = [owner, newId(), newId(), newId()];
    const shared = record(randomContent(30));
    for (const id of ids) await storage.refs.add(owner, id, shared);
    expect(Object.keys(await refsOf(storage, owner)).sort()).toEqual([...ids].sort());
    for (const [index, id] of ids.entries()) {
      expect(await storage.refs.isReferenced(owner)).toBe(true);
      await storage.refs.remove(owner, id);
      expect(await storage.refs.isReferenced(owner)).toBe(index < ids.length - 1);
    }
  });

  test("createLinked: the linked id reads the owner's bytes; removeRecord keeps them, removeContent removes them", async () => {
    const data = randomContent(PART + 77);
    const owner = await finishedUpload(storage, data, { filename: 'original.bin' });
    const ownerStat = await storage.stat(owner);
    const linked = newId();
    await storage.createLinked(
      new Upload({ id: linked, size: data.length, offset: 0, metadata: { filename: 'copy.bin' } }),
      owner,
    );

    expect(await storage.contentKeyOf(linked)).toBe(owner);
    expect(await storage.contentKeyOf(owner)).toBe(owner);
    expect(await storage.contentSize(owner)).toBe(data.length);
    await expectFinished(storage, linked, data);
    const stat = await storage.stat(linked);
    // The record keeps when the linked upload finished: its validators are its own.
    expect(stat?.metadata).toEqual({ filename: 'copy.bin', [FINISHED_KEY]: expect.any(String) });
    expect(stat?.etag).toMatch(/^"[^"]+"$/);
    expect(stat?.etag).not.toBe(ownerStat?.etag);
    expect(stat?.lastModified.toISOString()).toBe(stat?.metadata[FINISHED_KEY]);
    const range = { start: PART - 5, end: PART + 5 };
    expect(await readSha256(storage, linked, range)).toBe(sha256Of(data, range));
    // Another instance sees the link too.
    expect(await site.reopen().contentKeyOf(linked)).toBe(owner);

    await storage.removeRecord(linked);
    expect(await storage.stat(linked)).toBeUndefined();
    await expectNotFound(storage.datastore.getUpload(linked));
    await expectFinished(storage, owner, data);
    expect(await storage.contentSize(owner)).toBe(data.length);

    await storage.removeContent(owner);
    expect(await storage.contentSize(owner)).toBeUndefined();
    expect(await storage.stat(owner)).toBeUndefined();
  });

  test("createLinked replaces a finished upload's own record (the dedupe path)", async () => {
    const data = randomContent(MIB + 5);
    const owner = await finishedUpload(storage, data, { filename: 'first.bin' });
    const duplicate = await finishedUpload(storage, data, { filename: 'second.bin' });
    expect(await storage.contentKeyOf(duplicate)).toBe(duplicate);

    await storage.createLinked(await storage.datastore.getUpload(duplicate), owner);
    await storage.removeContent(duplicate);

    expect(await storage.contentKeyOf(duplicate)).toBe(owner);
    expect(await storage.contentSize(duplicate)).toBeUndefined();
    await expectFinished(storage, duplicate, data);
    expect((await storage.stat(duplicate))?.metadata).toEqual({
      filename: 'second.bin',
      [FINISHED_KEY]: expect.any(String),
    });
    await expectFinished(site.reopen(), duplicate, data);
    await expectFinished(storage, owner, data);
  });

  test('markFinished keeps the finish time in the record: stat() answers with it, on any instance', async () => {
    const data = randomContent(3000);
    const id = await finishedUpload(storage, data, { filename: 'own.bin' });
    const before = await storage.stat(id);
    const finished = await storage.markFinished(await storage.datastore.getUpload(id));
    const at = finished.metadata?.[FINISHED_KEY] ?? '';
    expect(Date.parse(at)).not.toBeNaN();
    for (const instance of [storage, site.reopen()]) {
      const stat = await instance.stat(id);
      expect(stat?.lastModified.toISOString()).toBe(at);
      expect(stat?.metadata).toEqual({ filename: 'own.bin', [FINISHED_KEY]: at });
      expect(stat?.etag).toMatch(/^"[^"]+"$/);
      expect(stat?.etag).not.toBe(before?.etag);
    }
    // The upload is still the finished one it was.
    await expectFinished(storage, id, data);
    // A linked copy made from the stamped upload keeps that time.
    const linked = newId();
    await storage.createLinked(new Upload({ ...finished, id: linked }), id);
    expect((await storage.stat(linked))?.lastModified.toISOString()).toBe(at);
    expect((await storage.stat(linked))?.etag).not.toBe((await storage.stat(id))?.etag);
  });

  test('datastore.remove of an unfinished upload removes it: getUpload rejects with 404', async () => {
    const data = randomContent(PART + MIB + 9);
    const id = await create(storage.datastore, 3 * PART);
    await writeInPieces(storage.datastore, id, data, [data.length]);
    expect((await site.inventory()).some((name) => name.includes(id))).toBe(true);

    await storage.datastore.remove(id);
    await expectNotFound(storage.datastore.getUpload(id));
    await expectNotFound(site.reopen().datastore.getUpload(id));
    expect(await storage.stat(id)).toBeUndefined();
    expect((await site.inventory()).filter((name) => name.includes(id))).toEqual([]);

    await expectNotFound(storage.datastore.remove(newId()));
  });

  test('datastore.remove of a finished upload removes its bytes and record: 404 after, nothing left', async () => {
    // One upload whose multipart upload was completed, one finished at creation (0 bytes), one
    // stamped finished (its validators), one whose record was never told it finished.
    const data = randomContent(PART + 3 * MIB + 1);
    const multipart = await finishedUpload(storage, data);
    const empty = await create(storage.datastore, 0);
    const stamped = await finishedUpload(storage, randomContent(1234));
    await storage.markFinished(await storage.datastore.getUpload(stamped));
    await expectFinished(storage, multipart, data);
    for (const id of [multipart, empty, stamped]) {
      expect((await site.inventory()).some((name) => name.includes(id))).toBe(true);
      await storage.datastore.remove(id);
      await expectNotFound(storage.datastore.getUpload(id));
      await expectNotFound(site.reopen().datastore.getUpload(id));
      await expectNotFound(storage.datastore.remove(id));
      expect(await storage.stat(id)).toBeUndefined();
      expect((await site.inventory()).filter((name) => name.includes(id))).toEqual([]);
    }
  });

  test('expiry: deleteExpired() removes an unfinished upload older than the period, keeps a finished one', async () => {
    const expiring = factory.site(1);
    const store = expiring.storage.datastore;
    await expiring.storage.init();
    expect(store.getExpiration()).toBe(1000);

    const partial = randomContent(PART + MIB + 5);
    const unfinished = await create(store, 4 * PART);
    await writeInPieces(store, unfinished, partial, [partial.length]);
    const done = randomContent(1000);
    const finished = await finishedUpload(expiring.storage, done);
    const empty = await create(store, 0);
    // Both are read (and so cached) before the sweep.
    expect((await store.getUpload(unfinished)).offset).toBe(partial.length);
    expect((await store.getUpload(finished)).offset).toBe(done.length);

    await sleep(2100);
    expect(await store.deleteExpired()).toBe(1);

    await expectNotFound(store.getUpload(unfinished));
    await expectNotFound(expiring.reopen().datastore.getUpload(unfinished));
    expect(await expiring.storage.stat(unfinished)).toBeUndefined();
    expect((await expiring.inventory()).filter((name) => name.includes(unfinished))).toEqual([]);
    await expectFinished(expiring.storage, finished, done);
    await expectFinished(expiring.storage, empty, Buffer.alloc(0));
    // Nothing is left to sweep.
    expect(await store.deleteExpired()).toBe(0);
    await expectFinished(expiring.storage, finished, done);
  });
});
