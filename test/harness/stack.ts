import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';

/**
 * The configurations a user can start: the embedded default (file store), MinIO alone, and
 * MinIO with Redis (shared metadata cache, locks and dedupe index: the scale-out setup); and the
 * same S3 configurations on VersityGW, an S3 that answers as AWS does where MinIO does not.
 */
export type StorageKind = 'file' | 's3' | 's3+redis' | 's3-versity' | 's3-versity+redis';
/** What every behaviour suite runs on. */
export const STORAGE_KINDS: StorageKind[] = ['file', 's3', 's3+redis'];
/**
 * The S3 configuration on VersityGW, which suites whose outcome depends on S3's answers
 * (storage contract, termination, concatenation, protocol, downloads) run on as well.
 */
export const S3_COMPAT_KINDS: StorageKind[] = ['s3-versity'];

export const MIB = 1024 * 1024;

/**
 * Redis databases handed to `s3+redis` storages in turn (the suites' fixed ones are below 8).
 * The run's Redis starts empty and every storage empties its database when it is cleaned up.
 */
const ROTATING_REDIS_DBS = [8, 9, 10, 11, 12, 13, 14, 15];
let nextRedisDb = 0;

/** Database `db` of the run's Redis. */
export function redisDbUrl(db: number): string {
  return `${testServices().redisUrl.replace(/\/\d+$/, '')}/${db}`;
}

function rotatingRedisUrl(): string {
  return redisDbUrl(ROTATING_REDIS_DBS[nextRedisDb++ % ROTATING_REDIS_DBS.length] as number);
}

async function flushRedis(url: string): Promise<void> {
  const { Redis } = await import('ioredis');
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  redis.on('error', () => {});
  try {
    await redis.connect();
    await redis.flushdb();
  } finally {
    redis.disconnect();
  }
}

/** The MinIO and Redis that globalSetup started. */
export function testServices() {
  const s3Endpoint = process.env.TEST_S3_ENDPOINT;
  const redisUrl = process.env.TEST_REDIS_URL;
  if (!s3Endpoint || !redisUrl) throw new Error('test services are not running (globalSetup)');
  return {
    s3Endpoint,
    s3AccessKeyId: process.env.TEST_S3_ACCESS_KEY_ID ?? '',
    s3SecretAccessKey: process.env.TEST_S3_SECRET_ACCESS_KEY ?? '',
    redisUrl,
  };
}

/** The S3 a configuration stores in: VersityGW for the `s3-versity` ones, MinIO otherwise. */
export function s3ServicesOf(kind: StorageKind) {
  if (!kind.startsWith('s3-versity')) return testServices();
  const s3Endpoint = process.env.TEST_S3_COMPAT_ENDPOINT;
  if (!s3Endpoint) throw new Error('VersityGW is not running (globalSetup)');
  return {
    s3Endpoint,
    s3AccessKeyId: process.env.TEST_S3_COMPAT_ACCESS_KEY_ID ?? '',
    s3SecretAccessKey: process.env.TEST_S3_COMPAT_SECRET_ACCESS_KEY ?? '',
  };
}

