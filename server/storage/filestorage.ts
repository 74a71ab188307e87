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

/** The embedded default: @tus/file-store under DATA_DIR, `<id>` holds bytes, `<id>.json` the state. */
export class FileStorage implements UploadStorage {
  readonly kind = 'file';
  readonly datastore: FileStore;
  readonly description: string;
  private readonly directory: string;

  constructor(options: { directory: string; expirySeconds: number }) {
    this.directory = path.resolve(options.directory);
    this.description = `embedded file store at ${this.directory}`;
    this.datastore = new FileStore({
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
    return { size: info.size, lastModified: info.mtime };
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
