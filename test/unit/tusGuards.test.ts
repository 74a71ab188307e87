import { describe, expect, test } from '@jest/globals';
import type { Request, Response } from 'express';
import { ERRORS, type ErrorEntry } from '../../errors/catalogue.ts';
import { contextOf } from '../../request/context.ts';
import { checkTusRequest, type TusRequestView, tusGuards } from '../../server/tusGuards.ts';

/** A request as the guards see it: Express's `get` reads headers case-insensitively. */
function request(
  method: string,
  headers: Record<string, string> = {},
  params: Record<string, unknown> = {},
): TusRequestView {
  const byName = new Map(
    Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]),
  );
  return { method, get: (name) => byName.get(name.toLowerCase()), params };
}

const ID = '0123456789abcdef0123456789abcdef';
const TUS = { 'Tus-Resumable': '1.0.0' };
const PATCH_TYPE = { 'Content-Type': 'application/offset+octet-stream' };
const MAX = '9007199254740991'; // 2^53 - 1
const MAX_PLUS_ONE = '9007199254740992';

type Row = [
  name: string,
  method: string,
  headers: Record<string, string>,
  params: Record<string, unknown>,
  /** The status tus 1.0.0 / HTTP asks for, with the entry; undefined when the request passes. */
  expected: [number, ErrorEntry] | undefined,
  /** The method after the guards: unchanged (overrides are decided at the edge). */
  methodAfter: string,
];

