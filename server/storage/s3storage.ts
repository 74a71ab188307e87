import { Readable } from 'node:stream';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { type MetadataValue, S3Store } from '@tus/s3-store';
import { ERRORS, type KvStore, TUS_RESUMABLE, Upload } from '@tus/utils';
import type { Config } from '../config.ts';
import {
  type ByteRange,
  type ContentRecord,
  type ContentRefs,
  expireOnlyUnfinished,
  isUnreachable,
  linkedOwner,
  ServiceUnavailable,
  StorageError,
  type StoredContent,
  type UploadStorage,
} from './types.ts';

type S3Options = NonNullable<Config['s3']>;

const REFS_PREFIX = 'refs/';

/**
 * Every request of the client that fails because S3 is away (after the SDK's own retries)
 * surfaces as ServiceUnavailable, so no caller mistakes an outage for a missing upload.
 */
function reportOutages(client: S3Client): void {
  client.middlewareStack.add(
    (next) => async (args) => {
      try {
        return await next(args);
      } catch (error) {
        throw isUnreachable(error) ? new ServiceUnavailable('storage', error) : error;
      }
    },
    { step: 'initialize', name: 'reportStorageOutages' },
  );
}

/**
 * The shared metadata cache (Redis) in front of `<id>.info`. A read that fails is a miss, so
 * the record comes from S3 itself; a failed delete must not leave a stale record behind.
 */
class MetadataCache implements KvStore<MetadataValue> {
  constructor(private readonly inner: KvStore<MetadataValue>) {}

  async get(key: string): Promise<MetadataValue | undefined> {
    return this.inner.get(key).catch(() => undefined);
  }

  async set(key: string, value: MetadataValue): Promise<void> {
    await this.inner.set(key, value).catch(() => undefined);
  }

  async delete(key: string): Promise<void> {
    await this.inner.delete(key).catch((error: unknown) => {
      throw new ServiceUnavailable('redis', error);
    });
  }
}

/** A missing `<id>.info` is a missing upload; any other failure stays what it is. */
function notFoundAsTus(error: unknown): never {
  throw isNotFound(error) ? ERRORS.FILE_NOT_FOUND : error;
}

/** References as small JSON objects: `refs/<owner>/<uploadId>`. */
class S3ContentRefs implements ContentRefs {
  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
  ) {}

  private key(owner: string, uploadId: string): string {
    return `${REFS_PREFIX}${owner}/${uploadId}`;
  }

  async add(owner: string, uploadId: string, record: ContentRecord): Promise<void> {
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: this.key(owner, uploadId),
        Body: JSON.stringify(record),
        ContentType: 'application/json',
      }),
    );
  }

  async get(owner: string, uploadId: string): Promise<ContentRecord | undefined> {
    try {
      const object = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.key(owner, uploadId) }),
      );
      return JSON.parse((await object.Body?.transformToString()) ?? '');
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async remove(owner: string, uploadId: string): Promise<void> {
    await this.client.send(
      new DeleteObjectCommand({ Bucket: this.bucket, Key: this.key(owner, uploadId) }),
    );
  }

  async count(owner: string): Promise<number> {
    const listed = await this.client.send(
      new ListObjectsV2Command({
        Bucket: this.bucket,
        Prefix: `${REFS_PREFIX}${owner}/`,
        MaxKeys: 2,
      }),
    );
    return listed.KeyCount ?? 0;
  }

  async *all() {
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: REFS_PREFIX,
          ContinuationToken: token,
        }),
      );
      for (const object of page.Contents ?? []) {
        const [owner, uploadId] = (object.Key ?? '').slice(REFS_PREFIX.length).split('/');
        if (!owner || !uploadId) continue;
        const record = await this.get(owner, uploadId);
        if (record) yield { owner, uploadId, record };
      }
      token = page.NextContinuationToken;
    } while (token);
  }
}

/**
 * @tus/s3-store with linked (deduplicated) uploads, and two gaps closed: empty uploads and the
 * incomplete tail on termination.
 */
class TusS3Store extends S3Store {
  constructor(options: ConstructorParameters<typeof S3Store>[0]) {
    super(options);
    reportOutages(this.client);
  }

  /** A linked upload is finished and has no multipart upload to list. */
  override async getUpload(id: string): Promise<Upload> {
    const { file } = await this.getMetadata(id).catch(notFoundAsTus);
    if (linkedOwner(file, id)) return new Upload({ ...file, offset: file.size ?? 0 });
    return super.getUpload(id);
  }

  /** The upload's record as stored in `<id>.info` (cached), without asking S3 for its parts. */
  async recordOf(id: string): Promise<Upload> {
    return (await this.getMetadata(id)).file;
  }

