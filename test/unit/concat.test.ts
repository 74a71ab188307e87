import { describe, expect, test } from '@jest/globals';
import { MAX_PARTIALS, parseUploadConcat, uploadConcatHeader } from '../../concat/header.ts';
import { ERRORS } from '../../errors/catalogue.ts';
import { concatOf } from '../../request/metadata.ts';
import { type PartOrder, planConcatenation } from '../../storage/s3/concatPlan.ts';

const A = 'a'.repeat(32);
const B = 'b'.repeat(32);
const MIB = 1024 * 1024;

describe('parseUploadConcat: the Upload-Concat header of a creation', () => {
  const rows: Array<[string, string, ReturnType<typeof parseUploadConcat>]> = [
    ['partial', 'partial', { kind: 'partial' }],
    ['partial with spaces around', '  partial ', { kind: 'partial' }],
    ['final of paths', `final;/files/${A} /files/${B}`, { kind: 'final', ids: [A, B] }],
    [
      'final of absolute URLs (tus-js-client)',
      `final;http://host:8080/files/${A} https://x.example/prefix/files/${B}`,
      { kind: 'final', ids: [A, B] },
    ],
    ['final, one partial', `final;/files/${A}`, { kind: 'final', ids: [A] }],
    [
      'final, extra whitespace',
      `final; /files/${A}   /files/${B} `,
      { kind: 'final', ids: [A, B] },
    ],
    ['final, URL with a query', `final;/files/${A}?x=1`, { kind: 'final', ids: [A] }],
    ['order is kept', `final;/files/${B} /files/${A}`, { kind: 'final', ids: [B, A] }],
    ['empty', '', ERRORS.INVALID_UPLOAD_CONCAT],
    ['unknown kind', 'whole', ERRORS.INVALID_UPLOAD_CONCAT],
    ['partial is case-sensitive', 'Partial', ERRORS.INVALID_UPLOAD_CONCAT],
    ['final without partials', 'final;', ERRORS.INVALID_UPLOAD_CONCAT],
    ['final without semicolon', `final /files/${A}`, ERRORS.INVALID_UPLOAD_CONCAT],
    ['a URL outside /files', `final;/other/${A}`, ERRORS.INVALID_UPLOAD_CONCAT],
    ['a URL below an upload', `final;/files/${A}/links`, ERRORS.INVALID_UPLOAD_CONCAT],
    ['an id a hook may choose', 'final;/files/prefix-1', { kind: 'final', ids: ['prefix-1'] }],
    ['an id no upload can have', 'final;/files/a.info', ERRORS.CONCAT_PARTIAL_UNKNOWN],
    ['path traversal', 'final;/files/..', ERRORS.CONCAT_PARTIAL_UNKNOWN],
    ['the same partial twice', `final;/files/${A} /files/${A}`, { kind: 'final', ids: [A, A] }],
  ];
  test.each(rows)('%s', (_case, value, expected) => {
    expect(parseUploadConcat(value)).toEqual(expected);
  });

  test(`at most ${MAX_PARTIALS} partials`, () => {
    const urls = (n: number) =>
      Array.from({ length: n }, (_, i) => `/files/${i.toString(16).padStart(32, '0')}`).join(' ');
    expect(parseUploadConcat(`final;${urls(MAX_PARTIALS)}`)).toMatchObject({ kind: 'final' });
    expect(parseUploadConcat(`final;${urls(MAX_PARTIALS + 1)}`)).toBe(ERRORS.INVALID_UPLOAD_CONCAT);
  });
});

describe('the stored concatenation role and the Upload-Concat of a HEAD', () => {
  const urlOf = (id: string) => `http://h/files/${id}`;
  test.each([
    ['none', {}, undefined, undefined],
    ['partial', { 'tus-concat': 'partial' }, { kind: 'partial' }, 'partial'],
    [
      'final',
      { 'tus-concat': `final;${A} ${B}` },
      { kind: 'final', ids: [A, B] },
      `final;http://h/files/${A} http://h/files/${B}`,
    ],
    ['a client key of the same name is not read', { concat: 'partial' }, undefined, undefined],
  ])('%s', (_case, metadata, role, header) => {
    expect(concatOf(metadata)).toEqual(role);
    expect(uploadConcatHeader(metadata, urlOf)).toBe(header);
  });
});

