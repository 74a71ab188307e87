import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { describe, expect, test } from '@jest/globals';
import { multipartByteranges } from '../../download/multipart.ts';
import type { ByteRange } from '../../storage/types.ts';

/** A representation whose every byte is a printable character, so bodies compare as text. */
const representation = (size: number) =>
  Buffer.from(Array.from({ length: size }, (_, i) => 0x21 + (i % 94)));

const boundaryOf = (contentType: string) =>
  /^multipart\/byteranges; boundary=([^;\s]+)$/.exec(contentType)?.[1];

/** The body RFC 9110 §14.6 (and RFC 2046 §5.1.1) lays out, written independently. */
function expectedBody(
  boundary: string,
  bytes: Buffer,
  ranges: ByteRange[],
  partType: string,
): string {
  const parts = ranges.map(
    ({ start, end }) =>
      `--${boundary}\r\n` +
      `Content-Type: ${partType}\r\n` +
      `Content-Range: bytes ${start}-${end}/${bytes.length}\r\n` +
      '\r\n' +
      bytes.subarray(start, end + 1).toString('latin1'),
  );
  return `${parts.join('\r\n')}\r\n--${boundary}--\r\n`;
}

describe('multipartByteranges', () => {
  // [representation size, ranges in request order, Content-Type of the parts]
  const rows: Array<[number, ByteRange[], string]> = [
    [10, [{ start: 0, end: 0 }], 'application/octet-stream'],
    [
      10,
      [
        { start: 0, end: 0 },
        { start: 9, end: 9 },
      ],
      'application/octet-stream',
    ],
    [
      10000,
      [
        { start: 0, end: 499 },
        { start: 9500, end: 9999 },
      ],
      'text/plain; charset=utf-8',
    ],
    [
      100,
      [
        { start: 50, end: 59 },
        { start: 0, end: 9 },
        { start: 90, end: 99 },
      ],
      'image/png',
    ],
    [
      1000,
      Array.from({ length: 20 }, (_, i) => ({ start: i * 50, end: i * 50 + 24 })),
      'video/mp4',
    ],
    [
      70000,
      [
        { start: 0, end: 65535 },
        { start: 65536, end: 69999 },
      ],
      'application/octet-stream',
    ],
  ];

  test.each(rows)('%p bytes, ranges %j, parts of %p', async (size, ranges, partType) => {
    const bytes = representation(size);
    const multipart = multipartByteranges(ranges, size, partType);
    const boundary = boundaryOf(multipart.contentType);
    // boundary := 0*69<bchars> bcharsnospace (RFC 2046 §5.1.1)
    expect(boundary).toMatch(/^[0-9A-Za-z'()+_,./:=?-]{1,70}$/);
    const expected = expectedBody(boundary as string, bytes, ranges, partType);

    const body = await text(
      multipart.body(async ({ start, end }) => Readable.from([bytes.subarray(start, end + 1)])),
    );
    expect(body).toBe(expected);
    expect(multipart.length).toBe(Buffer.byteLength(expected, 'latin1'));
    // The boundary delimits parts only: it does not occur in a part's bytes.
    expect(body.split(`--${boundary}`)).toHaveLength(ranges.length + 2);
  });

  test('binary parts pass through unchanged, and the length counts their bytes', async () => {
    const bytes = Buffer.from(Array.from({ length: 512 }, (_, i) => 255 - (i % 256)));
    const ranges = [
      { start: 0, end: 255 },
      { start: 300, end: 511 },
    ];
    const multipart = multipartByteranges(ranges, bytes.length, 'application/octet-stream');
    const body = Buffer.concat(
      await multipart
        .body(async ({ start, end }) => Readable.from([bytes.subarray(start, end + 1)]))
        .toArray(),
    );
    const boundary = boundaryOf(multipart.contentType) as string;
    const expected = Buffer.from(
      expectedBody(boundary, bytes, ranges, 'application/octet-stream'),
      'latin1',
    );
    expect(body.equals(expected)).toBe(true);
    expect(multipart.length).toBe(expected.length);
  });

  test('each multipart body has its own boundary', () => {
    const ranges = [
      { start: 0, end: 0 },
      { start: 2, end: 2 },
    ];
    const boundaries = new Set(
      Array.from({ length: 50 }, () =>
        boundaryOf(multipartByteranges(ranges, 3, 'text/plain').contentType),
      ),
    );
    expect(boundaries.size).toBe(50);
  });

  test('a part is opened only once the previous part has been read to its end', async () => {
    const ranges = [
      { start: 0, end: 1 },
      { start: 4, end: 5 },
      { start: 8, end: 9 },
    ];
    const bytes = representation(10);
    const events: string[] = [];
    const multipart = multipartByteranges(ranges, 10, 'text/plain');
    const body = multipart.body(async (range) => {
      events.push(`open ${range.start}`);
      return Readable.from(
        (async function* () {
          yield bytes.subarray(range.start, range.end + 1);
          events.push(`read ${range.start}`);
        })(),
      );
    });
    expect(events).toEqual([]);
    await body.toArray();
    expect(events).toEqual(['open 0', 'read 0', 'open 4', 'read 4', 'open 8', 'read 8']);
  });

  test('parts are read in request order, not in byte order', async () => {
    const ranges = [
      { start: 8, end: 9 },
      { start: 0, end: 1 },
    ];
    const opened: number[] = [];
    const bytes = representation(10);
    await multipartByteranges(ranges, 10, 'text/plain')
      .body(async (range) => {
        opened.push(range.start);
        return Readable.from([bytes.subarray(range.start, range.end + 1)]);
      })
      .toArray();
    expect(opened).toEqual([8, 0]);
  });
});
