import { Readable } from 'node:stream';
import { describe, expect, test } from '@jest/globals';
import { declaredLength } from '../../request/context.ts';
import {
  deferredRoom,
  fitsParts,
  gathered,
  type PartLimits,
  type Piece,
  pieceKind,
  planPieces,
  ShortBody,
  StreamSlicer,
  s3Limits,
} from '../../storage/s3/partPlan.ts';
import { seededRandom } from '../harness/seededRandom.ts';

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;
const TIB = 1024 * GIB;
const S3 = s3Limits(8 * MIB);
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
    // The parts before `start` are whole 8 MiB parts.
    const pieces = [...planPieces(start, end, size, 1 + start / (8 * MIB), S3)];
    expect(pieces).toEqual(expected);
    // Every byte of the write is in exactly one piece.
    expect(pieces.reduce((sum, piece) => sum + piece.length, 0)).toBe(end - start);
  });
});

type Outcome = { parts: number; stored: number; refusedAt?: number };

/** A failed check of simulate(), thrown as it is: expect() per piece would cost minutes. */
function check(holds: boolean, what: string, piece?: Piece): void {
  if (!holds) throw new Error(`${what}${piece ? `: ${JSON.stringify(piece)}` : ''}`);
}

/**
 * A whole upload of `total` bytes through the plan, as TusS3Store runs it: each PATCH (of
 * `chunk()` bytes) is checked by fitsParts, then cut by planPieces from the bytes in parts (an
 * earlier tail joins it); a tail waits for the next PATCH. The length is declared from the start
 * (`deferred` false) or with the last PATCH. Every part is checked against S3's limits on the way.
 */
function simulate(
  total: number,
  chunk: () => number,
  limits: PartLimits,
  deferred = false,
): Outcome {
  let stored = 0; // in parts
  let tail = 0;
  let parts = 0;
  while (stored + tail < total) {
    const offset = stored + tail;
    const end = Math.min(total, offset + Math.max(1, chunk()));
    const size = deferred && end < total ? undefined : total;
    if (!fitsParts(stored, offset, end, size, parts + 1, limits)) {
      return { parts, stored: offset, refusedAt: offset };
    }
    tail = 0;
    for (const piece of planPieces(stored, end, size, parts + 1, limits)) {
      check(tail === 0, 'only the last piece may be the tail', piece);
      // 413 mid-PATCH: the bytes before stay.
      if (piece.kind === 'over') return { parts, stored, refusedAt: offset };
      if (piece.kind === 'tail') {
        tail = piece.length;
        continue;
      }
      parts += 1;
      stored += piece.length;
      check(piece.length <= limits.maxPartSize, 'a part is at most 5 GiB', piece);
      check(stored === total || piece.length >= limits.minPartSize, 'a part has 5 MiB', piece);
    }
    // Every byte of the PATCH and of the tail before it is in a part or in the tail.
    check(stored + tail === end, `bytes lost or added in the PATCH ending at ${end}`);
  }
  check(parts <= limits.maxParts, `${parts} parts`);
  return { parts, stored };
}

describe('the part plan stays within S3: at most 10,000 parts of 5 MiB to 5 GiB', () => {
  const MAX_OBJECT = 5 * TIB;
  const partSize = 8 * MIB;
  // Powers of two from 1 byte to 4 TiB, and the lengths where the part size starts to grow.
  const lengths = [
    ...Array.from({ length: 43 }, (_, power) => 2 ** power),
    10_000 * partSize - 1,
    10_000 * partSize,
    10_000 * partSize + 1,
    78 * GIB,
    MAX_OBJECT - 1,
    MAX_OBJECT,
  ];
  const chunkings: Array<[string, (total: number) => () => number]> = [
    ['the whole upload in one PATCH', (total) => () => total],
    ['5 MiB PATCHes', () => () => 5 * MIB],
    ['6 MiB PATCHes', () => () => 6 * MIB],
    ['PATCHes of the part size', () => () => partSize],
    ['PATCHes of the part size + 1', () => () => partSize + 1],
    [
      'PATCHes of 1 to 100 MiB',
      (total) => {
        const next = seededRandom(total % 2 ** 32);
        return () => Math.ceil(next() * 100 * MIB);
      },
    ],
  ];
  // Small PATCHes of a large upload are many: their cost, not their kind, limits the grid.
  const cases = chunkings.flatMap(([name, chunking]) =>
    lengths
      .filter((total) => name === 'the whole upload in one PATCH' || total <= MAX_OBJECT / 8)
      .map((total): [string, number, (total: number) => () => number] => [name, total, chunking]),
  );
  test.each(cases)('%s, %p bytes', (_name, total, chunking) => {
    simulate(total, chunking(total), s3Limits(partSize));
  });

  test('the issue: 78 GiB in 6 MiB PATCHes took 13,334 parts, now it fits', () => {
    const { parts } = simulate(78 * GIB, () => 6 * MIB, s3Limits(partSize));
    expect(parts).toBeLessThanOrEqual(10_000);
  });

  test('5 TiB in 64 MiB + 1 PATCHes, and at either bound of S3_PART_SIZE', () => {
    simulate(MAX_OBJECT, () => 64 * MIB + 1, s3Limits(partSize));
    simulate(MAX_OBJECT, () => 5 * GIB, s3Limits(5 * MIB));
    simulate(MAX_OBJECT, () => GIB + 1, s3Limits(5 * GIB));
  });

  test('one PATCH of the whole upload makes the same parts as before: the part size, then the rest', () => {
    const pieces = [...planPieces(0, 100 * MIB, 100 * MIB, 1, S3)];
    expect(pieces).toEqual([...Array(12).fill(part(8 * MIB)), part(4 * MIB)]);
  });

  test('PATCHes that are multiples of the part size make whole parts only', () => {
    for (let at = 0; at < 80 * MIB; at += 16 * MIB) {
      const pieces = [...planPieces(at, at + 16 * MIB, 80 * MIB, 1 + at / (8 * MIB), S3)];
      expect(pieces).toEqual([part(8 * MIB), part(8 * MIB)]);
    }
  });

  test('a length past 5 TiB is refused at its first PATCH', () => {
    expect(simulate(MAX_OBJECT + 1, () => 8 * MIB, S3).refusedAt).toBe(0);
    expect(fitsParts(0, 0, 1, MAX_OBJECT, 1, S3)).toBe(true);
    // A deferred length stores up to 5 TiB, then stops.
    const last = [...planPieces(MAX_OBJECT - 8 * MIB, MAX_OBJECT + 1, undefined, 9_000, S3)];
    expect(last).toEqual([part(8 * MIB), { length: 1, kind: 'over' }]);
  });

  test('parts used by an older plan: refused once the rest cannot fit, not before', () => {
    // 9,990 parts hold 80 GiB; 10 parts of 5 GiB are left.
    expect(fitsParts(80 * GIB, 80 * GIB, 81 * GIB, 130 * GIB, 9_991, S3)).toBe(true);
    expect(fitsParts(80 * GIB, 80 * GIB, 81 * GIB, 130 * GIB + 1, 9_991, S3)).toBe(false);
    expect(fitsParts(80 * GIB, 80 * GIB, 80 * GIB, 80 * GIB, 10_001, S3)).toBe(true);
    // Deferred: the plan stores what fits, then stops; refused at once when nothing fits.
    expect(fitsParts(80 * GIB, 80 * GIB, 2 ** 53, undefined, 10_000, S3)).toBe(true);
    expect(fitsParts(80 * GIB, 80 * GIB, 81 * GIB, undefined, 10_001, S3)).toBe(false);
    expect(fitsParts(80 * GIB, 80 * GIB, 80 * GIB, undefined, 10_001, S3)).toBe(true);
    const pieces = [...planPieces(80 * GIB, 100 * GIB, undefined, 10_000, S3)];
    expect(pieces).toEqual([part(5 * GIB), { length: 15 * GIB, kind: 'over' }]);
  });
});