  async contentKeyOf(id: string): Promise<string> {
    return linkedOwner(await this.recordOf(id), id) ?? id;
  }

  /** Writes `<id>.info` in S3Store's own format, finished, with the owner as storage path. */
  async saveLinked(upload: Upload, owner: string): Promise<void> {
    const record = new Upload({
      ...upload,
      offset: upload.size ?? 0,
      creation_date: upload.creation_date ?? new Date().toISOString(),
      storage: { type: 's3', path: owner, bucket: this.bucket },
    });
    await this.client.putObject({
      Bucket: this.bucket,
      Key: this.infoKey(upload.id),
      Body: JSON.stringify(record),
      Tagging: this.useCompleteTag('true'),
      Metadata: { 'upload-id': '', 'tus-version': TUS_RESUMABLE },
    });
    await this.clearCache(upload.id);
  }

  async removeRecord(id: string): Promise<void> {
    await this.client.deleteObject({ Bucket: this.bucket, Key: this.infoKey(id) });
    await this.clearCache(id);
  }

  /** A 0-byte upload is finished at creation, but nothing would complete its multipart upload. */
  override async create(upload: Upload): Promise<Upload> {
    const created = await super.create(upload);
    if (created.size === 0) await super.write(Readable.from([]), created.id, 0);
    return created;
  }

  /** A 0-byte upload was completed by create(); a creation-with-upload body adds nothing. */
  override async write(src: Readable, id: string, offset: number): Promise<number> {
    if (offset === 0 && (await this.getMetadata(id)).file.size === 0) return 0;
    return super.write(src, id, offset);
  }

  /**
   * S3Store changes the cached record in place and saves `<id>.info`, but never refreshes the
   * cache: an in-process cache shares that object and sees the length, Redis keeps a copy that
   * still has none. A length of 0 finishes the upload, as a 0-byte creation does.
   */
  override async declareUploadLength(id: string, length: number): Promise<void> {
    await super.declareUploadLength(id, length);
    await this.clearCache(id);
    if (length === 0) await super.write(Readable.from([]), id, 0);
  }

  /**
   * S3Store's sweep deletes an expired upload's objects but leaves its record in the metadata
   * cache, where HEAD still found it (200 for an upload that is gone). Each expired upload loses
   * its record first, then its cache entry, its multipart upload and its incomplete tail.
   */
  override async deleteExpired(): Promise<number> {
    const period = this.getExpiration();
    if (period === 0) return 0;
    let deleted = 0;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      const page = await this.client.listMultipartUploads({
        Bucket: this.bucket,
        KeyMarker: keyMarker,
        UploadIdMarker: uploadIdMarker,
      });
      for (const { Key, UploadId, Initiated } of page.Uploads ?? []) {
        if (!Key || !UploadId || !Initiated || Date.now() <= Initiated.getTime() + period) continue;
        await this.client.deleteObject({ Bucket: this.bucket, Key: this.infoKey(Key) });
        await this.clearCache(Key);
        await this.client.abortMultipartUpload({ Bucket: this.bucket, Key, UploadId });
        await this.deleteIncompletePart(Key);
        deleted += 1;
      }
      keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
    } while (keyMarker);
    return deleted;
  }

  /** Termination also removes the incomplete tail (`<id>.part`), which S3Store leaves behind. */
  override async remove(id: string): Promise<void> {
    const { file } = await this.getMetadata(id).catch(notFoundAsTus);
    // A linked upload has no bytes and no multipart upload of its own.
    if (linkedOwner(file, id)) return this.removeRecord(id);
    await super.remove(id);
    await this.deleteIncompletePart(id);
  }
}

/** MinIO (or any S3) through @tus/s3-store: `<id>` is the finished object, `<id>.info` the state. */
export class S3Storage implements UploadStorage {
  readonly kind = 's3';
  readonly datastore: TusS3Store;
  readonly description: string;
  readonly client: S3Client;
  readonly refs: S3ContentRefs;
  private readonly options: S3Options;

