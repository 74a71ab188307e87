import { describe, expect, test } from '@jest/globals';
import {
  contentRange,
  MAX_RANGES,
  parseRangeHeader,
  type RangeRequest,
  rangeLength,
  unsatisfiedRange,
} from '../../download/ranges.ts';

const whole: RangeRequest = { kind: 'whole' };
const unsatisfiable: RangeRequest = { kind: 'unsatisfiable' };
const ranges = (...pairs: Array<[number, number]>): RangeRequest => ({
  kind: 'ranges',
  ranges: pairs.map(([start, end]) => ({ start, end })),
});

/** `count` one-byte ranges two bytes apart (0-0,2-2,4-4,…): none overlap or touch. */
const disjoint = (count: number) =>
  Array.from({ length: count }, (_, i) => `${2 * i}-${2 * i}`).join(',');

describe('parseRangeHeader', () => {
  // [Range header, representation size, what it asks for]
  const rows: Array<[string, string | undefined, number, RangeRequest]> = [
    // No Range, or nothing to address.
    ['no Range header', undefined, 100, whole],
    ['zero-length representation (no valid Content-Range)', 'bytes=0-0', 0, whole],
    ['zero-length representation, suffix', 'bytes=-5', 0, whole],

    // RFC 9110 §14.1.2 examples, on a 10000-byte representation.
    ['first 500 bytes', 'bytes=0-499', 10000, ranges([0, 499])],
    ['second 500 bytes', 'bytes=500-999', 10000, ranges([500, 999])],
    ['final 500 bytes (suffix)', 'bytes=-500', 10000, ranges([9500, 9999])],
    ['final 500 bytes (open-ended)', 'bytes=9500-', 10000, ranges([9500, 9999])],
    ['first and last bytes only', 'bytes=0-0,-1', 10000, ranges([0, 0], [9999, 9999])],
    ['adjacent ranges coalesce', 'bytes=500-600,601-999', 10000, ranges([500, 999])],
    ['overlapping ranges coalesce', 'bytes=500-700,601-999', 10000, ranges([500, 999])],

    // Single ranges.
    ['open-ended from 0 is the whole span', 'bytes=0-', 10, ranges([0, 9])],
    ['last byte by position', 'bytes=9-9', 10, ranges([9, 9])],
    ['one-byte representation', 'bytes=0-0', 1, ranges([0, 0])],
    ['last-pos past the end is clamped', 'bytes=5-99999', 10, ranges([5, 9])],
    ['last-pos beyond 2^64 is clamped', 'bytes=0-18446744073709551616', 10, ranges([0, 9])],
    ['suffix equal to the size', 'bytes=-10', 10, ranges([0, 9])],
    ['suffix longer than the size takes it all', 'bytes=-20', 10, ranges([0, 9])],
    ['suffix beyond 2^64 takes it all', 'bytes=-18446744073709551616', 10, ranges([0, 9])],
    ['suffix of one byte of a one-byte file', 'bytes=-1', 1, ranges([0, 0])],
    ['unit names are case-insensitive', 'Bytes=0-1', 10, ranges([0, 1])],
    ['unit names are case-insensitive (upper)', 'BYTES=2-3', 10, ranges([2, 3])],

    // Several ranges: order of the request kept (§14.6), coalescing of overlaps only.
    ['two disjoint ranges', 'bytes=0-1,3-4', 10, ranges([0, 1], [3, 4])],
    ['OWS around the comma', 'bytes=0-1 , 3-4', 10, ranges([0, 1], [3, 4])],
    ['request order is kept', 'bytes=50-59,0-9', 100, ranges([50, 59], [0, 9])],
    ['coalescing in reverse order', 'bytes=5-9,0-4', 100, ranges([0, 9])],
    [
      'overlap merges into the earlier part',
      'bytes=50-59,0-9,55-70',
      100,
      ranges([50, 70], [0, 9]),
    ],
    ['contained range merges', 'bytes=0-99,10-20', 100, ranges([0, 99])],
    ['duplicate ranges merge', 'bytes=0-0,0-0', 10, ranges([0, 0])],
    ['oversized suffix merges with the rest', 'bytes=0-1,-100', 10, ranges([0, 9])],
    ['unsatisfiable member dropped, rest served', 'bytes=10-20,0-1', 10, ranges([0, 1])],
    ['zero-length suffix member dropped', 'bytes=-0,2-3', 10, ranges([2, 3])],

    // Unsatisfiable (416): no range-spec overlaps the representation.
    ['first-pos at the length', 'bytes=10-', 10, unsatisfiable],
    ['first-pos past the length', 'bytes=10-20', 10, unsatisfiable],
    ['first-pos beyond 2^64', 'bytes=18446744073709551616-', 10, unsatisfiable],
    ['suffix-length zero', 'bytes=-0', 10, unsatisfiable],
    ['every member past the end', 'bytes=10-11,20-', 10, unsatisfiable],
    ['last-pos before first-pos (invalid int-range)', 'bytes=5-2', 10, unsatisfiable],

    // Malformed or not bytes: the Range header is ignored (MAY ignore, §14.2).
    ['other range unit', 'items=0-1', 10, whole],
    ['other range unit, unsatisfiable', 'items=50-60', 10, whole],
    ['no "="', 'bytes 0-1', 10, whole],
    ['no unit', '=0-1', 10, whole],
    ['empty range-set', 'bytes=', 10, whole],
    ['no dash', 'bytes=5', 10, whole],
    ['dash only', 'bytes=-', 10, whole],
    ['letters', 'bytes=abc', 10, whole],
    ['letters as positions', 'bytes=a-b', 10, whole],
    ['hex position', 'bytes=0x1-2', 10, whole],
    ['fractional position', 'bytes=1.5-2', 10, whole],
    ['negative last-pos', 'bytes=1--2', 10, whole],
    ['three positions', 'bytes=1-2-3', 10, whole],
    ['space around "="', 'bytes =0-1', 10, whole],
    ['one malformed member spoils all', 'bytes=0-1,x-y', 10, whole],

    // The max-ranges limit applies after coalescing.
    [
      `${MAX_RANGES} disjoint ranges`,
      `bytes=${disjoint(20)}`,
      100,
      {
        kind: 'ranges',
        ranges: Array.from({ length: 20 }, (_, i) => ({ start: 2 * i, end: 2 * i })),
      },
    ],
    ['21 disjoint ranges: whole representation', `bytes=${disjoint(21)}`, 100, whole],
    ['1000 disjoint ranges: whole representation', `bytes=${disjoint(1000)}`, 5000, whole],
    [
      '21 identical ranges coalesce to one',
      `bytes=${Array(21).fill('0-0').join(',')}`,
      10,
      ranges([0, 0]),
    ],
    [
      '25 adjacent ranges coalesce to one',
      `bytes=${Array.from({ length: 25 }, (_, i) => `${i}-${i}`).join(',')}`,
      100,
      ranges([0, 24]),
    ],
  ];

  test('MAX_RANGES is 20', () => {
    expect(MAX_RANGES).toBe(20);
  });

  test.each(rows)('%s: %p of %p bytes', (_name, header, size, expected) => {
    expect(parseRangeHeader(header, size)).toEqual(expected);
  });
});