/** An S3 client for MinIO as the test services run it; `extra` adds or overrides options. */
export function s3ClientFor(
  services: { s3Endpoint: string; s3AccessKeyId: string; s3SecretAccessKey: string },
  extra: Partial<S3ClientConfig> = {},
): S3Client {
  return new S3Client({
    endpoint: services.s3Endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: {
      accessKeyId: services.s3AccessKeyId,
      secretAccessKey: services.s3SecretAccessKey,
    },
    ...extra,
  });
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export async function sha256OfStream(stream: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Deterministic-looking but random bytes, so no two tests share content by accident. */
export function randomContent(size: number): Buffer {
  return randomBytes(size);
}

/** Where an upload's bytes are stored: its own key, or the owner it shares content with (dedupe). */
function contentKey(id: string, record: { storage?: { path?: string } }): string {
  const owner = record.storage?.path;
  return owner && !owner.includes('/') ? owner : id;
}

/**
 * One storage for one test file: the server environment that selects it and direct access to
 * what it holds, so tests compare what was sent with what storage really has.
 */
export type TestStorage = {
  kind: StorageKind;
  /** Where the bytes go: the file store or S3 (MinIO or VersityGW). */
  backend: 'file' | 's3';
  env: NodeJS.ProcessEnv;
  /** sha256 of the stored bytes of upload `id`, read straight from storage. */
  storedSha256(id: string): Promise<string>;
  /** Every object or file the storage holds (names), and unfinished multipart uploads. */
  inventory(): Promise<string[]>;
  /** Bytes of the unfinished upload `id` already in storage: its data file, or its parts and tail. */
  storedBytes(id: string): Promise<number>;
  cleanup(): Promise<void>;
};

/** Names of stored contents (a copy of an upload's bytes): not records, references or tails. */
export async function contentCopies(storage: TestStorage): Promise<string[]> {
  return (await storage.inventory()).filter((name) => /^[0-9a-f]{32}$/.test(name));
}

export function createTestStorage(kind: StorageKind): TestStorage {
  if (kind === 'file') {
    const dir = mkdtempSync(path.join(tmpdir(), 'tus-data-'));
    return {
      kind,
      backend: 'file',
      env: { DATA_DIR: dir },
      async storedSha256(id) {
        const record = JSON.parse(await readFile(path.join(dir, `${id}.json`), 'utf8'));
        return sha256OfStream(createReadStream(path.join(dir, contentKey(id, record))));
      },
      inventory: async () => (await readdir(dir)).sort(),
      storedBytes: async (id) => (await stat(path.join(dir, id)).catch(() => ({ size: 0 }))).size,
      cleanup: async () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  const services = s3ServicesOf(kind);
  const bucket = `t-${randomBytes(6).toString('hex')}`;
  const client = s3ClientFor(services);
  const listObjects = async () =>
    ((await client.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? []).map(
      (o) => o.Key ?? '',
    );
  const listMultipart = async () =>
    (await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? [];
  const redisUrl = kind.endsWith('+redis') ? rotatingRedisUrl() : undefined;
  return {
    kind,
    backend: 's3',
    env: {
      S3_ENDPOINT: services.s3Endpoint,
      S3_BUCKET: bucket,
      S3_ACCESS_KEY_ID: services.s3AccessKeyId,
      S3_SECRET_ACCESS_KEY: services.s3SecretAccessKey,
      ...(redisUrl ? { REDIS_URL: redisUrl } : {}),
    },
    async storedSha256(id) {
      const info = await client.send(new GetObjectCommand({ Bucket: bucket, Key: `${id}.info` }));
      const record = JSON.parse((await info.Body?.transformToString()) ?? '{}');
      const object = await client.send(
        new GetObjectCommand({ Bucket: bucket, Key: contentKey(id, record) }),
      );
      return sha256OfStream(object.Body as Readable);
    },
    async inventory() {
      const multipart = (await listMultipart()).map((u) => `multipart:${u.Key}`);
      return [...(await listObjects()), ...multipart].sort();
    },
    async storedBytes(id) {
      let bytes = await client
        .send(new HeadObjectCommand({ Bucket: bucket, Key: `${id}.part` }))
        .then(
          (tail) => tail.ContentLength ?? 0,
          () => 0,
        );
      const upload = (await listMultipart()).find((u) => u.Key === id);
      if (upload) {
        const { Parts = [] } = await client.send(
          new ListPartsCommand({ Bucket: bucket, Key: id, UploadId: upload.UploadId }),
        );
        for (const part of Parts) bytes += part.Size ?? 0;
      }
      return bytes;
    },
    async cleanup() {
      try {
        for (const upload of await listMultipart()) {
          await client.send(
            new AbortMultipartUploadCommand({
              Bucket: bucket,
              Key: upload.Key,
              UploadId: upload.UploadId,
            }),
          );
        }
        const keys = await listObjects();
        if (keys.length > 0) {
          await client.send(
            new DeleteObjectsCommand({
              Bucket: bucket,
              Delete: { Objects: keys.map((Key) => ({ Key })) },
            }),
          );
        }
        await client.send(new DeleteBucketCommand({ Bucket: bucket }));
      } catch {
        // The bucket may never have been created when the server failed to start.
      }
      client.destroy();
      if (redisUrl) await flushRedis(redisUrl).catch(() => undefined);
    },
  };
}
