import { describe, expect, test } from '@jest/globals';
import { ERRORS as TUS_ERRORS } from '@tus/utils';
import {
  ERRORS,
  type ErrorEntry,
  jsonError,
  outageOf,
  retryAfterOf,
  retryHeaders,
} from '../../errors/catalogue.ts';
import { ServiceUnavailable } from '../../storage/types.ts';

describe('retryAfterOf and retryHeaders', () => {
  // [status, seconds before a retry, headers]
  const rows: Array<[number, number | undefined, Record<string, string>]> = [
    [503, 5, { 'Retry-After': '5' }],
    [423, 1, { 'Retry-After': '1' }],
    [200, undefined, {}],
    [204, undefined, {}],
    [400, undefined, {}],
    [404, undefined, {}],
    [409, undefined, {}],
    [412, undefined, {}],
    [429, undefined, {}],
    [460, undefined, {}],
    [500, undefined, {}],
    [502, undefined, {}],
    [504, undefined, {}],
  ];

  test.each(rows)('%p -> %p', (status, seconds, headers) => {
    expect(retryAfterOf(status)).toBe(seconds);
    expect(retryHeaders(status)).toEqual(headers);
  });

  test.each(Object.entries(ERRORS))('%s: Retry-After exactly on 423 and 503', (_key, entry) => {
    const retryable = entry.status_code === 423 || entry.status_code === 503;
    expect('Retry-After' in retryHeaders(entry.status_code)).toBe(retryable);
  });
});

describe('jsonError', () => {
  // [entry, JSON body]
  const rows: Array<[ErrorEntry, { error: string }]> = [
    [ERRORS.NOT_FOUND, { error: 'not found' }],
    [ERRORS.PRECONDITION_FAILED, { error: 'precondition failed' }],
    [ERRORS.RANGE_NOT_SATISFIABLE, { error: 'range not satisfiable' }],
    [ERRORS.STORAGE_UNAVAILABLE, { error: 'storage unavailable, retry later' }],
    [ERRORS.INTERNAL_ERROR, { error: 'internal error' }],
    [{ status_code: 400, body: 'no newline' }, { error: 'no newline' }],
    [{ status_code: 400, body: 'two newlines\n\n' }, { error: 'two newlines' }],
    [{ status_code: 400, body: 'crlf\r\n' }, { error: 'crlf' }],
    [{ status_code: 400, body: '  inner\nline  \n' }, { error: '  inner\nline' }],
    [{ status_code: 400, body: '' }, { error: '' }],
  ];

  test.each(rows)('%p -> %p', (entry, body) => {
    expect(jsonError(entry)).toEqual(body);
  });
});

describe('the server’s own entries', () => {
  // [key, status (tus 1.0.0 / RFC 9110 / the server's contract)]
  const rows: Array<[keyof typeof ERRORS, number]> = [
    ['MISSING_TUS_RESUMABLE', 412],
    ['UNSUPPORTED_TUS_VERSION', 412],
    ['UNSUPPORTED_METHOD_OVERRIDE', 400],
    ['PATCH_CONTENT_TYPE', 415],
    ['UPLOAD_LENGTH_TOO_LARGE', 400],
    ['UPLOAD_OFFSET_TOO_LARGE', 400],
    ['INVALID_SHA256', 400],
    ['INVALID_MD5', 400],
    ['UPLOAD_LOCKED', 423],
    ['STORAGE_UNAVAILABLE', 503],
    ['REDIS_UNAVAILABLE', 503],
    ['INTERNAL_ERROR', 500],
    ['NOT_FOUND', 404],
    ['PRECONDITION_FAILED', 412],
    ['RANGE_NOT_SATISFIABLE', 416],
    ['PAGE_BUILD_FAILED', 500],
  ];

  test.each(rows)('%s is %p with one line ending in a newline', (key, status) => {
    const entry = ERRORS[key];
    expect(entry.status_code).toBe(status);
    expect(entry.body).toMatch(/^[^\n]+\n$/);
  });

  const own = Object.entries(ERRORS).filter(([key]) => !(key in TUS_ERRORS));

  test.each(own)('%s is an error status with one line ending in a newline', (_key, entry) => {
    expect(entry.status_code).toBeGreaterThanOrEqual(400);
    expect(entry.status_code).toBeLessThan(600);
    expect(entry.body).toMatch(/^[^\n]+\n$/);
  });

  test('the limits name 2^53 - 1', () => {
    expect(ERRORS.UPLOAD_LENGTH_TOO_LARGE.body).toContain('9007199254740991');
    expect(ERRORS.UPLOAD_OFFSET_TOO_LARGE.body).toContain('9007199254740991');
  });
});

describe('outageOf', () => {
  // [case, thrown value, the 503 entry or undefined]
  const rows: Array<[string, unknown, ErrorEntry | undefined]> = [
    ['the storage entry itself', ERRORS.STORAGE_UNAVAILABLE, ERRORS.STORAGE_UNAVAILABLE],
    ['the redis entry itself', ERRORS.REDIS_UNAVAILABLE, ERRORS.REDIS_UNAVAILABLE],
    [
      'ServiceUnavailable of storage',
      new ServiceUnavailable('storage', new Error('x')),
      ERRORS.STORAGE_UNAVAILABLE,
    ],
    [
      'ServiceUnavailable of redis',
      new ServiceUnavailable('redis', new Error('x')),
      ERRORS.REDIS_UNAVAILABLE,
    ],
    [
      'ServiceUnavailable with no cause',
      new ServiceUnavailable('redis', undefined),
      ERRORS.REDIS_UNAVAILABLE,
    ],
    ['a copy of the storage entry', { ...ERRORS.STORAGE_UNAVAILABLE }, undefined],
    ['another 503-looking object', { status_code: 503, body: 'x\n' }, undefined],
    ['the internal error entry', ERRORS.INTERNAL_ERROR, undefined],
    ['the lock entry (423)', ERRORS.UPLOAD_LOCKED, undefined],
    ['a plain Error', new Error('storage unavailable'), undefined],
    [
      'an Error named ServiceUnavailable',
      Object.assign(new Error('x'), { name: 'ServiceUnavailable' }),
      undefined,
    ],
    ['undefined', undefined, undefined],
    ['null', null, undefined],
    ['a string', 'storage', undefined],
  ];

  test.each(rows)('%s', (_name, error, entry) => {
    expect(outageOf(error)).toBe(entry);
  });

  test('ServiceUnavailable names the service and the cause', () => {
    const error = new ServiceUnavailable('storage', new Error('connect ECONNREFUSED'));
    expect(error.message).toBe('storage unavailable: connect ECONNREFUSED');
    expect(error.name).toBe('ServiceUnavailable');
    expect((error.cause as Error).message).toBe('connect ECONNREFUSED');
  });
});
