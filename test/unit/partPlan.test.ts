import { Readable } from 'node:stream';
import { describe, expect, test } from '@jest/globals';
import { declaredLength } from '../../request/context.ts';
import {
  gathered,
  type Piece,
  planPieces,
  ShortBody,
  StreamSlicer,
} from '../../storage/s3/partPlan.ts';

const MIB = 1024 * 1024;
const part = (length: number): Piece => ({ length, kind: 'part' });
const tail = (length: number): Piece => ({ length, kind: 'tail' });

describe('planPieces: how a write is cut into S3 requests (parts of 8 MiB, minimum 5 MiB)', () => {
  // [case, start, end, upload size (undefined: deferred), expected pieces]
  const rows: Array<[string, number, number, number | undefined, Piece[]]> = [
    ['nothing to write', 0, 0, 10 * MIB, []],
    ['one whole upload below a part', 0, 3 * MIB, 3 * MIB, [part(3 * MIB)]],
    ['one byte, the whole upload', 0, 1, 1, [part(1)]],
    ['exactly one part, not the end', 0, 8 * MIB, 20 * MIB, [part(8 * MIB)]],
    [
      'two parts and a final short one',
      0,
      20 * MIB,
      20 * MIB,
      [part(8 * MIB), part(8 * MIB), part(4 * MIB)],
    ],
    [
      'a short piece that does not end the upload is the tail',
      0,
      12 * MIB,
      64 * MIB,
      [part(8 * MIB), tail(4 * MIB)],
    ],
    [
      'a piece of at least 5 MiB is a part even when short of 8',
      0,
      14 * MIB,
      64 * MIB,
      [part(8 * MIB), part(6 * MIB)],
    ],
    ['exactly 5 MiB is a part', 0, 5 * MIB, 64 * MIB, [part(5 * MIB)]],
    ['5 MiB − 1 is the tail', 0, 5 * MIB - 1, 64 * MIB, [tail(5 * MIB - 1)]],
    ['starting mid-upload', 16 * MIB, 26 * MIB, 26 * MIB, [part(8 * MIB), part(2 * MIB)]],
    ['deferred length: nothing is final', 0, 9 * MIB, undefined, [part(8 * MIB), tail(1 * MIB)]],
    ['deferred length, whole parts', 0, 16 * MIB, undefined, [part(8 * MIB), part(8 * MIB)]],
  ];
  test.each(rows)('%s', (_name, start, end, size, expected) => {
    const pieces = [...planPieces(start, end, size, 8 * MIB, 5 * MIB)];
    expect(pieces).toEqual(expected);
    // Every byte of the write is in exactly one piece.
    expect(pieces.reduce((sum, piece) => sum + piece.length, 0)).toBe(end - start);
  });
});

/** Everything a slice stream yields, as one Buffer, and how it ended. */
async function drain(
  stream: AsyncIterable<Buffer>,
): Promise<{ bytes: Buffer; chunks: number; error?: unknown }> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of stream) chunks.push(chunk);
    return { bytes: Buffer.concat(chunks), chunks: chunks.length };
  } catch (error) {
    return { bytes: Buffer.concat(chunks), chunks: chunks.length, error };
  }
}

function source(chunkLengths: number[]): { stream: Readable; all: Buffer } {
  let value = 0;
  const chunks = chunkLengths.map((length) =>
    Buffer.from(Array.from({ length }, () => value++ % 251)),
  );
  return { stream: Readable.from(chunks), all: Buffer.concat(chunks) };
}

test('a declared length of petabytes plans its pieces one at a time, as they are needed', () => {
  const pieces = planPieces(0, 2 ** 52, undefined, 8 * MIB, 5 * MIB);
  expect(pieces.next().value).toEqual(part(8 * MIB));
  expect(pieces.next().value).toEqual(part(8 * MIB));
});

