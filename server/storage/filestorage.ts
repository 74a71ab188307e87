import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access, constants, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { FileStore } from '@tus/file-store';
import { Upload } from '@tus/utils';
import {
  type ByteRange,
  type ContentRecord,
  type ContentRefs,
  expireOnlyUnfinished,
  linkedOwner,
  StorageError,
  type StoredContent,
  type UploadStorage,
} from './types.ts';

/**
 * @tus/file-store with linked (deduplicated) uploads, and an expiry sweep that spares finished
 * uploads (its own compares a stale offset and would delete them).
 */
class TusFileStore extends FileStore {
  override async getUpload(id: string): Promise<Upload> {
    const info = (await this.configstore.get(id)) as Upload | undefined;
    if (info && linkedOwner(info, id)) {
      return new Upload({ ...info, id, offset: info.size ?? 0 });
    }
    return super.getUpload(id);
  }

  override async deleteExpired(): Promise<number> {
    const period = this.getExpiration();
    if (period <= 0 || !this.configstore.list) return 0;
    const now = Date.now();
    let deleted = 0;
    for (const id of await this.configstore.list()) {
      const upload = await this.getUpload(id).catch(() => undefined);
      const created = upload?.creation_date ? Date.parse(upload.creation_date) : Number.NaN;
      const finished = upload?.size !== undefined && upload.offset === upload.size;
      if (upload && !finished && now > created + period) {
        await this.remove(id);
        deleted += 1;
      }
    }
    return deleted;
  }
}

/** References as small JSON files: `refs/<owner>/<uploadId>`. */
class FileContentRefs implements ContentRefs {
  constructor(private readonly directory: string) {}

  async add(owner: string, uploadId: string, record: ContentRecord): Promise<void> {
    await mkdir(path.join(this.directory, owner), { recursive: true });
    await writeFile(path.join(this.directory, owner, uploadId), JSON.stringify(record));
  }

  async get(owner: string, uploadId: string): Promise<ContentRecord | undefined> {
    try {
      return JSON.parse(await readFile(path.join(this.directory, owner, uploadId), 'utf8'));
    } catch {
      return undefined;
    }
  }

  async remove(owner: string, uploadId: string): Promise<void> {
    await rm(path.join(this.directory, owner, uploadId), { force: true });
  }

  async count(owner: string): Promise<number> {
    const entries = await readdir(path.join(this.directory, owner)).catch(() => []);
    if (entries.length === 0)
      await rm(path.join(this.directory, owner), { recursive: true, force: true });
    return entries.length;
  }

  async *all() {
    for (const owner of await readdir(this.directory).catch(() => [])) {
      for (const uploadId of await readdir(path.join(this.directory, owner)).catch(() => [])) {
        const record = await this.get(owner, uploadId);
        if (record) yield { owner, uploadId, record };
      }
    }
  }
}

/** The embedded default: @tus/file-store under DATA_DIR, `<id>` holds bytes, `<id>.json` the state. */
export class FileStorage implements UploadStorage {
  readonly kind = 'file';
  readonly datastore: TusFileStore;
  readonly description: string;
  readonly refs: FileContentRefs;
  private readonly directory: string;

  constructor(options: { directory: string; expirySeconds: number }) {
    this.directory = path.resolve(options.directory);
    this.description = `embedded file store at ${this.directory}`;
    this.datastore = new TusFileStore({
      directory: this.directory,
      expirationPeriodInMilliseconds: options.expirySeconds * 1000,
    });
    this.refs = new FileContentRefs(path.join(this.directory, 'refs'));
    expireOnlyUnfinished(this.datastore);
  }

  async init(): Promise<void> {
    try {
      await mkdir(this.directory, { recursive: true });
      await access(this.directory, constants.W_OK);
    } catch (error) {
      throw new StorageError(
        `DATA_DIR ${this.directory} is not a writable directory: ${(error as Error).message}`,
      );
    }
  }

  async check(): Promise<void> {
    await access(this.directory, constants.W_OK);
  }

  async stat(id: string): Promise<StoredContent | undefined> {
    const upload = await this.datastore.getUpload(id).catch(() => undefined);
    if (!upload || upload.size === undefined || upload.offset !== upload.size) return undefined;
    const key = await this.contentKeyOf(id);
    const info = await stat(this.contentPath(key)).catch(() => undefined);
    if (!info) return undefined;
    // Stored content is never written again, so key, size and mtime pin the bytes.
    const tag = createHash('sha256').update(`${key}:${info.size}:${info.mtimeMs}`).digest('hex');
    return {
      size: info.size,
      lastModified: info.mtime,
      etag: `"${tag.slice(0, 32)}"`,
      metadata: upload.metadata ?? {},
    };
  }

  async read(id: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable> {
    const key = await this.contentKeyOf(id);
    // Node 20 opens, and never closes, the file of a stream created with an aborted signal.
    signal?.throwIfAborted();
    return createReadStream(this.contentPath(key), { ...range, signal });
  }

  async close(): Promise<void> {}

  async contentKeyOf(id: string): Promise<string> {
    const info = (await this.datastore.configstore.get(id)) as Upload | undefined;
    return linkedOwner(info, id) ?? id;
  }

  async contentSize(key: string): Promise<number | undefined> {
    return (await stat(this.contentPath(key)).catch(() => undefined))?.size;
  }

  async createLinked(upload: Upload, owner: string): Promise<void> {
    const record = new Upload({
      ...upload,
      offset: upload.size ?? 0,
      creation_date: upload.creation_date ?? new Date().toISOString(),
      storage: { type: 'file', path: owner },
    });
    await this.datastore.configstore.set(upload.id, record);
  }

  async removeRecord(id: string): Promise<void> {
    await this.datastore.configstore.delete(id).catch(() => undefined);
  }

  async removeContent(key: string): Promise<void> {
    await rm(this.contentPath(key), { force: true });
  }

  private contentPath(id: string): string {
    const file = path.join(this.directory, id);
    if (path.dirname(file) !== this.directory) throw new StorageError(`invalid upload id ${id}`);
    return file;
  }
}
