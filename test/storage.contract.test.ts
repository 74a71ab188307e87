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
import {
  AbortMultipartUploadCommand,
  HeadBucketCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { type MetadataValue, S3Store } from '@tus/s3-store';
import { IoRedisKvStore } from '@tus/server';
import { type DataStore, type KvStore, Upload } from '@tus/utils';
import { Redis } from 'ioredis';
import { currentContext, inContext } from '../request/context.ts';
import { FileStorage } from '../storage/file/FileStorage.ts';
import type { S3Observer } from '../storage/s3/outages.ts';
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
  /** S3 only: the bucket. */
  bucket?: string;
  /** S3 only: a plain @tus/s3-store S3Store on the same bucket, as upstream reads and writes it. */
  plainStore?(): PlainS3Store;
};

/**
 * @tus/s3-store as it comes, without a cache (every read goes to the bucket), configured as
 * S3Storage configures its client: what an upstream change of the `.info` format would break.
 */
class PlainS3Store extends S3Store {
  close(): void {
    this.client.destroy();
  }
}

/** A KvStore that keeps nothing, so a plain S3Store reads `<id>.info` every time. */
const NO_CACHE: KvStore<MetadataValue> = {
  get: async () => undefined,
  set: async () => undefined,
  delete: async () => undefined,
};

type Backend = {
  kind: StorageKind;
  /** A fresh directory or bucket, not created yet, that cleanup() removes. */
  site(expirySeconds?: number, observe?: S3Observer): Site;
  /** Closes every storage opened here and removes every directory and bucket. */
  cleanup(): Promise<void>;
};

