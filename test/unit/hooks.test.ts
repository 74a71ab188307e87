import { describe, expect, test } from '@jest/globals';
import {
  canonicalHeaderKey,
  type HookResponse,
  mergeResponses,
  parseHookResponse,
  UPLOAD_REJECTED,
} from '../../hooks/wire.ts';
import { routeLabel } from '../../server/app.ts';

const ZERO: HookResponse = {
  HTTPResponse: { StatusCode: 0, Body: '', Header: {} },
  RejectUpload: false,
  RejectTermination: false,
  StopUpload: false,
  ChangeFileInfo: { ID: '', MetaData: null, Storage: null },
};

describe("parseHookResponse: a receiver's answer read as tusd reads it", () => {
  test.each([
    ['an empty object is all zero values', {}, ZERO],
    ['null is all zero values', null, ZERO],
    [
      'every field',
      {
        HTTPResponse: { StatusCode: 403, Body: 'no', Header: { 'X-A': '1' } },
        RejectUpload: true,
        RejectTermination: true,
        StopUpload: true,
        ChangeFileInfo: { ID: 'x-1', MetaData: { filename: 'a' }, Storage: { Path: 'p' } },
      },
      {
        HTTPResponse: { StatusCode: 403, Body: 'no', Header: { 'X-A': '1' } },
        RejectUpload: true,
        RejectTermination: true,
        StopUpload: true,
        ChangeFileInfo: { ID: 'x-1', MetaData: { filename: 'a' }, Storage: { Path: 'p' } },
      },
    ],
    [
      'field names in any case, like Go',
      { httpresponse: { statuscode: 400 }, rejectupload: true },
      { ...ZERO, HTTPResponse: { ...ZERO.HTTPResponse, StatusCode: 400 }, RejectUpload: true },
    ],
    [
      "tusd's example answers Headers, which tusd does not read",
      { HTTPResponse: { Headers: { 'X-Some-Header': 'yes' } } },
      ZERO,
    ],
  ])('%s', (_case, body, expected) => {
    expect(parseHookResponse(body)).toEqual(expected);
  });

  test.each([
    ['an array', []],
    ['a string', 'ok'],
    ['RejectUpload as a string', { RejectUpload: 'true' }],
    ['StatusCode as a string', { HTTPResponse: { StatusCode: '403' } }],
    ['StatusCode out of range', { HTTPResponse: { StatusCode: 99 } }],
    ['a header that is not a string', { HTTPResponse: { Header: { A: 1 } } }],
    ['MetaData values that are not strings', { ChangeFileInfo: { MetaData: { a: null } } }],
  ])('%s is refused', (_case, body) => {
    expect(() => parseHookResponse(body)).toThrow();
  });
});

describe('mergeResponses: tusd HTTPResponse.MergeWith', () => {
  test('the hook sets status and body when it gives them, headers add up', () => {
    expect(
      mergeResponses(UPLOAD_REJECTED, { StatusCode: 0, Body: 'why', Header: { 'X-A': '1' } }),
    ).toEqual({
      StatusCode: 400,
      Body: 'why',
      Header: { 'Content-Type': 'text/plain; charset=utf-8', 'X-A': '1' },
    });
    expect(mergeResponses(UPLOAD_REJECTED, { StatusCode: 0, Body: '', Header: {} })).toEqual(
      UPLOAD_REJECTED,
    );
  });
});

describe("canonicalHeaderKey: Go's http.Header keys", () => {
  test.each([
    ['upload-length', 'Upload-Length'],
    ['x-request-id', 'X-Request-Id'],
    ['HOST', 'Host'],
    ['tus-resumable', 'Tus-Resumable'],
  ])('%s → %s', (name, key) => {
    expect(canonicalHeaderKey(name)).toBe(key);
  });
});

describe('routeLabel: the route a request is counted under in metrics (never an id)', () => {
  test.each([
    ['/files', '/files'],
    ['/files/', '/files'],
    ['/files/0123456789abcdef0123456789abcdef', '/files/:id'],
    ['/files/prefix-1234', '/files/:id'],
    ['/files/abc/links', '/files/:id/links'],
    ['/files/abc/proof', '/files/:id/proof'],
    ['/files/abc/other', 'other'],
    ['/healthz', '/healthz'],
    ['/metrics', '/metrics'],
    ['/', 'other'],
    ['/assets/app.js', 'other'],
  ])('%s → %s', (path, label) => {
    expect(routeLabel(path)).toBe(label);
  });
});
