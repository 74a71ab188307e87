import { describe, expect, test } from '@jest/globals';
import { Upload } from '@tus/utils';
import { checkUploadMetadata, claimsOf } from '../../dedupe/claims.ts';

const upload = (metadata: Record<string, string | null>) =>
  new Upload({ id: 'x', offset: 0, size: 1, metadata });

describe('checkUploadMetadata', () => {
  test('accepts well-formed hashes and lower-cases them', () => {
    const u = upload({ sha256: 'A'.repeat(64), md5: 'B'.repeat(32), filename: 'x' });
    expect(checkUploadMetadata(u)).toBeUndefined();
    expect(u.metadata).toEqual({ sha256: 'a'.repeat(64), md5: 'b'.repeat(32), filename: 'x' });
  });

  test.each([
    [{ sha256: 'a'.repeat(63) }, /sha256 must be 64 hex/],
    [{ sha256: 'g'.repeat(64) }, /sha256 must be 64 hex/],
    [{ md5: 'a'.repeat(33) }, /md5 must be 32 hex/],
    [{ md5: null }, /md5 must be 32 hex/],
  ])('%p is rejected with 400', (metadata, reason) => {
    const rejection = checkUploadMetadata(upload(metadata));
    expect(rejection?.status_code).toBe(400);
    expect(rejection?.body).toMatch(reason);
  });

  test('uploads without hashes pass', () => {
    expect(checkUploadMetadata(upload({}))).toBeUndefined();
  });
});

describe('claimsOf', () => {
  const SHA = 'a'.repeat(64);
  const MD5 = 'b'.repeat(32);
  // [Upload-Metadata, the digests the client claims]
  const rows: Array<[Record<string, string | null> | undefined, Record<string, string>]> = [
    [undefined, {}],
    [{}, {}],
    [{ sha256: SHA }, { sha256: SHA }],
    [{ md5: MD5 }, { md5: MD5 }],
    [
      { sha256: SHA, md5: MD5 },
      { sha256: SHA, md5: MD5 },
    ],
    [
      { sha256: SHA, md5: MD5, filename: 'x', filetype: 'text/plain' },
      { sha256: SHA, md5: MD5 },
    ],
    [{ sha256: '', md5: MD5 }, { md5: MD5 }],
    [{ sha256: null, md5: null }, {}],
    [{ SHA256: SHA, MD5: MD5 }, {}],
    [{ sha1: 'c'.repeat(40) }, {}],
  ];

  test.each(rows)('%p -> %p', (metadata, claims) => {
    expect(claimsOf(metadata)).toEqual(claims);
  });

  test('claims are the values as given (checkUploadMetadata lower-cases them first)', () => {
    const u = upload({ sha256: 'A'.repeat(64) });
    expect(claimsOf(u.metadata)).toEqual({ sha256: 'A'.repeat(64) });
    checkUploadMetadata(u);
    expect(claimsOf(u.metadata)).toEqual({ sha256: 'a'.repeat(64) });
  });
});