describe('a deferred length: part sizes grow with the part number, 413 where nothing fits', () => {
  test('10,000 parts hold at least 5 TiB at every S3_PART_SIZE', () => {
    for (const preferred of [5 * MIB, 8 * MIB, 64 * MIB, 5 * GIB]) {
      expect(deferredRoom(1, s3Limits(preferred))).toBeGreaterThanOrEqual(5 * TIB);
    }
    expect(deferredRoom(10_001, S3)).toBe(0);
  });

  test('small uploads keep parts of S3_PART_SIZE', () => {
    const pieces = [...planPieces(0, 20 * MIB, undefined, 1, S3)];
    expect(pieces).toEqual([part(8 * MIB), part(8 * MIB), tail(4 * MIB)]);
    // A 6 MiB PATCH is a part of its own while there is room to spare.
    expect(pieceKind(0, 6 * MIB, undefined, 1, S3)).toBe('part');
  });

  const grown: Array<[string, number, () => number]> = [
    ['78 GiB in 6 MiB PATCHes', 78 * GIB, () => 6 * MIB],
    ['1 TiB in 64 MiB PATCHes', TIB, () => 64 * MIB],
    ['5 TiB in 1 GiB PATCHes', 5 * TIB, () => GIB],
    ['5 TiB in one PATCH', 5 * TIB, () => 5 * TIB],
  ];
  test.each(grown)('%s fits', (_name, total, chunk) => {
    expect(simulate(total, chunk, S3, true).refusedAt).toBeUndefined();
  });

  // Limits scaled down (20 parts of 5 to 100 bytes, sizes doubling every 2 parts, objects of
  // at most 1,000 bytes) so that every length and chunk size can be tried, past what fits.
  const tiny: PartLimits = {
    preferred: 8,
    minPartSize: 5,
    maxParts: 20,
    maxPartSize: 100,
    maxObjectSize: 1_000,
    partsPerSize: 2,
  };
  test('every length and chunk size, scaled down: it fits, or 413 at the first PATCH past the limit', () => {
    expect(deferredRoom(1, tiny)).toBeGreaterThan(tiny.maxObjectSize);
    for (const deferred of [false, true]) {
      for (let total = 1; total <= 1_200; total += 11) {
        for (let chunk = 1; chunk <= 120; chunk += 4) {
          const { refusedAt, stored } = simulate(total, () => chunk, tiny, deferred);
          const at = `${total} bytes in PATCHes of ${chunk}, deferred: ${deferred}`;
          check((refusedAt === undefined) === total <= tiny.maxObjectSize, `${at}: refused`);
          if (refusedAt === undefined) continue;
          // A known length is refused at its first PATCH. A deferred one at the PATCH that passes
          // the limit (storing what fits, or nothing when it declares the length): none lost.
          if (!deferred) check(refusedAt === 0 && stored === 0, `${at}: refused at once`);
          else {
            check(stored >= refusedAt && stored <= tiny.maxObjectSize, `${at}: ${stored} kept`);
            check(refusedAt + chunk > tiny.maxObjectSize, `${at}: refused at ${refusedAt}`);
          }
        }
      }
    }
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
  const pieces = planPieces(0, 2 ** 52, undefined, 1, S3);
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
