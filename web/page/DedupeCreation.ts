import { BasePlugin, type PluginOpts, type Uppy, type UppyFile } from '@uppy/core';
import type { TusOpts } from '@uppy/tus';
import { chunkSizeFor } from './chunkSize.ts';
import type { CreatedUploads } from './createdUploads.ts';
import { proveOwnership } from './proof.ts';
import { createUpload } from './tusCreation.ts';
import type { FileMeta, UploadBody } from './types.ts';

export type DedupeCreationOpts = PluginOpts & {
  /** The tus creation endpoint, absolute. */
  endpoint: string;
  /** Headers every request carries (Authorization when the page has a token). */
  headers: Record<string, string>;
  createdUploads: CreatedUploads;
};

/**
 * A pre-processor that runs after hashing and creates each file's tus upload itself, so it sees
 * the server's answer. A dedupe hit (Upload-Offset equal to the size: content this user already
 * uploaded) finishes the file here, without a byte sent; so does a challenge answered from the
 * whole file (read again, as a stream) when someone else stored the same content. Otherwise Tus is handed the created
 * URL and uploads there. The chunk size for the file is decided here too.
 */
export class DedupeCreation extends BasePlugin<DedupeCreationOpts, FileMeta, UploadBody> {
  constructor(uppy: Uppy<FileMeta, UploadBody>, opts: DedupeCreationOpts) {
    super(uppy, opts);
    this.id = opts.id ?? 'DedupeCreation';
    this.type = 'modifier';
    this.defaultLocale = { strings: { checkingServer: 'Asking the server for this content' } };
    this.i18nInit();
  }

  override install(): void {
    this.uppy.addPreProcessor(this.prepareFiles);
    this.uppy.on('upload-success', this.forgetCreated);
    this.uppy.on('file-removed', this.forgetCreated);
  }

  override uninstall(): void {
    this.uppy.removePreProcessor(this.prepareFiles);
    this.uppy.off('upload-success', this.forgetCreated);
    this.uppy.off('file-removed', this.forgetCreated);
  }

  private readonly prepareFiles = async (fileIDs: string[]): Promise<void> => {
    await Promise.all(fileIDs.map((id) => this.prepareFile(id)));
  };

  // A finished or abandoned upload is nothing to go on with after a reload.
  private readonly forgetCreated = (file: UppyFile<FileMeta, UploadBody> | undefined) => {
    if (file) this.opts.createdUploads.forget(file.id);
  };

  private async prepareFile(id: string): Promise<void> {
    const file = this.uppy.getFile(id);
    if (!file || file.isRemote || !file.data || file.progress.uploadComplete) return;
    const size = file.data.size;
    const tus: TusOpts<FileMeta, UploadBody> = { ...file.tus, chunkSize: chunkSizeFor(size) };
    const sha256 = file.meta.sha256;
    // Without a hash there is nothing to dedupe by; an upload that exists already goes on.
    if (typeof sha256 === 'string' && !tus.uploadUrl) {
      // Created before a reload: Tus asks the server for its offset and goes on from there.
      const url =
        this.opts.createdUploads.find(id, sha256, size) ?? (await this.create(file, size, sha256));
      if (url === null) return;
      // undefined: creation failed, and Tus creates the upload itself.
      if (url) tus.uploadUrl = url;
    }
    if (this.uppy.getFile(id)) this.uppy.setFileState(id, { tus });
  }

  /** Creates the upload; null once the file is finished (dedupe hit) or gone. */
  private async create(
    file: UppyFile<FileMeta, UploadBody>,
    size: number,
    sha256: string,
  ): Promise<string | null | undefined> {
    this.uppy.emit('preprocess-progress', file, {
      mode: 'indeterminate',
      message: this.i18n('checkingServer'),
    });
    try {
      const metadata: Record<string, string> = { filename: file.meta.name, sha256 };
      if (file.meta.type) metadata.filetype = file.meta.type;
      const created = await createUpload(this.opts.endpoint, size, metadata, this.opts.headers);
      if (!this.uppy.getFile(file.id)) return null;
      let lastReport = 0;
      const proven =
        created.offset !== size &&
        (await proveOwnership(
          created.url,
          created.challenge,
          file.data as Blob,
          this.opts.headers,
          (bytesHashed) => {
            // The answer reads the whole file: show how far, ten times a second at most.
            if (performance.now() - lastReport < 100) return;
            lastReport = performance.now();
            this.uppy.emit('preprocess-progress', this.uppy.getFile(file.id), {
              mode: 'determinate',
              message: this.i18n('checkingServer'),
              value: bytesHashed / size,
            });
          },
        ).catch(() => false));
      if (created.offset === size || proven) {
        this.finishWithoutSending(file.id, created.url, size > 0);
        return null;
      }
      this.opts.createdUploads.remember(file.id, { url: created.url, sha256, size });
      return created.url;
    } catch (error) {
      this.uppy.log(`[DedupeCreation] ${file.id}: ${error}`, 'warning');
      return undefined;
    } finally {
      const current = this.uppy.getFile(file.id);
      if (current) this.uppy.emit('preprocess-complete', current);
    }
  }

  /** The events Tus emits for an upload, so Uppy and the Dashboard show the file as done. */
  private finishWithoutSending(id: string, uploadURL: string, deduplicated: boolean): void {
    this.uppy.emit('upload-start', [this.uppy.getFile(id)]);
    this.uppy.emit('upload-success', this.uppy.getFile(id), {
      uploadURL,
      status: 201,
      // An empty file is complete once created: nothing was deduplicated.
      body: { deduplicated },
    });
  }
}
