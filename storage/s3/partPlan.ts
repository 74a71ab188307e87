import type { Readable } from 'node:stream';

/**
 * One S3 request of a write: a multipart part, or the incomplete tail kept as `<id>.part`; or
 * `over`: the rest of the write, which no part is left to hold (the write stops there, 413).
 */
export type Piece = { length: number; kind: 'part' | 'tail' | 'over' };

const GIB = 1024 ** 3;

/** What S3 allows a multipart upload, and the part size this server prefers. */
export type PartLimits = {
  /** S3_PART_SIZE: the part size whenever the limits leave the choice. */
  preferred: number;
  /** "5 MiB. There is no minimum size limit on the last part of your multipart upload." */
  minPartSize: number;
  /** "Maximum number of parts per upload: 10,000" */
  maxParts: number;
  /** "Part size: 5 MiB to 5 GiB." */
  maxPartSize: number;
  /** "Maximum object size: 5 TiB": no upload may pass it, a deferred length is planned for it. */
  maxObjectSize: number;
  /** While the length is deferred, parts in a row of one size (then twice as long). */
  partsPerSize: number;
};

/** The S3 limits (AWS "Amazon S3 multipart upload limits") with a preferred part size. */
export const s3Limits = (preferred: number): PartLimits => ({
  preferred,
  minPartSize: 5 * 1024 * 1024,
  maxParts: 10_000,
  maxPartSize: 5 * GIB,
  maxObjectSize: 5 * 1024 * GIB,
  partsPerSize: 800,
});

/**
 * The length of part `number` while the upload's length is deferred: S3_PART_SIZE for the first
 * 800 parts, twice that for the next 800, and so on, at most 5 GiB. Parts may differ in size:
 * small uploads keep small parts, and 10,000 parts still hold over 5 TiB (13.6 TiB at 5 MiB).
 */
const deferredPartSize = (number: number, limits: PartLimits) =>
  Math.min(
    limits.maxPartSize,
    Math.max(limits.preferred, limits.minPartSize) *
      2 ** Math.floor((number - 1) / limits.partsPerSize),
  );

/** The bytes parts `number` to the last can hold while the length is deferred. */
export function deferredRoom(number: number, limits: PartLimits): number {
  let room = 0;
  for (let first = Math.max(number, 1); first <= limits.maxParts; ) {
    const run = limits.partsPerSize;
    const runEnd = Math.min(limits.maxParts, Math.ceil(first / run) * run);
    room += (runEnd - first + 1) * deferredPartSize(first, limits);
    first = runEnd + 1;
  }
  return room;
}

/**
 * The length of a whole part `number` starting at byte `at`. A known length spreads what is left
 * over the parts left, never below S3_PART_SIZE (as @tus/s3-store's calcOptimalPartSize does for
 * a whole upload); a deferred one follows deferredPartSize.
 */
function partSizeAt(
  at: number,
  number: number,
  size: number | undefined,
  limits: PartLimits,
): number {
  if (size === undefined) return deferredPartSize(number, limits);
  const partsLeft = Math.max(limits.maxParts - number + 1, 1);
  return Math.max(limits.preferred, limits.minPartSize, Math.ceil((size - at) / partsLeft));
}

/**
 * Whether a write of [start, end) may begin, `at` being the bytes in parts (an earlier tail lies
 * between), or gets 413 before any of its bytes (or the tail) is read. Never past 5 TiB, which S3
 * would refuse only when it completes the upload. A known length needs every byte left to fit in
 * the parts left at 5 GiB each; the plan keeps that true once it holds (from the first part for
 * any length up to 5 TiB), so the first write refused is the first that could not fit. A deferred
 * one needs room for its first byte: the plan stores what fits, then stops (`over`).
 */
export function fitsParts(
  at: number,
  start: number,
  end: number,
  size: number | undefined,
  number: number,
  limits: PartLimits,
): boolean {
  if (size !== undefined) {
    const partsLeft = Math.max(limits.maxParts - number + 1, 0);
    return size <= limits.maxObjectSize && size - at <= partsLeft * limits.maxPartSize;
  }
  return end <= start || (start < limits.maxObjectSize && number <= limits.maxParts);
}

/**
 * What the piece [at, at + length) becomes as part `number`. A whole part and the piece that ends
 * the upload are parts. A shorter one (the write ended) is a part when it has 5 MiB and the bytes
 * after it still fit the parts after it at today's part size (for a deferred length: in
 * deferredRoom); otherwise it is the tail and joins the next write's bytes. So the client's
 * chunk size never adds parts past 10,000, and the part size of a known length never grows.
 */
export function pieceKind(
  at: number,
  length: number,
  size: number | undefined,
  number: number,
  limits: PartLimits,
): 'part' | 'tail' {
  const whole = partSizeAt(at, number, size, limits);
  const after = at + length;
  if (length >= whole || after === size) return 'part';
  if (length < limits.minPartSize) return 'tail';
  const rest =
    size === undefined
      ? limits.maxObjectSize - after <= deferredRoom(number + 1, limits)
      : size - after <= (limits.maxParts - number) * whole;
  return rest ? 'part' : 'tail';
}

/**
 * How a write of the bytes [start, end) is cut into S3 requests, its parts numbered from
 * `number`: whole parts of partSizeAt, and a last piece as pieceKind says. A deferred length
 * stops (`over`) at 5 TiB or once part 10,000 is sent, the bytes before it stored. One piece at
 * a time, as the body arrives: the declared length is the client's word, and a body that claims
 * petabytes must cost nothing before its bytes come.
 */
export function* planPieces(
  start: number,
  end: number,
  size: number | undefined,
  number: number,
  limits: PartLimits,
): Generator<Piece> {
  for (let at = start; at < end; ) {
    // A known length fits from the first write on (fitsParts); a deferred one may not.
    if (at >= limits.maxObjectSize || number > limits.maxParts) {
      yield { length: end - at, kind: 'over' };
      return;
    }
    const length = Math.min(
      partSizeAt(at, number, size, limits),
      end - at,
      limits.maxObjectSize - at,
    );
    const kind = pieceKind(at, length, size, number, limits);
    at += length;
    if (kind === 'part') number += 1;
    yield { length, kind };
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
