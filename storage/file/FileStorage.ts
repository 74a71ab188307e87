/**
 * The embedded default: @tus/file-store under DATA_DIR. In that directory it writes:
 *
 * - `<id>`: the upload's bytes, growing as PATCHes arrive (absent for an upload linked to
 *   another's bytes);
 * - `<id>.json`: the upload's record (length, metadata, creation date, and the finish time in
 *   the `tus-finished` metadata key; `storage.path` names the owner whose bytes a linked upload
 *   shares);
 * - `refs/<owner>/<id>`: one reference per upload that uses the bytes stored under `<owner>`,
 *   with their digests (JSON), so shared bytes go only with their last reference.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { access, constants, mkdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { ERRORS, Upload } from '@tus/utils';
import {
  type ByteRange,
  type ContentSource,
  finishedNow,
  linkedOwner,
  StorageError,
  type StoredContent,
  stampFinished,
  type UploadStorage,
  uploadValidators,
} from '../types.ts';
import { UploadStore } from '../UploadStore.ts';
import { FileContentRefs } from './FileContentRefs.ts';
import { TusFileStore } from './TusFileStore.ts';

/** The embedded default: @tus/file-store under DATA_DIR, `<id>` holds bytes, `<id>.json` the state. */
export class FileStorage implements UploadStorage {
  readonly kind = 'file';
  readonly datastore: UploadStore;
  /** @tus/file-store itself: its files and its records (`configstore`). */
  private readonly store: TusFileStore;
  readonly description: string;
  readonly refs: FileContentRefs;
  private readonly directory: string;

  constructor(options: { directory: string; expirySeconds: number }) {
    this.directory = path.resolve(options.directory);
    this.description = `embedded file store at ${this.directory}`;
    this.store = new TusFileStore({
      directory: this.directory,
      expirationPeriodInMilliseconds: options.expirySeconds * 1000,
    });
    this.datastore = new UploadStore(this.store, {
      recordOf: async (id) => {
        const record = (await this.store.configstore.get(id)) as Upload | undefined;
        if (!record) throw ERRORS.FILE_NOT_FOUND;
        return new Upload({ ...record, id });
      },
      removeRecord: (id) => this.removeRecord(id),
    });
    this.refs = new FileContentRefs(path.join(this.directory, 'refs'));
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
    // The record as stored: getUpload drops a finished upload's creation date.
    const record = (await this.store.configstore.get(id)) as Upload | undefined;
    if (!record) return undefined;
    const key = linkedOwner(record, id) ?? id;
    const info = await stat(this.contentPath(key)).catch(() => undefined);
    if (!info) return undefined;
    // Stored content is never written again, so key, size and mtime pin the bytes.
    const content = { lastModified: info.mtime, identity: `${key}:${info.size}:${info.mtimeMs}` };
    return {
      key,
      size: info.size,
      ...uploadValidators(id, info.size, record, key, content),
      metadata: upload.metadata ?? {},
    };
  }

  async markFinished(upload: Upload): Promise<Upload> {
    const at = new Date();
    const record = (await this.store.configstore.get(upload.id)) as Upload | undefined;
    if (record) await this.store.configstore.set(upload.id, stampFinished(record, at));
    return stampFinished(upload, at);
  }

  async read(id: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable> {
    return this.readContent(await this.contentKeyOf(id), range, signal);
  }

  async readContent(key: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable> {
    // Node 20 opens, and never closes, the file of a stream created with an aborted signal.
    signal?.throwIfAborted();
    return createReadStream(this.contentPath(key), { ...range, signal });
  }

  async close(): Promise<void> {}

  async locationOf(id: string): Promise<Record<string, string>> {
    return { Type: 'filestore', Path: this.contentPath(await this.contentKeyOf(id)) };
  }

  recordOf(id: string): Promise<Upload> {
    return this.datastore.getUpload(id);
  }

  async contentKeyOf(id: string): Promise<string> {
    const info = (await this.store.configstore.get(id)) as Upload | undefined;
    return linkedOwner(info, id) ?? id;
  }

  async contentSize(key: string): Promise<number | undefined> {
    return (await stat(this.contentPath(key)).catch(() => undefined))?.size;
  }

  async createLinked(upload: Upload, owner: string): Promise<void> {
    const record = new Upload({
      ...finishedNow(upload),
      offset: upload.size ?? 0,
      creation_date: upload.creation_date ?? new Date().toISOString(),
      storage: { type: 'file', path: owner },
    });
    await this.store.configstore.set(upload.id, record);
  }

  async removeRecord(id: string): Promise<void> {
    await this.store.configstore.delete(id).catch(() => undefined);
  }

  async removeContent(key: string): Promise<void> {
    await rm(this.contentPath(key), { force: true });
  }

  /** The final upload's file is its sources' files, streamed one after another. */
  async concatenate(upload: Upload, sources: ContentSource[]): Promise<void> {
    await this.store.create(upload);
    try {
      const out = createWriteStream(this.contentPath(upload.id), { flags: 'a' });
      for (const { key } of sources) {
        await pipeline(createReadStream(this.contentPath(key)), out, { end: false });
      }
      out.end();
      await finished(out);
      const written = (await stat(this.contentPath(upload.id))).size;
      if (written !== upload.size) {
        throw new StorageError(`concatenation wrote ${written} of ${upload.size} bytes`);
      }
    } catch (error) {
      await this.store.remove(upload.id).catch(() => undefined);
      throw error;
    }
  }

  private contentPath(id: string): string {
    const file = path.join(this.directory, id);
    if (path.dirname(file) !== this.directory) throw new StorageError(`invalid upload id ${id}`);
    return file;
  }
}