const rows: Row[] = [
  // OPTIONS needs no Tus-Resumable (tus 1.0.0: every request "except for OPTIONS requests").
  ['OPTIONS without Tus-Resumable', 'OPTIONS', {}, {}, undefined, 'OPTIONS'],
  [
    'OPTIONS with an old Tus-Resumable',
    'OPTIONS',
    { 'Tus-Resumable': '0.2.2' },
    {},
    undefined,
    'OPTIONS',
  ],
  ['OPTIONS with a bad id', 'OPTIONS', {}, { id: 'nope' }, undefined, 'OPTIONS'],

  // Tus-Resumable missing or unsupported: 412 (with Tus-Version, added by the middleware).
  ['POST without Tus-Resumable', 'POST', {}, {}, [412, ERRORS.MISSING_TUS_RESUMABLE], 'POST'],
  [
    'HEAD without Tus-Resumable',
    'HEAD',
    {},
    { id: ID },
    [412, ERRORS.MISSING_TUS_RESUMABLE],
    'HEAD',
  ],
  [
    'PATCH without Tus-Resumable',
    'PATCH',
    PATCH_TYPE,
    { id: ID },
    [412, ERRORS.MISSING_TUS_RESUMABLE],
    'PATCH',
  ],
  [
    'DELETE without Tus-Resumable',
    'DELETE',
    {},
    { id: ID },
    [412, ERRORS.MISSING_TUS_RESUMABLE],
    'DELETE',
  ],
  ['GET (a download) without Tus-Resumable', 'GET', {}, { id: ID }, undefined, 'GET'],
  [
    'POST with Tus-Resumable 0.2.2',
    'POST',
    { 'Tus-Resumable': '0.2.2' },
    {},
    [412, ERRORS.UNSUPPORTED_TUS_VERSION],
    'POST',
  ],
  [
    'POST with Tus-Resumable 1.0',
    'POST',
    { 'Tus-Resumable': '1.0' },
    {},
    [412, ERRORS.UNSUPPORTED_TUS_VERSION],
    'POST',
  ],
  [
    'POST with Tus-Resumable 2.0.0',
    'POST',
    { 'Tus-Resumable': '2.0.0' },
    {},
    [412, ERRORS.UNSUPPORTED_TUS_VERSION],
    'POST',
  ],
  [
    'POST with an empty Tus-Resumable',
    'POST',
    { 'Tus-Resumable': '' },
    {},
    [412, ERRORS.UNSUPPORTED_TUS_VERSION],
    'POST',
  ],
  [
    'GET with Tus-Resumable 0.2.2',
    'GET',
    { 'Tus-Resumable': '0.2.2' },
    { id: ID },
    [412, ERRORS.UNSUPPORTED_TUS_VERSION],
    'GET',
  ],
  ['POST with Tus-Resumable 1.0.0', 'POST', TUS, {}, undefined, 'POST'],
  [
    'header names are case-insensitive',
    'POST',
    { 'TUS-RESUMABLE': '1.0.0' },
    {},
    undefined,
    'POST',
  ],

  // Upload-Length and Upload-Offset beyond what a JavaScript number holds exactly.
  ['Upload-Length 0', 'POST', { ...TUS, 'Upload-Length': '0' }, {}, undefined, 'POST'],
  ['Upload-Length 2^53-1', 'POST', { ...TUS, 'Upload-Length': MAX }, {}, undefined, 'POST'],
  [
    'Upload-Length 2^53',
    'POST',
    { ...TUS, 'Upload-Length': MAX_PLUS_ONE },
    {},
    [400, ERRORS.UPLOAD_LENGTH_TOO_LARGE],
    'POST',
  ],
  [
    'Upload-Length 2^53+1',
    'POST',
    { ...TUS, 'Upload-Length': '9007199254740993' },
    {},
    [400, ERRORS.UPLOAD_LENGTH_TOO_LARGE],
    'POST',
  ],
  [
    'Upload-Length 2^64',
    'POST',
    { ...TUS, 'Upload-Length': '18446744073709551616' },
    {},
    [400, ERRORS.UPLOAD_LENGTH_TOO_LARGE],
    'POST',
  ],
  [
    'Upload-Length 1e400 digits',
    'POST',
    { ...TUS, 'Upload-Length': '9'.repeat(400) },
    {},
    [400, ERRORS.UPLOAD_LENGTH_TOO_LARGE],
    'POST',
  ],
  [
    'Upload-Length 2^53-1 with leading zeros',
    'POST',
    { ...TUS, 'Upload-Length': `000${MAX}` },
    {},
    undefined,
    'POST',
  ],
  [
    'Upload-Length negative is left to tus',
    'POST',
    { ...TUS, 'Upload-Length': '-1' },
    {},
    undefined,
    'POST',
  ],
  [
    'Upload-Length not a number is left to tus',
    'POST',
    { ...TUS, 'Upload-Length': 'abc' },
    {},
    undefined,
    'POST',
  ],
  [
    'Upload-Offset 2^53-1',
    'PATCH',
    { ...TUS, ...PATCH_TYPE, 'Upload-Offset': MAX },
    { id: ID },
    undefined,
    'PATCH',
  ],
  [
    'Upload-Offset 2^53',
    'PATCH',
    { ...TUS, ...PATCH_TYPE, 'Upload-Offset': MAX_PLUS_ONE },
    { id: ID },
    [400, ERRORS.UPLOAD_OFFSET_TOO_LARGE],
    'PATCH',
  ],
  [
    'Upload-Offset 2^64',
    'PATCH',
    { ...TUS, ...PATCH_TYPE, 'Upload-Offset': '18446744073709551616' },
    { id: ID },
    [400, ERRORS.UPLOAD_OFFSET_TOO_LARGE],
    'PATCH',
  ],
  [
    'Upload-Offset decimal is left to tus',
    'PATCH',
    { ...TUS, ...PATCH_TYPE, 'Upload-Offset': '1.5' },
    { id: ID },
    undefined,
    'PATCH',
  ],
  [
    'Upload-Length checked before Upload-Offset',
    'POST',
    { ...TUS, 'Upload-Length': MAX_PLUS_ONE, 'Upload-Offset': MAX_PLUS_ONE },
    {},
    [400, ERRORS.UPLOAD_LENGTH_TOO_LARGE],
    'POST',
  ],

  // Upload ids: the server's own (32 hex) or a pre-create hook's (letters, digits, - and _, at most
  // 128): always one safe path segment. Anything else is unknown.
  ['valid id', 'HEAD', TUS, { id: ID }, undefined, 'HEAD'],
  ['a hook-chosen id', 'HEAD', TUS, { id: 'prefix-0b7e-4f1a_X' }, undefined, 'HEAD'],
  ['128-character id', 'HEAD', TUS, { id: 'a'.repeat(128) }, undefined, 'HEAD'],
  ['129-character id', 'HEAD', TUS, { id: 'a'.repeat(129) }, [404, ERRORS.FILE_NOT_FOUND], 'HEAD'],
  ['id with a dot', 'HEAD', TUS, { id: `${ID}.info` }, [404, ERRORS.FILE_NOT_FOUND], 'HEAD'],
  ['id starting with -', 'HEAD', TUS, { id: '-x' }, [404, ERRORS.FILE_NOT_FOUND], 'HEAD'],
  ['id with a space', 'HEAD', TUS, { id: 'a b' }, [404, ERRORS.FILE_NOT_FOUND], 'HEAD'],
  ['id with a path', 'DELETE', TUS, { id: `../${ID}` }, [404, ERRORS.FILE_NOT_FOUND], 'DELETE'],
  [
    'id with a trailing newline',
    'HEAD',
    TUS,
    { id: `${ID}\n` },
    [404, ERRORS.FILE_NOT_FOUND],
    'HEAD',
  ],
  ['empty id', 'HEAD', TUS, { id: '' }, [404, ERRORS.FILE_NOT_FOUND], 'HEAD'],
  ['id that is not a string', 'HEAD', TUS, { id: 123 }, [404, ERRORS.FILE_NOT_FOUND], 'HEAD'],
  ['id that is an array', 'HEAD', TUS, { id: [ID] }, [404, ERRORS.FILE_NOT_FOUND], 'HEAD'],
  [
    'PATCH with a bad id',
    'PATCH',
    { ...TUS, ...PATCH_TYPE },
    { id: 'a.b' },
    [404, ERRORS.FILE_NOT_FOUND],
    'PATCH',
  ],

  // PATCH requests MUST use Content-Type: application/offset+octet-stream, else 415.
  [
    'PATCH with the offset type',
    'PATCH',
    { ...TUS, ...PATCH_TYPE, 'Upload-Offset': '0' },
    { id: ID },
    undefined,
    'PATCH',
  ],
  // The Request MUST include a Upload-Offset header: missing is a 400 (as tusd), not a 403.
  [
    'PATCH without Upload-Offset',
    'PATCH',
    { ...TUS, ...PATCH_TYPE },
    { id: ID },
    [400, ERRORS.MISSING_UPLOAD_OFFSET],
    'PATCH',
  ],
  [
    'PATCH without Upload-Offset and Content-Type: the type first, as tusd',
    'PATCH',
    TUS,
    { id: ID },
    [415, ERRORS.PATCH_CONTENT_TYPE],
    'PATCH',
  ],
  [
    'PATCH without Content-Type',
    'PATCH',
    TUS,
    { id: ID },
    [415, ERRORS.PATCH_CONTENT_TYPE],
    'PATCH',
  ],
  [
    'PATCH with application/octet-stream',
    'PATCH',
    { ...TUS, 'Content-Type': 'application/octet-stream' },
    { id: ID },
    [415, ERRORS.PATCH_CONTENT_TYPE],
    'PATCH',
  ],
  [
    'PATCH with text/plain',
    'PATCH',
    { ...TUS, 'Content-Type': 'text/plain' },
    { id: ID },
    [415, ERRORS.PATCH_CONTENT_TYPE],
    'PATCH',
  ],
  ['POST needs no offset type', 'POST', { ...TUS, 'Upload-Length': '10' }, {}, undefined, 'POST'],
  // creation-with-upload: a body on a creation is typed as a PATCH's; a creation without a body
  // may carry any Content-Type (some HTTP clients always send one).
  [
    'POST with a body of text/plain',
    'POST',
    { ...TUS, 'Upload-Length': '12', 'Content-Type': 'text/plain', 'Content-Length': '12' },
    {},
    [415, ERRORS.CREATION_CONTENT_TYPE],
    'POST',
  ],
  // concatenation: a final upload's bytes are its partials' (403, as tusd).
  [
    'POST of a final upload with a body',
    'POST',
    { ...TUS, 'Upload-Concat': `final;/files/${ID}`, ...PATCH_TYPE, 'Content-Length': '3' },
    {},
    [403, ERRORS.CONCAT_FINAL_WITH_BODY],
    'POST',
  ],
  [
    'POST of a final upload without a body',
    'POST',
    { ...TUS, 'Upload-Concat': `final;/files/${ID}`, 'Content-Length': '0' },
    {},
    undefined,
    'POST',
  ],
  [
    'POST with a chunked body and no Content-Type',
    'POST',
    { ...TUS, 'Upload-Length': '12', 'Transfer-Encoding': 'chunked' },
    {},
    [415, ERRORS.CREATION_CONTENT_TYPE],
    'POST',
  ],
  [
    'POST with an empty body of text/plain',
    'POST',
    { ...TUS, 'Upload-Length': '12', 'Content-Type': 'text/plain', 'Content-Length': '0' },
    {},
    undefined,
    'POST',
  ],
  [
    'POST with a body of the offset type',
    'POST',
    { ...TUS, 'Upload-Length': '12', ...PATCH_TYPE, 'Content-Length': '12' },
    {},
    undefined,
    'POST',
  ],
];