describe('StreamSlicer: consecutive slices of a body, byte for byte', () => {
  // [case, chunk lengths of the source, slice lengths]
  const rows: Array<[string, number[], number[]]> = [
    ['slices on chunk boundaries', [100, 100, 100], [100, 200]],
    ['slices inside chunks', [250, 250], [120, 260, 120]],
    ['one slice of everything', [7, 1, 300, 2], [310]],
    ['many one-byte chunks', Array(500).fill(1), [200, 300]],
    ['a large chunk cut into many slices', [1000], [1, 2, 3, 994]],
  ];
  test.each(rows)('%s', async (_name, chunkLengths, sliceLengths) => {
    const { stream, all } = source(chunkLengths);
    const slicer = new StreamSlicer(stream);
    let at = 0;
    for (const length of sliceLengths) {
      const { bytes, error } = await drain(slicer.next(length));
      expect(error).toBeUndefined();
      expect(bytes.equals(all.subarray(at, at + length))).toBe(true);
      at += length;
    }
    expect(at).toBe(all.length);
  });

  test('a body that ends early yields what came, then ShortBody with the bytes missing', async () => {
    const { stream, all } = source([100, 50]);
    const slicer = new StreamSlicer(stream);
    const first = await drain(slicer.next(100));
    expect(first.bytes.equals(all.subarray(0, 100))).toBe(true);
    const second = await drain(slicer.next(80));
    expect(second.bytes.equals(all.subarray(100, 150))).toBe(true);
    expect(second.error).toBeInstanceOf(ShortBody);
    expect((second.error as ShortBody).missing).toBe(30);
  });
});

describe('gathered: every chunk of a streamed part but the last is at least 64 KiB on the wire', () => {
  const KIB = 1024;
  const collect = async (chunks: AsyncIterable<Buffer>) => {
    const out: Buffer[] = [];
    for await (const chunk of chunks) out.push(chunk);
    return out;
  };
  async function* chunksOf(lengths: number[]): AsyncGenerator<Buffer> {
    let at = 0;
    for (const length of lengths) {
      yield Buffer.alloc(length, at % 251);
      at += 1;
    }
  }
  const rows: Array<[string, number[], number[]]> = [
    ['nothing', [], []],
    ['one short chunk alone is the last', [100], [100]],
    [
      'long chunks pass as they are',
      [64 * KIB, 100 * KIB, 64 * KIB],
      [64 * KIB, 100 * KIB, 64 * KIB],
    ],
    ['short chunks are joined until 64 KiB', [40 * KIB, 30 * KIB, 1, 1], [70 * KIB, 2]],
    ['a long chunk after short ones joins them', [1 * KIB, 64 * KIB, 2 * KIB], [65 * KIB, 2 * KIB]],
    ['socket-sized pieces of a 1 MiB part', Array(256).fill(4 * KIB), Array(16).fill(64 * KIB)],
  ];
  test.each(rows)('%s', async (_name, lengths, expected) => {
    const out = await collect(gathered(chunksOf(lengths)));
    expect(out.map((chunk) => chunk.length)).toEqual(expected);
    const sent = Buffer.concat(await collect(chunksOf(lengths)));
    expect(Buffer.concat(out).equals(sent)).toBe(true);
  });

  test('a chunk that is long enough alone is not copied', async () => {
    const long = Buffer.alloc(64 * KIB);
    const out = await collect(
      gathered(
        (async function* () {
          yield long;
        })(),
      ),
    );
    expect(out[0]).toBe(long);
  });
});

describe('declaredLength: Content-Length as a byte count', () => {
  const rows: Array<[string | undefined, number | undefined]> = [
    ['0', 0],
    ['12345', 12345],
    ['9007199254740991', Number.MAX_SAFE_INTEGER],
    ['9007199254740992', undefined],
    [undefined, undefined],
    ['', undefined],
    ['-1', undefined],
    ['1e3', undefined],
    [' 12', undefined],
    ['12, 12', undefined],
  ];
  test.each(rows)('%p → %p', (header, expected) => {
    expect(declaredLength(header)).toBe(expected);
  });
});
