import { describe, expect, test } from '@jest/globals';
import { chunkTooLarge, spoolRefusal } from '../../checksum/chunkLimit.ts';
import { ERRORS } from '../../errors/catalogue.ts';
import { loadConfig } from '../../server/config.ts';

const MIB = 1024 * 1024;

describe('chunkTooLarge', () => {
  test('is a 413 naming the bound, in tus text', () => {
    expect(chunkTooLarge(MIB)).toEqual({
      status_code: 413,
      body: `a request with Upload-Checksum may carry at most ${MIB} bytes; send smaller chunks\n`,
    });
  });
});

describe('spoolRefusal', () => {
  const tooLarge = chunkTooLarge(100);
  // [bytes, what the upload may still take, CHECKSUM_MAX_CHUNK_SIZE, answer]
  test.each([
    [0, 1000, 100, undefined],
    [100, 1000, 100, undefined],
    [101, 1000, 100, tooLarge],
    [101, Number.POSITIVE_INFINITY, 100, tooLarge],
    [2 ** 53 - 1, Number.POSITIVE_INFINITY, 100, tooLarge],
    [50, 40, 100, ERRORS.ERR_SIZE_EXCEEDED],
    [1001, 1000, 100, ERRORS.ERR_SIZE_EXCEEDED],
    [40, 40, 100, undefined],
  ])('%p bytes (upload limit %p, chunk limit %p) -> %p', (bytes, uploadLimit, max, answer) => {
    expect(spoolRefusal(bytes, uploadLimit, max)).toEqual(answer);
  });
});

describe('CHECKSUM_MAX_CHUNK_SIZE', () => {
  test('defaults to four default S3 parts (32 MiB)', () => {
    expect(loadConfig({}).checksumMaxChunkSize).toBe(33554432);
  });

  test('is read in bytes', () => {
    expect(loadConfig({ CHECKSUM_MAX_CHUNK_SIZE: '1048576' }).checksumMaxChunkSize).toBe(MIB);
  });

  test.each([
    ['0', /^CHECKSUM_MAX_CHUNK_SIZE must be at least 1 \(got "0"\)/],
    ['-5', /^CHECKSUM_MAX_CHUNK_SIZE must be a whole number/],
    ['1.5', /^CHECKSUM_MAX_CHUNK_SIZE must be a whole number/],
    ['lots', /^CHECKSUM_MAX_CHUNK_SIZE must be a whole number/],
  ])('%p is refused', (value, message) => {
    expect(() => loadConfig({ CHECKSUM_MAX_CHUNK_SIZE: value })).toThrow(message);
  });
});
