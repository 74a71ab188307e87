import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { ByteRange } from '../storage/types.ts';
import { contentRange, rangeLength } from './ranges.ts';

/** A multipart/byteranges body (RFC 9110 §14.6) whose length is known before it is read. */
export type MultipartBody = {
  contentType: string;
  length: number;
  /** The body, reading each part through `open` only when the client has taken the one before. */
  body(open: OpenRange): Readable;
};

/** Opens one part's bytes; called for each part in turn, only once the previous one is sent. */
type OpenRange = (range: ByteRange) => Promise<Readable>;

/**
 * Lays out the body of a 206 for several ranges. A slow client holds one storage read open at
 * a time, not one per part.
 */
export function multipartByteranges(
  ranges: ByteRange[],
  size: number,
  partContentType: string,
): MultipartBody {
  const boundary = randomBytes(16).toString('hex');
  // When a multipart response payload is generated, the server SHOULD send the parts in the
  // same order that the corresponding range-spec appeared in the received Range header field.
  const heads = ranges.map((range, index) =>
    Buffer.from(
      `${index === 0 ? '' : '\r\n'}--${boundary}\r\n` +
        // Within the header area of each body part, the sender MUST generate a Content-Range
        // header field corresponding to the range being enclosed in that body part. If the
        // selected representation would have had a Content-Type header field in a 200 (OK)
        // response, the sender SHOULD generate that same Content-Type header field.
        `Content-Type: ${partContentType}\r\n` +
        `Content-Range: ${contentRange(range, size)}\r\n\r\n`,
    ),
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const length =
    heads.reduce((sum, head) => sum + head.length, 0) +
    ranges.reduce((sum, range) => sum + rangeLength(range), 0) +
    tail.length;

  async function* parts(open: OpenRange): AsyncGenerator<Buffer> {
    for (const [index, range] of ranges.entries()) {
      yield heads[index] as Buffer;
      yield* await open(range);
    }
    yield tail;
  }

  return {
    contentType: `multipart/byteranges; boundary=${boundary}`,
    length,
    body: (open) => Readable.from(parts(open), { objectMode: false }),
  };
}
