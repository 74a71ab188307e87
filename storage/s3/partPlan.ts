import type { Readable } from 'node:stream';

/** One S3 request of a write: a multipart part, or the incomplete tail kept as `<id>.part`. */
export type Piece = { length: number; kind: 'part' | 'tail' };

/**
 * How a write of the bytes [start, end) is cut into S3 requests, as @tus/s3-store cuts it:
 * parts of `partSize`, and a last piece shorter than `minPartSize` kept as the incomplete tail
 * unless it ends the upload (`size`, undefined while the length is deferred). One piece at a
 * time, as the body arrives: the declared length is the client's word, and a body that claims
 * petabytes must cost nothing before its bytes come.
 */
export function* planPieces(
  start: number,
  end: number,
  size: number | undefined,
  partSize: number,
  minPartSize: number,
): Generator<Piece> {
  for (let at = start; at < end; ) {
    const length = Math.min(partSize, end - at);
    at += length;
    const final = size !== undefined && at === size;
    yield { length, kind: length >= minPartSize || final ? 'part' : 'tail' };
  }
}

/** The body of one piece ended before its declared length: the client sent less. */
export class ShortBody extends Error {
  constructor(readonly missing: number) {
    super(`the request body ended ${missing} bytes short of its declared length`);
  }
}

/**
 * Reads a stream in consecutive slices of given lengths without copying: `next(length)` yields
 * exactly the next `length` bytes, then ends; it throws ShortBody if the source ends first.
 */
export class StreamSlicer {
  private readonly chunks: AsyncIterator<Buffer>;
  private leftover: Buffer | undefined;

  constructor(source: Readable) {
    this.chunks = source[Symbol.asyncIterator]();
  }

  private async take(max: number): Promise<Buffer | undefined> {
    let chunk = this.leftover;
    this.leftover = undefined;
    if (!chunk) {
      const next = await this.chunks.next();
      if (next.done) return undefined;
      chunk = next.value;
    }
    if (chunk.length <= max) return chunk;
    this.leftover = chunk.subarray(max);
    return chunk.subarray(0, max);
  }

  async *next(length: number): AsyncGenerator<Buffer> {
    let missing = length;
    while (missing > 0) {
      const chunk = await this.take(missing);
      if (!chunk) throw new ShortBody(missing);
      missing -= chunk.length;
      yield chunk;
    }
  }
}