/** Backend factories: one per configuration the server can start. */
function backend(kind: StorageKind): Backend {
  const places: TestStorage[] = [];
  const opened: UploadStorage[] = [];
  const redisClients: Redis[] = [];
  const plainStores: PlainS3Store[] = [];

  const open = (place: TestStorage, expirySeconds: number, observe?: S3Observer): UploadStorage => {
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
        observe,
      });
    }
    opened.push(storage);
    return storage;
  };

  return {
    kind,
    site(expirySeconds = 0, observe?: S3Observer) {
      const place = createTestStorage(kind);
      places.push(place);
      const storage = open(place, expirySeconds, observe);
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
      const services = s3ServicesOf(kind);
      const bucket = place.env.S3_BUCKET ?? '';
      return {
        storage,
        reopen: () => open(place, 0, observe),
        bucket,
        plainStore() {
          const plain = new PlainS3Store({
            partSize: PART,
            cache: NO_CACHE,
            s3ClientConfig: {
              bucket,
              endpoint: services.s3Endpoint,
              region: 'us-east-1',
              credentials: {
                accessKeyId: services.s3AccessKeyId,
                secretAccessKey: services.s3SecretAccessKey,
              },
              forcePathStyle: true,
              requestChecksumCalculation: 'WHEN_REQUIRED',
              responseChecksumValidation: 'WHEN_REQUIRED',
            },
          });
          plainStores.push(plain);
          return plain;
        },
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
      for (const plain of plainStores) plain.close();
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

/**
 * `data` written from `offset` as a PATCH writes it: in a request's context that declared the
 * body's length, so the S3 store streams parts straight from the body (its own path, not
 * @tus/s3-store's temporary files).
 */
function writeAsRequest(
  store: DataStore,
  id: string,
  data: Buffer,
  offset: number,
  stream: Readable = body(data),
) {
  return inContext(() => {
    const context = currentContext();
    if (context) context.bodyLength = data.length;
    return store.write(stream, id, offset);
  });
}

/** A body that hands over `head`, then waits for `go` before the rest, then ends. */
function pausedBody(head: Buffer, rest: Buffer, go: Promise<void>) {
  let headTaken!: () => void;
  const taken = new Promise<void>((resolve) => {
    headTaken = resolve;
  });
  async function* chunks() {
    yield head;
    // The store asked for more: it has taken the head.
    headTaken();
    await go;
    if (rest.length > 0) yield rest;
  }
  return { stream: Readable.from(chunks(), { objectMode: false }), taken };
}

/** A body that sends `data`, then is destroyed (a client gone mid-request); with `error`, fails. */
function brokenBody(data: Buffer, error?: Error): Readable {
  let sent = 0;
  const chunk = 64 * 1024;
  return new Readable({
    read() {
      if (sent >= data.length) {
        this.destroy(error);
        return;
      }
      this.push(data.subarray(sent, sent + chunk));
      sent += chunk;
    },
  });
}

/** What an upload just created in `bucket` reads as, in the fields `view` keeps. */
function createdView(
  bucket: string,
  id: string,
  size: number,
  metadata: Record<string, string | null>,
  created: Upload,
) {
  return {
    size,
    offset: 0,
    sizeIsDeferred: false,
    metadata,
    creation_date: created.creation_date,
    storage: { type: 's3', path: id, bucket },
  };
}

/** What tus reads of an upload: what the two S3 stores must agree on. */
function view(upload: Upload) {
  return {
    size: upload.size,
    offset: upload.offset,
    sizeIsDeferred: upload.sizeIsDeferred,
    metadata: upload.metadata,
    creation_date: upload.creation_date,
    storage: upload.storage,
  };
}

/** Part numbers and sizes of the unfinished multipart upload of `id`, read straight from S3. */
async function partsOf(kind: StorageKind, bucket: string, id: string) {
  const client = s3ClientFor(s3ServicesOf(kind));
  try {
    const { Uploads = [] } = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    const upload = Uploads.find((u) => u.Key === id);
    if (!upload) return undefined;
    const { Parts = [] } = await client.send(
      new ListPartsCommand({ Bucket: bucket, Key: id, UploadId: upload.UploadId }),
    );
    return Parts.map((part) => ({ number: part.PartNumber, size: part.Size }));
  } finally {
    client.destroy();
  }
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

  // What @tus/utils' shared store suite (packages/utils/src/test/stores.ts) checks of every
  // store, where the tests above do not already.

  test('the datastore reports the extensions tus serves; create() answers the Upload with where it is stored', async () => {
    const store = storage.datastore;
    for (const extension of [
      'creation',
      'creation-with-upload',
      'creation-defer-length',
      'termination',
      'expiration',
    ]) {
      expect({ extension, has: store.hasExtension(extension) }).toEqual({ extension, has: true });
    }
    expect(typeof store.write).toBe('function');
    expect(typeof store.getUpload).toBe('function');

    const id = newId();
    const created = await store.create(
      new Upload({ id, size: 1000, offset: 0, metadata: { filename: '世界_plan.pdf', x: null } }),
    );
    expect(created).toBeInstanceOf(Upload);
    expect(created.storage?.type).toBe(kind === 'file' ? 'file' : 's3');
    expect(created.storage?.path).toEqual(expect.any(String));
    expect(created.storage?.path).toContain(id);
    expect({ offset: created.offset, sizeIsDeferred: created.sizeIsDeferred }).toEqual({
      offset: 0,
      sizeIsDeferred: false,
    });
    // What the record says of where it is stored is the upload's own place, not a link.
    expect(await storage.contentKeyOf(id)).toBe(id);
    const read = await store.getUpload(id);
    expect({ sizeIsDeferred: read.sizeIsDeferred, metadata: read.metadata }).toEqual({
      sizeIsDeferred: false,
      metadata: { filename: '世界_plan.pdf', x: null },
    });
  });

  test('a deferred length is stored as deferred (sizeIsDeferred) until declared, on any instance', async () => {
    const id = await create(storage.datastore, undefined, { filename: 'later.bin' });
    for (const instance of [storage, site.reopen()]) {
      const upload = await instance.datastore.getUpload(id);
      expect({ size: upload.size, sizeIsDeferred: upload.sizeIsDeferred }).toEqual({
        size: undefined,
        sizeIsDeferred: true,
      });
    }
    await storage.datastore.declareUploadLength(id, 10);
    for (const instance of [storage, site.reopen()]) {
      const upload = await instance.datastore.getUpload(id);
      expect({ size: upload.size, sizeIsDeferred: upload.sizeIsDeferred }).toEqual({
        size: 10,
        sizeIsDeferred: false,
      });
    }
    const data = randomContent(10);
    await writeInPieces(storage.datastore, id, data, [4, 6]);
    await expectFinished(storage, id, data);
  });

  test('write() and declareUploadLength() of an unknown upload reject and create nothing', async () => {
    const before = await site.inventory();
    const unknown = newId();
    await expect(
      storage.datastore.write(body(randomContent(1000)), unknown, 0),
    ).rejects.toBeDefined();
    await expect(
      writeAsRequest(storage.datastore, unknown, randomContent(1000), 0),
    ).rejects.toBeDefined();
    await expect(storage.datastore.declareUploadLength(unknown, 10)).rejects.toBeDefined();
    await expectNotFound(storage.datastore.getUpload(unknown));
    expect(await site.inventory()).toEqual(before);
  });

  test.each([
    ['destroyed', undefined, false],
    ['failing', new Error('the client went away'), false],
    ['destroyed before its declared length', undefined, true],
    ['failing before its declared length', new Error('the client went away'), true],
  ])(
    'a write whose body is %s rejects; the upload resumes from the offset it reports and finishes',
    async (_, error, declared) => {
      // On S3 the first part is sent; the body breaks a MiB into the second (upstream's
      // "no unhandled rejection when an upload fails" case).
      const data = randomContent(2 * PART + 100);
      const id = await create(storage.datastore, data.length);
      const unhandled: unknown[] = [];
      const onUnhandled = (reason: unknown) => unhandled.push(reason);
      process.on('unhandledRejection', onUnhandled);
      try {
        const broken = brokenBody(data.subarray(0, PART + MIB), error);
        // As a PATCH whose Content-Length said the whole upload, or as a body of unknown length.
        const writing = declared
          ? writeAsRequest(storage.datastore, id, data, 0, broken)
          : storage.datastore.write(broken, id, 0);
        await expect(writing).rejects.toBeDefined();
        // A write that stops leaves what it stored, never more than was sent.
        const { offset } = await storage.datastore.getUpload(id);
        expect(offset).toBeGreaterThanOrEqual(0);
        expect(offset).toBeLessThanOrEqual(PART + MIB);
        expect((await site.reopen().datastore.getUpload(id)).offset).toBe(offset);
        await writeInPieces(storage.datastore, id, data, [data.length - offset], offset);
        await expectFinished(storage, id, data);
      } finally {
        process.off('unhandledRejection', onUnhandled);
      }
      expect(unhandled).toEqual([]);
    },
  );

  test('an upload smaller than a part, written in two pieces: offsets after each, the bytes equal', async () => {
    // Upstream's incomplete-part cases: on S3 the first piece waits as the tail (no part), the
    // second finishes the upload from it.
    const data = randomContent(2048);
    const id = await create(storage.datastore, data.length);
    expect((await storage.datastore.getUpload(id)).offset).toBe(0);
    await writeInPieces(storage.datastore, id, data, [1024]);
    if (kind !== 'file') expect(await site.inventory()).toContain(`${id}.part`);
    expect((await site.reopen().datastore.getUpload(id)).offset).toBe(1024);
    await writeInPieces(storage.datastore, id, data, [1024], 1024);
    await expectFinished(storage, id, data);
    expect(await site.inventory()).not.toContain(`${id}.part`);
  });

  test('pieces of exactly one part each: no tail between them, the bytes equal', async () => {
    const data = randomContent(2 * PART);
    const id = await create(storage.datastore, data.length);
    await writeInPieces(storage.datastore, id, data, [PART]);
    if (kind !== 'file') {
      expect(await site.inventory()).not.toContain(`${id}.part`);
      expect(await partsOf(kind, site.bucket ?? '', id)).toEqual([{ number: 1, size: PART }]);
    }
    await writeInPieces(storage.datastore, id, data, [PART], PART);
    await expectFinished(storage, id, data);
  });

  test('datastore.remove while a write is in flight: the upload is gone (404) once both settle', async () => {
    const data = randomContent(PART + 2 * MIB);
    const id = await create(storage.datastore, data.length);
    let go!: () => void;
    const removed = new Promise<void>((resolve) => {
      go = resolve;
    });
    const { stream, taken } = pausedBody(data.subarray(0, MIB), data.subarray(MIB), removed);
    const writing = storage.datastore.write(stream, id, 0);
    await taken;
    const removing = storage.datastore.remove(id);
    await Promise.allSettled([removing]);
    go();
    await Promise.allSettled([writing]);
    await expect(removing).resolves.toBeUndefined();

    await expectNotFound(storage.datastore.getUpload(id));
    await expectNotFound(site.reopen().datastore.getUpload(id));
    expect(await storage.stat(id)).toBeUndefined();
    // Nothing of it is left behind: no object, tail or multipart upload (its bytes were sent
    // to a multipart upload that no longer exists, and refused).
    expect((await site.inventory()).filter((name) => name.includes(id))).toEqual([]);
  });

  test('an id used again after its upload was removed starts afresh: its new length, metadata and bytes', async () => {
    const id = newId();
    const store = storage.datastore;
    // Unfinished, then removed, then again finished, removed, and once more.
    const first = randomContent(PART + 1000);
    await store.create(new Upload({ id, size: 3 * PART, offset: 0, metadata: { n: '1' } }));
    await writeInPieces(store, id, first, [first.length]);
    await store.remove(id);

    const second = randomContent(MIB + 3);
    await store.create(new Upload({ id, size: second.length, offset: 0, metadata: { n: '2' } }));
    const again = await store.getUpload(id);
    expect({ offset: again.offset, size: again.size, metadata: again.metadata }).toEqual({
      offset: 0,
      size: second.length,
      metadata: { n: '2' },
    });
    await writeInPieces(store, id, second, [second.length]);
    await expectFinished(storage, id, second);
    await expectFinished(site.reopen(), id, second);
    await store.remove(id);

    const third = randomContent(PART + 5);
    await store.create(new Upload({ id, size: third.length, offset: 0, metadata: { n: '3' } }));
    await writeInPieces(store, id, third, [third.length]);
    await expectFinished(storage, id, third);
    await expectFinished(site.reopen(), id, third);
    expect((await storage.stat(id))?.metadata).toEqual({ n: '3' });
  });
});

/** What @tus/s3-store's own tests (packages/s3-store/src/test/index.ts) check of S3 alone. */
describe.each(BACKENDS.filter((kind) => kind !== 'file'))('S3 storage on %s', (kind) => {
  const factory = backend(kind);
  let site: Site;
  let storage: UploadStorage;
  let bucket: string;

  beforeAll(async () => {
    site = factory.site();
    storage = site.storage;
    bucket = site.bucket ?? '';
    await storage.init();
  });
  afterAll(() => factory.cleanup());

  test('parts are numbered 1, 2, 3, … with no gap, whether streamed from a request or spooled by @tus/s3-store', async () => {
    const data = randomContent(5 * PART + 10);
    const id = await create(storage.datastore, data.length);
    // Three parts in one PATCH, streamed from its body.
    expect(await writeAsRequest(storage.datastore, id, data.subarray(0, 3 * PART), 0)).toBe(
      3 * PART,
    );
    expect(await partsOf(kind, bucket, id)).toEqual(
      [1, 2, 3].map((number) => ({ number, size: PART })),
    );
    // Two more through @tus/s3-store's own way (a body of unknown length).
    await writeInPieces(storage.datastore, id, data, [2 * PART], 3 * PART);
    expect(await partsOf(kind, bucket, id)).toEqual(
      [1, 2, 3, 4, 5].map((number) => ({ number, size: PART })),
    );
    expect(await site.inventory()).not.toContain(`${id}.part`);
    expect(await writeAsRequest(storage.datastore, id, data.subarray(5 * PART), 5 * PART)).toBe(
      data.length,
    );
    await expectFinished(storage, id, data);
    expect(await partsOf(kind, bucket, id)).toBeUndefined();
  });

  test('getUpload() of an upload with a tail asks S3 for the size of the tail, never for its bytes', async () => {
    const asked: string[] = [];
    const observed = factory.site(0, (operation) => asked.push(operation));
    await observed.storage.init();
    const store = observed.storage.datastore;
    const data = randomContent(PART + 4096);
    const id = await create(store, 2 * PART);
    await writeInPieces(store, id, data, [PART + 1024, 3072]);
    expect(await observed.inventory()).toContain(`${id}.part`);

    asked.length = 0;
    expect((await store.getUpload(id)).offset).toBe(data.length);
    // The record is known (written or read here before): the parts' listing and the tail's HEAD.
    expect(asked.sort()).toEqual(['HeadObject', 'ListParts']);
    // Another instance reads the record first (from S3, or from the cache Redis shares), and
    // still never the tail.
    asked.length = 0;
    expect((await observed.reopen().datastore.getUpload(id)).offset).toBe(data.length);
    const record = kind.endsWith('+redis') ? [] : ['GetObject'];
    expect(asked.sort()).toEqual([...record, 'HeadObject', 'ListParts']);
  });

  test('remove() of an upload whose multipart upload is gone (aborted outside) removes what is left', async () => {
    // Upstream answers 404 there (NoSuchUpload); here the record still exists, so everything goes.
    const data = randomContent(PART + MIB);
    const id = await create(storage.datastore, 2 * PART);
    await writeInPieces(storage.datastore, id, data, [data.length]);
    const client = s3ClientFor(s3ServicesOf(kind));
    try {
      const { Uploads = [] } = await client.send(
        new ListMultipartUploadsCommand({ Bucket: bucket }),
      );
      const upload = Uploads.find((u) => u.Key === id);
      expect(upload?.UploadId).toEqual(expect.any(String));
      await client.send(
        new AbortMultipartUploadCommand({ Bucket: bucket, Key: id, UploadId: upload?.UploadId }),
      );
    } finally {
      client.destroy();
    }
    await expect(storage.datastore.remove(id)).resolves.toBeUndefined();
    await expectNotFound(storage.datastore.getUpload(id));
    await expectNotFound(site.reopen().datastore.getUpload(id));
    expect((await site.inventory()).filter((name) => name.includes(id))).toEqual([]);
  });

  test('.info format: what this storage writes, a plain @tus/s3-store S3Store reads the same, unfinished and finished', async () => {
    const plain = site.plainStore?.() as PlainS3Store;
    const metadata = { filename: 'Menü ✓.bin', filetype: 'application/octet-stream', none: null };
    const data = randomContent(PART + MIB + 3);
    const id = newId();
    const created = await storage.datastore.create(
      new Upload({ id, size: data.length, offset: 0, metadata }),
    );
    expect(created.creation_date).toEqual(expect.any(String));
    const ours = view(await storage.datastore.getUpload(id));
    expect(ours).toEqual(createdView(bucket, id, data.length, metadata, created));
    expect(view(await plain.getUpload(id))).toEqual(ours);

    // A part and a tail.
    await writeInPieces(storage.datastore, id, data, [PART + MIB]);
    expect(view(await plain.getUpload(id))).toEqual(view(await storage.datastore.getUpload(id)));
    expect((await plain.getUpload(id)).offset).toBe(PART + MIB);

    await writeInPieces(storage.datastore, id, data, [3], PART + MIB);
    // Finished: this storage answers without the creation date (finished uploads never
    // expire); the record keeps it, and @tus/s3-store reads it from there.
    const finished = view(await storage.datastore.getUpload(id));
    const recorded = await storage.recordOf(id);
    expect(finished.creation_date).toBeUndefined();
    expect(recorded.creation_date).toBe(created.creation_date);
    expect(view(await plain.getUpload(id))).toEqual({
      ...finished,
      offset: data.length,
      creation_date: created.creation_date,
    });
    expect(await sha256OfStream(await plain.read(id))).toBe(sha256(data));

    // Stamped with its finish time, as the server does: the stamp is tus metadata to upstream.
    const stamped = await storage.markFinished(await storage.datastore.getUpload(id));
    const plainStamped = await plain.getUpload(id);
    expect(plainStamped.metadata).toEqual(stamped.metadata);
    expect(plainStamped.metadata?.[FINISHED_KEY]).toEqual(expect.any(String));
    expect({ offset: plainStamped.offset, size: plainStamped.size }).toEqual({
      offset: data.length,
      size: data.length,
    });

    // A deferred length, declared here, is declared to upstream too.
    const deferred = await create(storage.datastore, undefined, { filename: 'later.bin' });
    expect(view(await plain.getUpload(deferred))).toEqual(
      view(await storage.datastore.getUpload(deferred)),
    );
    expect((await plain.getUpload(deferred)).sizeIsDeferred).toBe(true);
    await storage.datastore.declareUploadLength(deferred, 100);
    expect(view(await plain.getUpload(deferred))).toEqual(
      view(await storage.datastore.getUpload(deferred)),
    );
    expect((await plain.getUpload(deferred)).size).toBe(100);

    // Removed here: gone to upstream as well.
    await storage.datastore.remove(id);
    await expect(plain.getUpload(id)).rejects.toMatchObject({ status_code: 404 });
  });

  test('.info format: an upload a plain @tus/s3-store S3Store created and began, this storage reads, writes and finishes', async () => {
    const plain = site.plainStore?.() as PlainS3Store;
    const metadata = { filename: 'Menü ✓.bin', filetype: 'text/plain', none: null };
    const data = randomContent(2 * PART + MIB + 1);
    const id = newId();
    const created = await plain.create(new Upload({ id, size: data.length, offset: 0, metadata }));
    expect(view(await storage.datastore.getUpload(id))).toEqual(view(await plain.getUpload(id)));
    expect(view(await storage.datastore.getUpload(id))).toEqual(
      createdView(bucket, id, data.length, metadata, created),
    );

    // Upstream writes a part and a tail (`<id>.part`) ...
    expect(await plain.write(body(data.subarray(0, PART + MIB)), id, 0)).toBe(PART + MIB);
    expect(await site.inventory()).toContain(`${id}.part`);
    expect(view(await storage.datastore.getUpload(id))).toEqual(view(await plain.getUpload(id)));
    expect((await site.reopen().datastore.getUpload(id)).offset).toBe(PART + MIB);

    // ... this storage goes on from there, as a PATCH and as @tus/s3-store's own way, and finishes.
    const offset = PART + MIB;
    expect(
      await writeAsRequest(storage.datastore, id, data.subarray(offset, offset + PART), offset),
    ).toBe(offset + PART);
    expect((await storage.datastore.getUpload(id)).offset).toBe(offset + PART);
    expect((await plain.getUpload(id)).offset).toBe(offset + PART);
    await writeInPieces(storage.datastore, id, data, [data.length - offset - PART], offset + PART);
    await expectFinished(storage, id, data);
    await expectFinished(site.reopen(), id, data);
    expect(await site.inventory()).not.toContain(`${id}.part`);
    expect((await storage.stat(id))?.metadata).toEqual(metadata);
    const stamped = await storage.markFinished(await storage.datastore.getUpload(id));
    expect((await storage.stat(id))?.lastModified.toISOString()).toBe(
      stamped.metadata?.[FINISHED_KEY],
    );
    expect((await plain.getUpload(id)).offset).toBe(data.length);

    // Created by upstream with a deferred length, declared and finished here.
    const deferred = newId();
    await plain.create(new Upload({ id: deferred, offset: 0, metadata: { filename: 'd.bin' } }));
    expect((await storage.datastore.getUpload(deferred)).sizeIsDeferred).toBe(true);
    const small = randomContent(1000);
    await writeInPieces(storage.datastore, deferred, small, [600]);
    await storage.datastore.declareUploadLength(deferred, small.length);
    await writeInPieces(storage.datastore, deferred, small, [400], 600);
    await expectFinished(storage, deferred, small);

    await storage.datastore.remove(id);
    await expect(plain.getUpload(id)).rejects.toMatchObject({ status_code: 404 });
  });
});
