import { createHash } from 'node:crypto';
import { describe, expect, test } from '@jest/globals';
import {
  CHECKSUM_ALGORITHMS,
  ChecksumVerifier,
  parseUploadChecksum,
} from '../../checksum/uploadChecksum.ts';
import { ERRORS, type ErrorEntry } from '../../errors/catalogue.ts';

const b64 = (algorithm: string, data: string) =>
  createHash(algorithm).update(data).digest('base64');

describe('parseUploadChecksum: the Upload-Checksum header', () => {
  const rows: Array<[string, string, string | ErrorEntry]> = [
    ['sha1', `sha1 ${b64('sha1', 'x')}`, 'sha1'],
    ['md5', `md5 ${b64('md5', 'x')}`, 'md5'],
    ['sha256', `sha256 ${b64('sha256', 'x')}`, 'sha256'],
    ['sha512', `sha512 ${b64('sha512', 'x')}`, 'sha512'],
    ['algorithm in upper case', `SHA1 ${b64('sha1', 'x')}`, 'sha1'],
    ['crc32 is not supported', 'crc32 AAAAAA==', ERRORS.CHECKSUM_ALGORITHM_UNSUPPORTED],
    [
      'sha3 is not supported',
      `sha3-256 ${b64('sha256', 'x')}`,
      ERRORS.CHECKSUM_ALGORITHM_UNSUPPORTED,
    ],
    ['no digest', 'sha1', ERRORS.INVALID_UPLOAD_CHECKSUM],
    ['empty', '', ERRORS.INVALID_UPLOAD_CHECKSUM],
    ['digest not Base64', 'sha1 !!!!', ERRORS.INVALID_UPLOAD_CHECKSUM],
    // Well-formed but of another length: it can never match, so the body gets 460, not 400.
    ['digest of the wrong length', `sha1 ${b64('md5', 'x')}`, 'sha1'],
    ['21 bytes for sha1', 'sha1 AAAAAAAAAAAAAAAAAAAAAAAAAAAA', 'sha1'],
    [
      'Base64 without its padding',
      'sha1 AAAAAAAAAAAAAAAAAAAAAAAAAAA',
      ERRORS.INVALID_UPLOAD_CHECKSUM,
    ],
    [
      'hex is Base64 too (of another length): a mismatch',
      `md5 ${createHash('md5').update('x').digest('hex')}`,
      'md5',
    ],
    ['three fields', `sha1 ${b64('sha1', 'x')} more`, ERRORS.INVALID_UPLOAD_CHECKSUM],
  ];
  test.each(rows)('%s', (_case, value, expected) => {
    const parsed = parseUploadChecksum(value);
    if (typeof expected === 'string') expect(parsed).toMatchObject({ algorithm: expected });
    else expect(parsed).toBe(expected);
  });
});

describe('ChecksumVerifier: the body against its Upload-Checksum', () => {
  const parsed = (value: string) => {
    const expected = parseUploadChecksum(value);
    if ('status_code' in expected) throw new Error('parse failed');
    return expected;
  };

  test.each(CHECKSUM_ALGORITHMS)(
    '%s: the same bytes in any chunks match, others do not',
    (name) => {
      const expected = parsed(`${name} ${b64(name, 'hello world')}`);
      const whole = new ChecksumVerifier([name]);
      whole.update(Buffer.from('hello '));
      whole.update(Buffer.from('world'));
      expect(whole.matches(expected)).toBe(true);
      const other = new ChecksumVerifier([name]);
      other.update(Buffer.from('hello World'));
      expect(other.matches(expected)).toBe(false);
    },
  );

  test.each(CHECKSUM_ALGORITHMS)(
    '%s: a verifier of every algorithm (a trailer) matches',
    (name) => {
      const verifier = new ChecksumVerifier(CHECKSUM_ALGORITHMS);
      verifier.update(Buffer.from('hello world'));
      expect(verifier.matches(parsed(`${name} ${b64(name, 'hello world')}`))).toBe(true);
    },
  );

  test('a digest of another length never matches', () => {
    const verifier = new ChecksumVerifier(['sha1']);
    verifier.update(Buffer.from('hello world'));
    expect(verifier.matches(parsed('sha1 AAAAAAAAAAAAAAAAAAAAAAAAAAAA'))).toBe(false);
  });

  test('an algorithm the verifier does not hash never matches', () => {
    const verifier = new ChecksumVerifier(['md5']);
    verifier.update(Buffer.from('x'));
    expect(verifier.matches(parsed(`sha1 ${b64('sha1', 'x')}`))).toBe(false);
  });
});