  constructor(
    options: S3Options & { expirySeconds: number; metadataCache?: KvStore<MetadataValue> },
  ) {
    this.options = options;
    this.description = `S3 bucket "${options.bucket}" at ${options.endpoint}`;
    const clientConfig: S3ClientConfig = {
      endpoint: options.endpoint,
      region: options.region,
      credentials: options.credentials,
      // MinIO serves buckets by path, not by virtual host.
      forcePathStyle: true,
      // A MinIO that does not accept the connection is away: say so instead of hanging.
      requestHandler: { connectionTimeout: 5000 },
      // Checksums only where S3 requires them: tus streams bodies of unknown length.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    };
    this.client = new S3Client(clientConfig);
    reportOutages(this.client);
    this.datastore = new TusS3Store({
      partSize: options.partSize,
      expirationPeriodInMilliseconds: options.expirySeconds * 1000,
      cache: options.metadataCache && new MetadataCache(options.metadataCache),
      s3ClientConfig: { ...clientConfig, bucket: options.bucket },
    });
    this.refs = new S3ContentRefs(this.client, options.bucket);
    expireOnlyUnfinished(this.datastore);
  }

  async init(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.options.bucket }));
      return;
    } catch (error) {
      if (!isNotFound(error)) throw this.explain(error);
    }
    try {
      await this.client.send(new CreateBucketCommand({ Bucket: this.options.bucket }));
    } catch (error) {
      const name = (error as Error).name;
      // Another instance may have created it between our two calls.
      if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') {
        throw this.explain(error);
      }
    }
  }

  async check(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.options.bucket }), {
        abortSignal: AbortSignal.timeout(2000),
      });
    } catch (error) {
      throw this.explain(error);
    }
  }

  async stat(id: string): Promise<StoredContent | undefined> {
    const record = await this.datastore.recordOf(id).catch((error: unknown) => {
      if (isNotFound(error)) return undefined;
      throw error;
    });
    if (!record) return undefined;
    try {
      // The object exists only once the multipart upload was completed: no parts to list.
      const head = await this.client.send(
        new HeadObjectCommand({ Bucket: this.options.bucket, Key: linkedOwner(record, id) ?? id }),
      );
      return {
        size: head.ContentLength ?? 0,
        lastModified: head.LastModified ?? new Date(0),
        etag: head.ETag ?? `"${id}"`,
        metadata: record.metadata ?? {},
      };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async read(id: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable> {
    const response = await this.client.send(
      new GetObjectCommand({
        Bucket: this.options.bucket,
        Key: await this.contentKeyOf(id),
        Range: range ? `bytes=${range.start}-${range.end}` : undefined,
      }),
      { abortSignal: signal },
    );
    return response.Body as Readable;
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  contentKeyOf(id: string): Promise<string> {
    return this.datastore.contentKeyOf(id);
  }

  async contentSize(key: string): Promise<number | undefined> {
    try {
      const head = await this.client.send(
        new HeadObjectCommand({ Bucket: this.options.bucket, Key: key }),
      );
      return head.ContentLength;
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  createLinked(upload: Upload, owner: string): Promise<void> {
    return this.datastore.saveLinked(upload, owner);
  }

  removeRecord(id: string): Promise<void> {
    return this.datastore.removeRecord(id);
  }

  async removeContent(key: string): Promise<void> {
    await this.client.send(
      new DeleteObjectsCommand({
        Bucket: this.options.bucket,
        Delete: { Objects: [{ Key: key }, { Key: `${key}.part` }] },
      }),
    );
  }

  /** Turns an SDK error into one line a person running the server can act on. */
  private explain(error: unknown): StorageError {
    const err = error as Error & { code?: string; $metadata?: { httpStatusCode?: number } };
    const { endpoint, bucket } = this.options;
    const status = err.$metadata?.httpStatusCode;
    // HEAD answers carry no error body, so the SDK can only name the status.
    const what =
      err.name === 'Unknown' || err.name === 'UnknownError' ? `HTTP ${status}` : err.name;
    const networkCode = err.code ?? (err.cause as { code?: string } | undefined)?.code;
    if (networkCode && /^E[A-Z]+/.test(networkCode)) {
      return new StorageError(`S3_ENDPOINT ${endpoint} is unreachable (${networkCode})`);
    }
    if (err.name === 'CredentialsProviderError') {
      return new StorageError(
        'no S3 credentials found: set S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY',
      );
    }
    if (
      ['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied', 'Forbidden'].includes(
        err.name,
      ) ||
      status === 403
    ) {
      return new StorageError(
        `S3 at ${endpoint} rejected the credentials for bucket "${bucket}" (${what}): check S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY`,
      );
    }
    return new StorageError(`S3 at ${endpoint} failed for bucket "${bucket}": ${what}`);
  }
}

function isNotFound(error: unknown): boolean {
  const err = error as Error & { $metadata?: { httpStatusCode?: number } };
  return (
    err.name === 'NotFound' ||
    err.name === 'NoSuchKey' ||
    err.name === 'NoSuchBucket' ||
    err.$metadata?.httpStatusCode === 404
  );
}