describe('checkTusRequest', () => {
  test.each(rows)('%s', (_name, method, headers, params, expected, methodAfter) => {
    const req = request(method, headers, params);
    const rejection = checkTusRequest(req);
    if (expected === undefined) {
      expect(rejection).toBeUndefined();
    } else {
      const [status, entry] = expected;
      expect(rejection?.status_code).toBe(status);
      expect(rejection).toBe(entry);
    }
    expect(req.method).toBe(methodAfter);
  });
});

describe('tusGuards (the middleware)', () => {
  /** Just enough of Express's Response to record what the middleware sends. */
  function response() {
    const sent: { status?: number; headers: Record<string, string>; body?: string } = {
      headers: {},
    };
    const res = {
      set(headers: Record<string, string>) {
        Object.assign(sent.headers, headers);
        return res;
      },
      status(code: number) {
        sent.status = code;
        return res;
      },
      send(body: string) {
        sent.body = body;
        return res;
      },
    };
    return { res: res as unknown as Response, sent };
  }

  // [case, method, headers, params, status or undefined when next() is called, Tus-Version sent]
  const middlewareRows: Array<
    [string, string, Record<string, string>, Record<string, unknown>, number | undefined, boolean]
  > = [
    ['a good request goes on', 'POST', { ...TUS, 'Upload-Length': '1' }, {}, undefined, false],
    ['OPTIONS goes on', 'OPTIONS', {}, {}, undefined, false],
    ['412 carries Tus-Version', 'POST', {}, {}, 412, true],
    [
      '412 for an old version carries Tus-Version',
      'POST',
      { 'Tus-Resumable': '0.2.2' },
      {},
      412,
      true,
    ],
    ['404 carries no Tus-Version', 'HEAD', TUS, { id: 'x.y' }, 404, false],
    ['415 carries no Tus-Version', 'PATCH', TUS, { id: ID }, 415, false],
    [
      '400 carries no Tus-Version',
      'POST',
      { ...TUS, 'Upload-Length': MAX_PLUS_ONE },
      {},
      400,
      false,
    ],
  ];

  test.each(middlewareRows)('%s', (_name, method, headers, params, status, tusVersion) => {
    const { res, sent } = response();
    let nextCalls = 0;
    const req = request(method, headers, params);
    // What the edge decides for a request under /files (server/requests.ts answerFormatOf).
    contextOf(req).answers = 'tus';
    tusGuards(req as unknown as Request, res, () => {
      nextCalls++;
    });
    if (status === undefined) {
      expect(nextCalls).toBe(1);
      expect(sent.status).toBeUndefined();
      return;
    }
    expect(nextCalls).toBe(0);
    expect(sent.status).toBe(status);
    expect(sent.body).toMatch(/\n$/);
    expect(sent.headers['Tus-Resumable']).toBe('1.0.0');
    expect(sent.headers['Tus-Version']).toBe(tusVersion ? '1.0.0' : undefined);
    expect(sent.headers['Content-Type']).toBe('text/plain; charset=utf-8');
    expect(sent.headers['Access-Control-Allow-Origin']).toBe('*');
    expect(sent.headers['Access-Control-Expose-Headers']).toMatch(/Tus-Version/);
  });
});
