import { BasePlugin, type PluginOpts, type Uppy, type UppyFile } from '@uppy/core';
import { sha256OfBlob } from './sha256.ts';
import type { FileMeta, UploadBody } from './types.ts';

/** Each progress update re-renders the Dashboard; ten a second look smooth enough. */
const PROGRESS_INTERVAL_MS = 100;

/**
 * A pre-processor that hashes every local file before it is uploaded and puts the sha256 in its
 * metadata: the server deduplicates by it and checks the bytes it receives against it.
 */
export class ContentHashing extends BasePlugin<PluginOpts, FileMeta, UploadBody> {
  constructor(uppy: Uppy<FileMeta, UploadBody>, opts?: PluginOpts) {
    super(uppy, opts);
    this.id = opts?.id ?? 'ContentHashing';
    this.type = 'modifier';
    this.defaultLocale = { strings: { hashingFile: 'Computing SHA-256' } };
    this.i18nInit();
  }

  override install(): void {
    this.uppy.addPreProcessor(this.hashFiles);
  }

  override uninstall(): void {
    this.uppy.removePreProcessor(this.hashFiles);
  }

  // One file at a time: hashing is bound by disk and CPU, not by waiting.
  private readonly hashFiles = async (fileIDs: string[]): Promise<void> => {
    for (const id of fileIDs) await this.hashFile(id);
  };

  private async hashFile(id: string): Promise<void> {
    const file = this.uppy.getFile(id);
    if (!file || file.isRemote || !file.data || file.meta.sha256 || file.progress.uploadComplete)
      return;
    const data = file.data;
    const removed = new AbortController();
    const onRemoved = (removedFile: UppyFile<FileMeta, UploadBody> | undefined) => {
      if (removedFile?.id === id) removed.abort();
    };
    this.uppy.on('file-removed', onRemoved);
    let lastReport = 0;
    const report = (bytesHashed: number) => {
      lastReport = performance.now();
      this.uppy.emit('preprocess-progress', this.uppy.getFile(id), {
        mode: 'determinate',
        message: this.i18n('hashingFile'),
        value: data.size > 0 ? bytesHashed / data.size : 1,
      });
    };
    try {
      report(0);
      const sha256 = await sha256OfBlob(
        data,
        (bytesHashed) => {
          if (performance.now() - lastReport >= PROGRESS_INTERVAL_MS) report(bytesHashed);
        },
        removed.signal,
      );
      this.uppy.setFileMeta(id, { sha256 });
    } catch (error) {
      // The file still uploads, without a hash: the server then has nothing to dedupe it by.
      if (!removed.signal.aborted) this.uppy.log(`[ContentHashing] ${id}: ${error}`, 'warning');
    } finally {
      this.uppy.off('file-removed', onRemoved);
      const current = this.uppy.getFile(id);
      if (current) this.uppy.emit('preprocess-complete', current);
    }
  }
}