describe('contentRange, unsatisfiedRange, rangeLength', () => {
  // [range, complete length, Content-Range (RFC 9110 §14.4), length of the part]
  const rows: Array<[{ start: number; end: number }, number, string, number]> = [
    [{ start: 0, end: 499 }, 10000, 'bytes 0-499/10000', 500],
    [{ start: 500, end: 999 }, 10000, 'bytes 500-999/10000', 500],
    [{ start: 9999, end: 9999 }, 10000, 'bytes 9999-9999/10000', 1],
    [{ start: 0, end: 0 }, 1, 'bytes 0-0/1', 1],
    [{ start: 21010, end: 47021 }, 47022, 'bytes 21010-47021/47022', 26012],
    [
      { start: 0, end: Number.MAX_SAFE_INTEGER - 1 },
      Number.MAX_SAFE_INTEGER,
      'bytes 0-9007199254740990/9007199254740991',
      Number.MAX_SAFE_INTEGER,
    ],
  ];

  test.each(rows)('%p of %p -> %p', (range, size, header, length) => {
    expect(contentRange(range, size)).toBe(header);
    expect(rangeLength(range)).toBe(length);
  });

  test.each([
    [0, 'bytes */0'],
    [1, 'bytes */1'],
    [1234, 'bytes */1234'],
  ])('416 for %p bytes -> %p', (size, header) => {
    expect(unsatisfiedRange(size)).toBe(header);
  });
});
