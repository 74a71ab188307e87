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
    ['digest of the wrong length', `sha1 ${b64('md5', 'x')}`, ERRORS.INVALID_UPLOAD_CHECKSUM],
    [
      'hex instead of Base64',
      `md5 ${createHash('md5').update('x').digest('hex')}`,
      ERRORS.INVALID_UPLOAD_CHECKSUM,
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
  test.each(CHECKSUM_ALGORITHMS)(
    '%s: the same bytes in any chunks match, others do not',
    (name) => {
      const expected = parseUploadChecksum(`${name} ${b64(name, 'hello world')}`);
      if ('status_code' in expected) throw new Error('parse failed');
      const whole = new ChecksumVerifier(expected);
      whole.update(Buffer.from('hello '));
      whole.update(Buffer.from('world'));
      expect(whole.matches()).toBe(true);
      const other = new ChecksumVerifier(expected);
      other.update(Buffer.from('hello World'));
      expect(other.matches()).toBe(false);
    },
  );
});
