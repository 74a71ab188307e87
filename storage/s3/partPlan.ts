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

/**
 * The least bytes of one chunk of a streamed part on the wire. The SDK's aws-chunked encoding
 * (the checksum trailer) sends every chunk of the body as a chunk of its own, and AWS-like
 * stores refuse a chunk under 8 KiB that is not the last: VersityGW v1.8.0 answers
 * InvalidChunkSize and closes the connection mid-body, which reached the client as a reset. A
 * request body arrives in whatever pieces the socket gave, often a few KiB.
 */
const MIN_WIRE_CHUNK = 64 * 1024;

/**
 * `chunks` regrouped so that every chunk but the last holds at least `min` bytes. A chunk that
 * is already that long passes as it is; only runs of short ones are copied into one.
 */
export async function* gathered(
  chunks: AsyncIterable<Buffer>,
  min = MIN_WIRE_CHUNK,
): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let length = 0;
  for await (const chunk of chunks) {
    if (length === 0 && chunk.length >= min) {
      yield chunk;
      continue;
    }
    pending.push(chunk);
    length += chunk.length;
    if (length >= min) {
      yield Buffer.concat(pending, length);
      pending = [];
      length = 0;
    }
  }
  if (length > 0) yield Buffer.concat(pending, length);
}
