import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { type FileHandle, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';

/**
 * The bytes of the part in flight, kept until S3 has them, so that a body cut short loses none:
 * they are then sent again as a part (or the tail) of their own.
 */
export interface Spool {
  /** Bytes appended so far. */
  readonly length: number;
  append(chunk: Buffer): Promise<void>;
  /** Everything appended, from the first byte. */
  reader(): Readable;
  discard(): Promise<void>;
}

class MemorySpool implements Spool {
  private chunks: Buffer[] = [];
  length = 0;

  constructor(private readonly release: () => void) {}

  async append(chunk: Buffer): Promise<void> {
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  reader(): Readable {
    return Readable.from(this.chunks, { objectMode: false });
  }

  async discard(): Promise<void> {
    this.chunks = [];
    this.release();
  }
}

class FileSpool implements Spool {
  length = 0;

  constructor(
    private readonly file: string,
    private readonly handle: FileHandle,
  ) {}

  async append(chunk: Buffer): Promise<void> {
    await this.handle.write(chunk);
    this.length += chunk.length;
  }

  reader(): Readable {
    return createReadStream(this.file, { highWaterMark: 1024 * 1024 });
  }

  async discard(): Promise<void> {
    await this.handle.close().catch(() => undefined);
    await rm(this.file, { force: true });
  }
}

/**
 * Hands out spools: in memory while the pieces held in memory stay within `memoryBytes` (the
 * chunks are kept, not copied), in a temporary file beyond, so many uploads at once cost disk
 * writes rather than memory.
 */
export class Spools {
  private held = 0;

  constructor(private readonly memoryBytes: number) {}

  async open(length: number): Promise<Spool> {
    if (this.held + length <= this.memoryBytes) {
      this.held += length;
      let released = false;
      return new MemorySpool(() => {
        if (released) return;
        released = true;
        this.held -= length;
      });
    }
    const file = path.join(tmpdir(), `tus-spool-${randomUUID()}`);
    return new FileSpool(file, await open(file, 'w'));
  }
}
