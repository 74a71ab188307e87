import { describe, expect, test } from '@jest/globals';
import { ERRORS, type ErrorEntry } from '../../errors/catalogue.ts';
import { effectiveMethod } from '../../server/methodOverride.ts';

type Row = [method: string, override: string | undefined, expected: string | ErrorEntry];

// One request line and override per row, and what every layer then sees the request as.
const rows: Row[] = [
  ['POST', undefined, 'POST'],
  ['PATCH', undefined, 'PATCH'],
  ['OPTIONS', undefined, 'OPTIONS'],
  ['POST', '', 'POST'],
  ['POST', '   ', 'POST'],
  // What tus clients behind GET/POST-only proxies send (tus-js-client's overridePatchMethod).
  ['POST', 'PATCH', 'PATCH'],
  ['POST', 'patch', 'PATCH'],
  ['POST', ' delete ', 'DELETE'],
  ['POST', 'HEAD', 'HEAD'],
  ['POST', 'POST', 'POST'],
  // A POST never stands in for a preflight or a download.
  ['POST', 'OPTIONS', ERRORS.UNSUPPORTED_METHOD_OVERRIDE],
  ['POST', 'GET', ERRORS.UNSUPPORTED_METHOD_OVERRIDE],
  ['POST', 'PUT', ERRORS.UNSUPPORTED_METHOD_OVERRIDE],
  ['POST', 'TRACE', ERRORS.UNSUPPORTED_METHOD_OVERRIDE],
  ['POST', 'CONNECT', ERRORS.UNSUPPORTED_METHOD_OVERRIDE],
  ['POST', 'PATCHX', ERRORS.UNSUPPORTED_METHOD_OVERRIDE],
  // Only a POST may carry an override: a "preflight" or a GET never turns into a write.
  ['OPTIONS', 'PATCH', ERRORS.METHOD_OVERRIDE_NOT_POST],
  ['OPTIONS', 'HEAD', ERRORS.METHOD_OVERRIDE_NOT_POST],
  ['OPTIONS', 'DELETE', ERRORS.METHOD_OVERRIDE_NOT_POST],
  ['OPTIONS', 'POST', ERRORS.METHOD_OVERRIDE_NOT_POST],
  ['GET', 'DELETE', ERRORS.METHOD_OVERRIDE_NOT_POST],
  ['HEAD', 'PATCH', ERRORS.METHOD_OVERRIDE_NOT_POST],
  ['PATCH', 'POST', ERRORS.METHOD_OVERRIDE_NOT_POST],
  ['DELETE', 'POST', ERRORS.METHOD_OVERRIDE_NOT_POST],
  ['PATCH', 'PATCH', ERRORS.METHOD_OVERRIDE_NOT_POST],
];

describe('effectiveMethod', () => {
  test.each(rows)('%s with X-HTTP-Method-Override %p', (method, override, expected) => {
    const decided = effectiveMethod(method, override);
    if (typeof expected === 'string') expect(decided).toEqual({ method: expected });
    else expect(decided).toEqual({ error: expected });
  });
});
