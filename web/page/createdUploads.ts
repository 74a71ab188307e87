const KEY_PREFIX = 'upload-page:created:';

type CreatedEntry = { url: string; sha256: string; size: number };

/**
 * Uploads the page created for a file that has not finished yet, by Uppy file id, kept in
 * localStorage: after a reload the same file goes on at that URL instead of starting over.
 */
export class CreatedUploads {
  constructor(private readonly storage: Storage) {}

  /** The URL created earlier for this file, if its content is still the same. */
  find(fileId: string, sha256: string, size: number): string | undefined {
    try {
      const entry = JSON.parse(
        this.storage.getItem(KEY_PREFIX + fileId) ?? 'null',
      ) as Partial<CreatedEntry> | null;
      if (entry?.sha256 === sha256 && entry.size === size && typeof entry.url === 'string') {
        return entry.url;
      }
    } catch {
      // A malformed entry is as good as none.
    }
    return undefined;
  }

  remember(fileId: string, entry: CreatedEntry): void {
    try {
      this.storage.setItem(KEY_PREFIX + fileId, JSON.stringify(entry));
    } catch {
      // Storage full or disabled: the upload works, it just cannot resume after a reload.
    }
  }

  forget(fileId: string): void {
    try {
      this.storage.removeItem(KEY_PREFIX + fileId);
    } catch {
      // Nothing stored then either.
    }
  }
}
