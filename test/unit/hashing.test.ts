import { createHash } from 'node:crypto';
import { afterEach, describe, expect, jest, test } from '@jest/globals';
import { ContentHasher, InProgressHashes } from '../../dedupe/hashing.ts';

/** Bytes that are not all alike, the same on every run. */
function bytes(length: number): Buffer {
  const out = Buffer.alloc(length);
  let x = 2463534242;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Cuts `data` at the given chunk lengths; what is left over is the last chunk. */
function split(data: Buffer, lengths: number[]): Buffer[] {
  const chunks: Buffer[] = [];
  let at = 0;
  for (const length of lengths) {
    chunks.push(data.subarray(at, at + length));
    at += length;
  }
  chunks.push(data.subarray(at));
  return chunks;
}

describe('ContentHasher', () => {
  // Published test vectors: FIPS 180-2 appendix B ('abc' and the 448-bit message, SHA-256),
  // RFC 1321 appendix A.5 ('', 'abc', 'message digest', MD5); the other cells are the same
  // well-known values for the other algorithm.
  const vectors: Array<[string, string, string]> = [
    [
      '',
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      'd41d8cd98f00b204e9800998ecf8427e',
    ],
    [
      'abc',
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
      '900150983cd24fb0d6963f7d28e17f72',
    ],
    [
      'abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq',
      '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
      '8215ef0796a20bcaaae116d3876c664a',
    ],
    [
      'message digest',
      'f7846f55cf23e14eebeab5b4e1550cad5b509e3348fbc4efa3a1413d393cb650',
      'f96b697d7cb7938d525a2f31aaf161d0',
    ],
  ];

  test.each(vectors)('%p has the published digests', (input, sha256, md5) => {
    const hasher = new ContentHasher({ md5: true });
    hasher.update(Buffer.from(input, 'latin1'));
    expect(hasher.digest()).toEqual({ sha256, md5, size: input.length });
  });

  test.each(vectors)('%p without an md5 claim: sha256 alone', (input, sha256) => {
    const hasher = new ContentHasher();
    hasher.update(Buffer.from(input, 'latin1'));
    expect(hasher.computesMd5).toBe(false);
    expect(hasher.digest()).toEqual({ sha256, size: input.length });
  });

  // [case, total length, chunk lengths (the rest is one more chunk)]
  const rows: Array<[string, number, number[]]> = [
    ['nothing', 0, []],
    ['one empty chunk among others', 100, [0, 50, 0]],
    ['one byte', 1, []],
    ['byte by byte', 200, Array(199).fill(1)],
    ['around the 64-byte block size', 1000, [63, 1, 64, 65, 127, 129]],
    ['a large first chunk', 1 << 20, [(1 << 20) - 3, 1, 1]],
    ['uneven chunks', 300_001, [7, 4096, 65_536, 1, 100_000, 13]],
    ['one chunk', 123_457, []],
  ];

  test.each(rows)('%s: the digests are those of the whole bytes', (_name, length, lengths) => {
    const data = bytes(length);
    const hasher = new ContentHasher({ md5: true });
    let offset = 0;
    for (const chunk of split(data, lengths)) {
      hasher.update(chunk);
      offset += chunk.length;
      expect(hasher.offset).toBe(offset);
    }
    expect(hasher.digest()).toEqual({
      sha256: createHash('sha256').update(data).digest('hex'),
      md5: createHash('md5').update(data).digest('hex'),
      size: length,
    });
  });

  test('takes any Uint8Array view, not only Buffers', () => {
    const data = bytes(1000);
    const backing = new Uint8Array(1200);
    backing.set(data, 100);
    const hasher = new ContentHasher({ md5: true });
    hasher.update(new Uint8Array(backing.buffer, 100, 400));
    hasher.update(new Uint8Array(backing.buffer, 500, 600));
    expect(hasher.digest()).toEqual({
      sha256: createHash('sha256').update(data).digest('hex'),
      md5: createHash('md5').update(data).digest('hex'),
      size: 1000,
    });
  });

  test('a fresh hasher starts at offset 0', () => {
    expect(new ContentHasher().offset).toBe(0);
  });
});

/** A hasher that has taken `length` bytes. */
function hasherAt(length: number): ContentHasher {
  const hasher = new ContentHasher();
  hasher.update(Buffer.alloc(length));
  return hasher;
}

type Step =
  | ['put', id: string, offset: number]
  | ['take', id: string, offset: number, expected: 'hit' | 'miss']
  | ['delete', id: string];

describe('InProgressHashes', () => {
  // [case, maxEntries, steps]: a take 'hit' returns the hasher put last under that id.
  const rows: Array<[string, number, Step[]]> = [
    [
      'take at the exact offset',
      10,
      [
        ['put', 'a', 10],
        ['take', 'a', 10, 'hit'],
      ],
    ],
    [
      'take at offset 0 of an empty hasher',
      10,
      [
        ['put', 'a', 0],
        ['take', 'a', 0, 'hit'],
      ],
    ],
    [
      'take behind the offset',
      10,
      [
        ['put', 'a', 10],
        ['take', 'a', 9, 'miss'],
      ],
    ],
    [
      'take past the offset',
      10,
      [
        ['put', 'a', 10],
        ['take', 'a', 11, 'miss'],
      ],
    ],
    [
      'take of an unknown id',
      10,
      [
        ['put', 'a', 10],
        ['take', 'b', 10, 'miss'],
      ],
    ],
    [
      'take removes the entry',
      10,
      [
        ['put', 'a', 10],
        ['take', 'a', 10, 'hit'],
        ['take', 'a', 10, 'miss'],
      ],
    ],
    [
      'a take at the wrong offset removes the entry too',
      10,
      [
        ['put', 'a', 10],
        ['take', 'a', 5, 'miss'],
        ['take', 'a', 10, 'miss'],
      ],
    ],
    [
      'delete removes the entry',
      10,
      [
        ['put', 'a', 10],
        ['delete', 'a'],
        ['take', 'a', 10, 'miss'],
      ],
    ],
    [
      'delete of an unknown id is harmless',
      10,
      [
        ['delete', 'a'],
        ['put', 'a', 1],
        ['take', 'a', 1, 'hit'],
      ],
    ],
    [
      'delete leaves the others',
      10,
      [
        ['put', 'a', 1],
        ['put', 'b', 2],
        ['delete', 'a'],
        ['take', 'b', 2, 'hit'],
      ],
    ],
    [
      'put replaces the hasher of the same id',
      10,
      [
        ['put', 'a', 5],
        ['put', 'a', 10],
        ['take', 'a', 10, 'hit'],
      ],
    ],
    [
      'the replaced hasher is gone',
      10,
      [
        ['put', 'a', 5],
        ['put', 'a', 10],
        ['take', 'a', 5, 'miss'],
      ],
    ],
    [
      'ids are independent',
      10,
      [
        ['put', 'a', 1],
        ['put', 'b', 2],
        ['take', 'b', 2, 'hit'],
        ['take', 'a', 1, 'hit'],
      ],
    ],
    [
      'up to maxEntries are kept',
      3,
      [
        ['put', 'a', 1],
        ['put', 'b', 2],
        ['put', 'c', 3],
        ['take', 'a', 1, 'hit'],
        ['take', 'b', 2, 'hit'],
        ['take', 'c', 3, 'hit'],
      ],
    ],
    [
      'past maxEntries the oldest goes',
      2,
      [
        ['put', 'a', 1],
        ['put', 'b', 2],
        ['put', 'c', 3],
        ['take', 'a', 1, 'miss'],
        ['take', 'b', 2, 'hit'],
        ['take', 'c', 3, 'hit'],
      ],
    ],
    [
      'putting again makes an entry the newest',
      2,
      [
        ['put', 'a', 1],
        ['put', 'b', 2],
        ['put', 'a', 4],
        ['put', 'c', 3],
        ['take', 'b', 2, 'miss'],
        ['take', 'a', 4, 'hit'],
        ['take', 'c', 3, 'hit'],
      ],
    ],
    [
      'a taken entry frees its place',
      2,
      [
        ['put', 'a', 1],
        ['put', 'b', 2],
        ['take', 'a', 1, 'hit'],
        ['put', 'c', 3],
        ['take', 'b', 2, 'hit'],
        ['take', 'c', 3, 'hit'],
      ],
    ],
    [
      'a deleted entry frees its place',
      2,
      [
        ['put', 'a', 1],
        ['put', 'b', 2],
        ['delete', 'b'],
        ['put', 'c', 3],
        ['take', 'a', 1, 'hit'],
        ['take', 'c', 3, 'hit'],
      ],
    ],
    [
      'with maxEntries 1 only the newest stays',
      1,
      [
        ['put', 'a', 1],
        ['put', 'b', 2],
        ['put', 'c', 3],
        ['take', 'a', 1, 'miss'],
        ['take', 'b', 2, 'miss'],
        ['take', 'c', 3, 'hit'],
      ],
    ],
  ];

  test.each(rows)('%s (maxEntries %p)', (_name, maxEntries, steps) => {
    const hashes = new InProgressHashes(maxEntries);
    const lastPut = new Map<string, ContentHasher>();
    for (const step of steps) {
      if (step[0] === 'put') {
        const hasher = hasherAt(step[2]);
        lastPut.set(step[1], hasher);
        hashes.put(step[1], hasher);
      } else if (step[0] === 'take') {
        const taken = hashes.take(step[1], step[2]);
        if (step[3] === 'hit') expect(taken).toBe(lastPut.get(step[1]));
        else expect(taken).toBeUndefined();
      } else {
        hashes.delete(step[1]);
      }
    }
  });

  test('a skipped upload (a partial of a concatenation) has no hasher until it is deleted', () => {
    const hashes = new InProgressHashes(10);
    hashes.skip('p');
    expect(hashes.isSkipped('p')).toBe(true);
    expect(hashes.isSkipped('q')).toBe(false);
    expect(hashes.take('p', 0)).toBeUndefined();
    hashes.skip('p');
    hashes.delete('p');
    expect(hashes.isSkipped('p')).toBe(false);
    // A hasher put later replaces the mark.
    hashes.skip('p');
    hashes.put('p', hasherAt(0));
    expect(hashes.isSkipped('p')).toBe(false);
  });

  describe('idle entries', () => {
    afterEach(() => {
      jest.restoreAllMocks();
    });

    // [case, idleMs, ms between putting 'old' and putting 'new', 'old' still there]
    const idleRows: Array<[string, number, number, boolean]> = [
      ['an entry idle for less than idleMs stays', 1000, 999, true],
      ['an entry idle for longer than idleMs goes at the next put', 1000, 1500, false],
      ['the default idle time is a day: 23 h stays', 24 * 3600 * 1000, 23 * 3600 * 1000, true],
      ['the default idle time is a day: 25 h goes', 24 * 3600 * 1000, 25 * 3600 * 1000, false],
    ];

    test.each(idleRows)('%s', (_name, idleMs, elapsed, kept) => {
      const now = jest.spyOn(Date, 'now');
      const hashes =
        idleMs === 24 * 3600 * 1000 ? new InProgressHashes() : new InProgressHashes(10, idleMs);
      const old = hasherAt(1);
      const fresh = hasherAt(2);
      now.mockReturnValue(1_000_000);
      hashes.put('old', old);
      now.mockReturnValue(1_000_000 + elapsed);
      hashes.put('new', fresh);
      expect(hashes.take('old', 1)).toBe(kept ? old : undefined);
      expect(hashes.take('new', 2)).toBe(fresh);
    });
  });
});
