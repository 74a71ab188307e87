import { describe, expect, test } from '@jest/globals';
import { chunkSizeFor, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE } from '../../web/page/chunkSize.ts';

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

describe('chunkSizeFor', () => {
  test('the bounds are S3’s smallest part (5 MiB) and 64 MiB', () => {
    expect(MIN_CHUNK_SIZE).toBe(5 * MIB);
    expect(MAX_CHUNK_SIZE).toBe(64 * MIB);
  });

  // [file size, PATCH size]: size / 20 rounded up to whole MiB, within 5–64 MiB; a file under
  // 5 MiB goes in one request (never a chunk of 0 bytes).
  const rows: Array<[number, number]> = [
    [0, 1],
    [1, 1],
    [1000, 1000],
    [MIB, MIB],
    [5 * MIB - 1, 5 * MIB - 1],
    [5 * MIB, 5 * MIB],
    [5 * MIB + 1, 5 * MIB],
    [50 * MIB, 5 * MIB],
    [100 * MIB, 5 * MIB],
    [100 * MIB + 1, 6 * MIB],
    [120 * MIB, 6 * MIB],
    [120 * MIB + 1, 7 * MIB],
    [GIB, 52 * MIB],
    [1260 * MIB, 63 * MIB],
    [1260 * MIB + 1, 64 * MIB],
    [1280 * MIB, 64 * MIB],
    [1280 * MIB + 1, 64 * MIB],
    [10 * GIB, 64 * MIB],
    [5 * 1024 * GIB, 64 * MIB],
  ];

  test.each(rows)('%p bytes -> %p', (size, expected) => {
    expect(chunkSizeFor(size)).toBe(expected);
  });

  test.each(rows.filter(([size]) => size >= 5 * MIB))(
    '%p bytes: whole MiB, within the bounds, at most 20 chunks below the cap',
    (size) => {
      const chunk = chunkSizeFor(size);
      expect(chunk % MIB).toBe(0);
      expect(chunk).toBeGreaterThanOrEqual(MIN_CHUNK_SIZE);
      expect(chunk).toBeLessThanOrEqual(MAX_CHUNK_SIZE);
      if (chunk < MAX_CHUNK_SIZE) expect(Math.ceil(size / chunk)).toBeLessThanOrEqual(20);
    },
  );
});
