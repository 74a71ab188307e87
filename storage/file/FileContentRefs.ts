import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ContentRecord, ContentRefs } from '../types.ts';

/** References as small JSON files: `refs/<owner>/<uploadId>`. */
export class FileContentRefs implements ContentRefs {
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

  /** An owner directory left empty is removed on the way. */
  async isReferenced(owner: string): Promise<boolean> {
    const entries = await readdir(path.join(this.directory, owner)).catch(() => []);
    if (entries.length === 0)
      await rm(path.join(this.directory, owner), { recursive: true, force: true });
    return entries.length > 0;
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
