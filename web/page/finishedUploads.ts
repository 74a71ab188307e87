/** One upload that finished from this browser. */
export type FinishedUpload = {
  /** The server's upload id: the download is at /files/<id>. */
  id: string;
  name: string;
  size: number;
  type: string;
  sha256?: string;
  /** The server already held the content, so none was sent. */
  deduplicated: boolean;
  finishedAt: string;
  /** With auth on: a signed link that downloads without the token (until it expires). */
  link?: string;
};

export const FINISHED_UPLOADS_KEY = 'upload-page:finished';
/** Keeps localStorage small; the oldest entries go first. */
const MAX_ENTRIES = 200;

function isFinishedUpload(value: unknown): value is FinishedUpload {
  const entry = value as Partial<FinishedUpload> | null;
  return (
    typeof entry?.id === 'string' &&
    typeof entry.name === 'string' &&
    typeof entry.size === 'number' &&
    typeof entry.type === 'string' &&
    (entry.sha256 === undefined || typeof entry.sha256 === 'string') &&
    typeof entry.deduplicated === 'boolean' &&
    typeof entry.finishedAt === 'string' &&
    (entry.link === undefined || typeof entry.link === 'string')
  );
}

/**
 * The list of finished uploads, newest first, kept in localStorage: the server has no listing
 * of uploads, and this page only shows what was uploaded from this browser.
 */
export class FinishedUploads {
  constructor(private readonly storage: Storage) {}

  list(): FinishedUpload[] {
    try {
      const stored: unknown = JSON.parse(this.storage.getItem(FINISHED_UPLOADS_KEY) ?? '[]');
      return Array.isArray(stored) ? stored.filter(isFinishedUpload) : [];
    } catch {
      return [];
    }
  }

  add(upload: FinishedUpload): void {
    const others = this.list().filter((entry) => entry.id !== upload.id);
    this.save([upload, ...others].slice(0, MAX_ENTRIES));
  }

  clear(): void {
    this.save([]);
  }

  private save(entries: FinishedUpload[]): void {
    try {
      this.storage.setItem(FINISHED_UPLOADS_KEY, JSON.stringify(entries));
    } catch {
      // Storage full or disabled: the entry is not kept.
    }
  }
}
