import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access, constants, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { FileStore } from '@tus/file-store';
import {
  type ByteRange,
  expireOnlyUnfinished,
  StorageError,
  type StoredContent,
  type UploadStorage,
} from './types.ts';

/** @tus/file-store whose expiry sweep spares finished uploads (its own compares a stale offset). */
class TusFileStore extends FileStore {
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

/** The embedded default: @tus/file-store under DATA_DIR, `<id>` holds bytes, `<id>.json` the state. */
export class FileStorage implements UploadStorage {
  readonly kind = 'file';
  readonly datastore: TusFileStore;
  readonly description: string;
  private readonly directory: string;

  constructor(options: { directory: string; expirySeconds: number }) {
    this.directory = path.resolve(options.directory);
    this.description = `embedded file store at ${this.directory}`;
    this.datastore = new TusFileStore({
      directory: this.directory,
      expirationPeriodInMilliseconds: options.expirySeconds * 1000,
    });
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
    const info = await stat(this.contentPath(id));
    // Finished uploads are never written again, so id, size and mtime pin the bytes.
    const tag = createHash('sha256').update(`${id}:${info.size}:${info.mtimeMs}`).digest('hex');
    return {
      size: info.size,
      lastModified: info.mtime,
      etag: `"${tag.slice(0, 32)}"`,
      metadata: upload.metadata ?? {},
    };
  }

  async read(id: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable> {
    return createReadStream(this.contentPath(id), { ...range, signal });
  }

  async close(): Promise<void> {}

  private contentPath(id: string): string {
    const file = path.join(this.directory, id);
    if (path.dirname(file) !== this.directory) throw new StorageError(`invalid upload id ${id}`);
    return file;
  }
}
