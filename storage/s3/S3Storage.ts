/**
 * The S3 backend (MinIO or any S3) through @tus/s3-store. In its bucket it writes:
 *
 * - `<id>`: the finished upload's bytes (a completed multipart upload; absent while unfinished,
 *   and absent for an upload linked to another's bytes);
 * - `<id>.info`: the upload's record (length, metadata, creation date, and the finish time in
 *   the `tus-finished` metadata key; `storage.path` names the owner whose bytes a linked upload
 *   shares), tagged `Tus-Completed` when finished;
 * - `<id>.part`: the incomplete tail, fewer bytes than a part, waiting for the next PATCH;
 * - `refs/<owner>/<id>`: one reference per upload that uses the bytes stored under `<owner>`,
 *   with their digests (JSON), so shared bytes go only with their last reference;
 * - while unfinished, one multipart upload named `<id>`.
 *
 * With a metadata cache (Redis), `<id>.info` is cached under `tus:s3meta:<id>`.
 */
import type { Readable } from 'node:stream';
import {
  CreateBucketCommand,
  DeleteObjectsCommand,
  HeadBucketCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import type { MetadataValue } from '@tus/s3-store';
import { type KvStore, MemoryKvStore, type Upload } from '@tus/utils';
import {
  type ByteRange,
  type ContentSource,
  FINISHED_KEY,
  linkedOwner,
  type PresignOptions,
  StorageError,
  type StoredContent,
  type UploadStorage,
  uploadValidators,
} from '../types.ts';
import { UploadStore } from '../UploadStore.ts';
import { MetadataCache } from './MetadataCache.ts';
import { instrument, isNotFound, type S3Observer } from './outages.ts';
import { checksumEveryPart } from './partChecksums.ts';
import { S3Presigner } from './presign.ts';
import { S3Concatenation } from './S3Concatenation.ts';
import { S3ContentRefs } from './S3ContentRefs.ts';
import { S3Http } from './S3Http.ts';
import { S3Records } from './S3Records.ts';
import { TusS3Store } from './TusS3Store.ts';

export type S3StorageOptions = {
  endpoint: string;
  bucket: string;
  region: string;
  /** When absent, the AWS SDK's default credential chain applies. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** Preferred multipart part size in bytes (at least 5 MiB). */
  partSize: number;
  /** Unfinished uploads expire after this many seconds; 0 = never. */
  expirySeconds: number;
  /** A cache of upload records shared by every instance (Redis); in-process when absent. */
  metadataCache?: KvStore<MetadataValue>;
  /** Told how long each S3 request took (metrics). */
  observe?: S3Observer;
  /** The S3 address clients use, when it is not `endpoint`: presigned URLs are made for it. */
  publicEndpoint?: string;
};

/**
 * What HEAD said of a finished object, and the record it was asked for (`basis`: its length,
 * finish time and creation date): an id used again names another upload, whose object is another.
 */
type ObjectFacts = { size: number; lastModified: Date; etag: string; at: number; basis: string };
const FACTS_TTL_MS = 60_000;
const FACTS_MAX = 10_000;

/** MinIO (or any S3) through @tus/s3-store: `<id>` is the finished object, `<id>.info` the state. */
export class S3Storage implements UploadStorage {
  readonly kind = 's3';
  readonly datastore: UploadStore;
  readonly description: string;
  readonly refs: S3ContentRefs;
  private readonly client: S3Client;
  /** Downloads' GETs and HEADs and the small objects, outside the SDK. */
  private readonly http: S3Http;
  /** Every upload record (`<id>.info`), read and written. */
  private readonly records: S3Records;
  private readonly concatenation: S3Concatenation;
  private readonly presigner: S3Presigner;
  /** What HEAD said of finished objects, by content key. */
  private readonly facts = new Map<string, ObjectFacts>();
  private readonly options: S3StorageOptions;

  constructor(options: S3StorageOptions) {
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
    instrument(this.client, options.observe);
    checksumEveryPart(this.client);
    this.http = new S3Http({
      endpoint: options.endpoint,
      bucket: options.bucket,
      region: options.region,
      credentials: this.client.config.credentials,
      observe: options.observe,
    });
    const expiring = options.expirySeconds > 0;
    // One cache for @tus/s3-store's own reads and ours: Redis when shared, else in-process.
    const cache = new MetadataCache(options.metadataCache ?? new MemoryKvStore<MetadataValue>());
    this.records = new S3Records({
      http: this.http,
      client: this.client,
      bucket: options.bucket,
      cache,
      tagged: expiring,
    });
    const store = new TusS3Store(
      {
        partSize: options.partSize,
        expirationPeriodInMilliseconds: options.expirySeconds * 1000,
        cache,
        s3ClientConfig: { ...clientConfig, bucket: options.bucket },
      },
      this.http,
      this.records,
      options.observe,
    );
    this.datastore = new UploadStore(store, {
      recordOf: (id) => this.records.recordOf(id),
      removeRecord: (id) => this.records.remove(id),
    });
    this.concatenation = new S3Concatenation({
      client: this.client,
      bucket: options.bucket,
      http: this.http,
      records: this.records,
      store,
      tagged: expiring,
    });
    this.refs = new S3ContentRefs(this.client, options.bucket, this.http);
    this.presigner = new S3Presigner({
      endpoint: options.publicEndpoint ?? options.endpoint,
      bucket: options.bucket,
      region: options.region,
      credentials: this.client.config.credentials,
    });
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
    const record = await this.records.read(id).then(
      ({ file }) => file,
      (error: unknown) => {
        if (isNotFound(error)) return undefined;
        throw error;
      },
    );
    if (!record) return undefined;
    const key = linkedOwner(record, id) ?? id;
    const basis = `${record.size} ${record.metadata?.[FINISHED_KEY] ?? ''} ${record.creation_date ?? ''}`;
    const facts = await this.objectFactsOf(key, basis);
    if (!facts) return undefined;
    const content = { lastModified: facts.lastModified, identity: `${key}:${facts.etag}` };
    return {
      key,
      size: facts.size,
      ...uploadValidators(id, facts.size, record, key, content),
      metadata: record.metadata ?? {},
    };
  }

  markFinished(upload: Upload): Promise<Upload> {
    return this.records.saveFinished(upload);
  }

  /**
   * Size, date and ETag of the object under a content key. A finished object is never written
   * again, so what HEAD said is kept (briefly, and forgotten when a read finds it gone) for the
   * record it was asked for: a record that changed (an id removed and used again) asks again.
   */
  private async objectFactsOf(key: string, basis: string): Promise<ObjectFacts | undefined> {
    const known = this.facts.get(key);
    if (known && known.basis === basis && Date.now() - known.at < FACTS_TTL_MS) return known;
    try {
      // The object exists only once the multipart upload was completed: no parts to list.
      const { headers } = await this.http.head(key);
      const lastModified = headers['last-modified'];
      const facts: ObjectFacts = {
        size: Number(headers['content-length'] ?? 0),
        lastModified: lastModified ? new Date(lastModified) : new Date(0),
        etag: headers.etag ?? `"${key}"`,
        at: Date.now(),
        basis,
      };
      this.facts.delete(key);
      this.facts.set(key, facts);
      // Oldest first: Map keeps insertion order.
      for (const oldest of this.facts.keys()) {
        if (this.facts.size <= FACTS_MAX) break;
        this.facts.delete(oldest);
      }
      return facts;
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async read(id: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable> {
    return this.readContent(await this.contentKeyOf(id), range, signal);
  }

  async readContent(key: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable> {
    try {
      return await this.http.get(
        key,
        range ? `bytes=${range.start}-${range.end}` : undefined,
        signal,
      );
    } catch (error) {
      if (isNotFound(error)) this.facts.delete(key);
      throw error;
    }
  }

  /** Signed here, nothing sent: the URL names the public endpoint when there is one. */
  presignedUrlOf(key: string, options: PresignOptions): Promise<string> {
    return this.presigner.urlOf(key, options);
  }

  async close(): Promise<void> {
    this.client.destroy();
    this.presigner.close();
    this.http.close();
  }

  recordOf(id: string): Promise<Upload> {
    return this.records.recordOf(id);
  }

  async contentKeyOf(id: string): Promise<string> {
    return linkedOwner((await this.records.read(id)).file, id) ?? id;
  }

  contentSize(key: string): Promise<number | undefined> {
    return this.http.size(key);
  }

  createLinked(upload: Upload, owner: string): Promise<void> {
    return this.records.saveLinked(upload, owner);
  }

  removeRecord(id: string): Promise<void> {
    return this.records.remove(id);
  }

  async removeContent(key: string): Promise<void> {
    this.facts.delete(key);
    await this.client.send(
      new DeleteObjectsCommand({
        Bucket: this.options.bucket,
        Delete: { Objects: [{ Key: key }, { Key: `${key}.part` }] },
      }),
    );
  }

  async locationOf(id: string): Promise<Record<string, string>> {
    return { Type: 's3store', Bucket: this.options.bucket, Key: await this.contentKeyOf(id) };
  }

  concatenate(upload: Upload, sources: ContentSource[]): Promise<void> {
    return this.concatenation.concatenate(upload, sources);
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
