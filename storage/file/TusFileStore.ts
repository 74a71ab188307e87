import { FileStore } from '@tus/file-store';
import type { Upload } from '@tus/utils';
import { linkedOwner } from '../types.ts';

/**
 * @tus/file-store with an expiry sweep that spares finished uploads (its own compares a stale
 * offset and would delete them). Linked uploads are storage/UploadStore's.
 */
export class TusFileStore extends FileStore {
  override async deleteExpired(): Promise<number> {
    const period = this.getExpiration();
    if (period <= 0 || !this.configstore.list) return 0;
    const now = Date.now();
    let deleted = 0;
    for (const id of await this.configstore.list()) {
      // A linked upload has no file: it is finished, and spared.
      const record = (await this.configstore.get(id)) as Upload | undefined;
      if (record && linkedOwner(record, id)) continue;
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