describe('planConcatenation: the parts of a final object on S3 (minimum part 5 MiB)', () => {
  const copy = (key: string, start: number, end: number): PartOrder => ({
    kind: 'copy',
    range: { key, start, end },
  });
  const gather = (...ranges: Array<[string, number, number]>): PartOrder => ({
    kind: 'gather',
    ranges: ranges.map(([key, start, end]) => ({ key, start, end })),
    length: ranges.reduce((sum, [, start, end]) => sum + end - start, 0),
  });
  // [case, sources as [key, size], expected parts]
  const rows: Array<[string, Array<[string, number]>, PartOrder[]]> = [
    ['no sources', [], []],
    [
      'only empty sources',
      [
        ['a', 0],
        ['b', 0],
      ],
      [],
    ],
    ['one small source is copied as the only part', [['a', 1024]], [copy('a', 0, 1024)]],
    [
      'long sources are copied whole',
      [
        ['a', 6 * MIB],
        ['b', 5 * MIB],
        ['c', 3],
      ],
      [copy('a', 0, 6 * MIB), copy('b', 0, 5 * MIB), copy('c', 0, 3)],
    ],
    [
      'small sources are gathered up to 5 MiB',
      [
        ['a', 3 * MIB],
        ['b', 3 * MIB],
        ['c', 1 * MIB],
      ],
      [
        gather(['a', 0, 3 * MIB], ['b', 0, 2 * MIB]),
        gather(['b', 2 * MIB, 3 * MIB], ['c', 0, MIB]),
      ],
    ],
    [
      'a gather is filled from the head of a long source, the rest of it copied',
      [
        ['a', 1024],
        ['b', 20 * MIB],
      ],
      [gather(['a', 0, 1024], ['b', 0, 5 * MIB - 1024]), copy('b', 5 * MIB - 1024, 20 * MIB)],
    ],
    [
      'a short remainder of a long source that is not last is gathered with the next',
      [
        ['a', 1024],
        ['b', 7 * MIB],
        ['c', 5 * MIB],
      ],
      [
        gather(['a', 0, 1024], ['b', 0, 5 * MIB - 1024]),
        gather(['b', 5 * MIB - 1024, 7 * MIB], ['c', 0, 3 * MIB - 1024]),
        copy('c', 3 * MIB - 1024, 5 * MIB),
      ],
    ],
    [
      'empty sources in between change nothing',
      [
        ['a', 5 * MIB],
        ['b', 0],
        ['c', 2],
      ],
      [copy('a', 0, 5 * MIB), copy('c', 0, 2)],
    ],
    [
      'tus-js-client, 8 partials of 2.6 MiB',
      Array.from({ length: 3 }, (_, i): [string, number] => [`p${i}`, 2.5 * MIB]),
      [gather(['p0', 0, 2.5 * MIB], ['p1', 0, 2.5 * MIB]), copy('p2', 0, 2.5 * MIB)],
    ],
  ];
  test.each(rows)('%s', (_case, sources, expected) => {
    const plan = planConcatenation(
      sources.map(([key, size]) => ({ key, size })),
      5 * MIB,
    );
    expect(plan).toEqual(expected);
  });

  test('copies are cut at the copy limit; every part but the last is at least the minimum', () => {
    const plan = planConcatenation(
      [
        { key: 'a', size: 25 * MIB + 3 },
        { key: 'b', size: 4 * MIB },
        { key: 'c', size: 30 * MIB },
      ],
      5 * MIB,
      10 * MIB,
    );
    const lengths = plan.map((order) =>
      order.kind === 'copy' ? order.range.end - order.range.start : order.length,
    );
    expect(lengths.reduce((a, b) => a + b)).toBe(59 * MIB + 3);
    expect(Math.max(...lengths)).toBeLessThanOrEqual(10 * MIB);
    for (const length of lengths.slice(0, -1)) expect(length).toBeGreaterThanOrEqual(5 * MIB);
    // The bytes come in order, each exactly once.
    const ranges = plan.flatMap((order) => (order.kind === 'copy' ? [order.range] : order.ranges));
    let expectedKey = 'a';
    let position = 0;
    for (const { key, start, end } of ranges) {
      if (key !== expectedKey) {
        expect(position).toBe({ a: 25 * MIB + 3, b: 4 * MIB }[expectedKey]);
        expectedKey = key;
        position = 0;
      }
      expect(start).toBe(position);
      position = end;
    }
  });
});
