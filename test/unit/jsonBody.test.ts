import { describe, expect, test } from '@jest/globals';
import { ERRORS, jsonError } from '../../errors/catalogue.ts';
import { isJsonObject } from '../../server/links.ts';

describe('isJsonObject (the body of POST /files/:id/links)', () => {
  // [parsed body, accepted as an object]
  const rows: Array<[unknown, boolean]> = [
    [{}, true],
    [{ expiresIn: 60 }, true],
    [Object.create(null), true],
    [null, false],
    [[], false],
    [[{ expiresIn: 60 }], false],
    ['60', false],
    [60, false],
    [true, false],
    [undefined, false],
  ];

  test.each(rows)('%p -> %p', (body, accepted) => {
    expect(isJsonObject(body)).toBe(accepted);
  });
});

describe('the catalogue entries of refused JSON bodies', () => {
  // [entry, status, JSON body]
  const rows: Array<[keyof typeof ERRORS, number, { error: string }]> = [
    ['INVALID_JSON_BODY', 400, { error: 'the request body must be a JSON object' }],
    ['JSON_BODY_TOO_LARGE', 413, { error: 'the request body must be at most 1 KB' }],
  ];

  test.each(rows)('%s is %p %p', (name, status, body) => {
    expect(ERRORS[name].status_code).toBe(status);
    expect(jsonError(ERRORS[name])).toEqual(body);
  });
});
