import type { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, test } from '@jest/globals';
import { ERRORS as TUS_ERRORS } from '@tus/utils';
import {
  isNotFound,
  isUnreachable,
  notFoundAsTus,
  reportOutages,
} from '../../storage/s3/outages.ts';
import { ServiceUnavailable } from '../../storage/types.ts';

/** An error as Node's net/dns/undici raise it: a message and a string `code`. */
const nodeError = (code: string) => Object.assign(new Error(`connect ${code}`), { code });

/** An error as the AWS SDK v3 raises it for an answer: a name and the HTTP status. */
const sdkError = (name: string, httpStatusCode?: number) =>
  Object.assign(new Error(name), { name, $metadata: { httpStatusCode } });

const NETWORK_CODES = [
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
];

describe('isUnreachable', () => {
  // [case, thrown value, whether the service is away]
  const rows: Array<[string, unknown, boolean]> = [
    ...NETWORK_CODES.map((code): [string, unknown, boolean] => [
      `Node error ${code}`,
      nodeError(code),
      true,
    ]),
    ...NETWORK_CODES.map((code): [string, unknown, boolean] => [
      `error caused by ${code}`,
      new TypeError('fetch failed', { cause: nodeError(code) }),
      true,
    ]),
    ['Node error ENOENT', nodeError('ENOENT'), false],
    ['Node error EACCES', nodeError('EACCES'), false],
    ['Node error ERR_INVALID_ARG_TYPE', nodeError('ERR_INVALID_ARG_TYPE'), false],
    ['cause without a network code', new Error('x', { cause: nodeError('EACCES') }), false],
    ['cause that is a string', new Error('x', { cause: 'ECONNREFUSED' }), false],
    [
      'AggregateError of refused connections (IPv6 and IPv4)',
      new AggregateError([nodeError('ECONNREFUSED'), nodeError('ECONNREFUSED')], 'connect failed'),
      true,
    ],
    [
      'AggregateError with one network error among others',
      new AggregateError([nodeError('EACCES'), nodeError('EHOSTUNREACH')]),
      true,
    ],
    ['AggregateError without network errors', new AggregateError([nodeError('EACCES')]), false],
    ['AggregateError of nothing', new AggregateError([]), false],
    [
      'errors array with holes',
      Object.assign(new Error('x'), { errors: [null, undefined, { code: 'ETIMEDOUT' }] }),
      true,
    ],
    // AWS SDK answers.
    ['TimeoutError', sdkError('TimeoutError'), true],
    ['RequestTimeout', sdkError('RequestTimeout', 400), true],
    ['500 InternalError', sdkError('InternalError', 500), true],
    ['502 from a proxy', sdkError('Unknown', 502), true],
    ['503 SlowDown (MinIO)', sdkError('SlowDown', 503), true],
    ['503 ServiceUnavailable', sdkError('ServiceUnavailable', 503), true],
    ['504', sdkError('Unknown', 504), true],
    ['404 NoSuchKey', sdkError('NoSuchKey', 404), false],
    ['404 NotFound', sdkError('NotFound', 404), false],
    ['403 AccessDenied', sdkError('AccessDenied', 403), false],
    ['400 InvalidArgument', sdkError('InvalidArgument', 400), false],
    ['412 PreconditionFailed', sdkError('PreconditionFailed', 412), false],
    ['499', sdkError('Unknown', 499), false],
    ['no status', sdkError('Unknown'), false],
    ['plain Error', new Error('boom'), false],
    [
      'ServiceUnavailable wrapping a refused connection',
      new ServiceUnavailable('storage', nodeError('ECONNREFUSED')),
      true,
    ],
    // Not errors at all.
    ['undefined', undefined, false],
    ['null', null, false],
    ['a string', 'ECONNREFUSED', false],
    ['a number', 503, false],
    ['an empty object', {}, false],
    ['a plain object with a code', { code: 'ECONNRESET' }, true],
  ];

  test.each(rows)('%s -> %p', (_name, error, expected) => {
    expect(isUnreachable(error)).toBe(expected);
  });
});

describe('isNotFound', () => {
  // [case, thrown value, whether the object is missing]
  const rows: Array<[string, unknown, boolean]> = [
    ['NoSuchKey', sdkError('NoSuchKey', 404), true],
    ['NotFound (HEAD)', sdkError('NotFound', 404), true],
    ['NoSuchBucket', sdkError('NoSuchBucket', 404), true],
    ['NoSuchKey without a status', sdkError('NoSuchKey'), true],
    ['any 404', sdkError('Unknown', 404), true],
    ['403 AccessDenied', sdkError('AccessDenied', 403), false],
    ['503 SlowDown', sdkError('SlowDown', 503), false],
    ['500', sdkError('InternalError', 500), false],
    ['410', sdkError('Unknown', 410), false],
    ['TimeoutError', sdkError('TimeoutError'), false],
    ['refused connection', nodeError('ECONNREFUSED'), false],
    ['ENOENT is a file error, not S3', nodeError('ENOENT'), false],
    ['plain Error', new Error('NoSuchKey'), false],
    ['an empty object', {}, false],
    ['a string', 'NoSuchKey', false],
    [
      'an outage (ServiceUnavailable) is never a missing object',
      new ServiceUnavailable('storage', nodeError('ECONNREFUSED')),
      false,
    ],
  ];

  test.each(rows)('%s -> %p', (_name, error, expected) => {
    expect(isNotFound(error)).toBe(expected);
  });

  // Whatever was thrown, even undefined or null, gets an answer rather than a TypeError.
  test.each([
    ['undefined', undefined],
    ['null', null],
  ])('%s is not a missing object', (_name, error) => {
    expect(isNotFound(error)).toBe(false);
  });
});

describe('isUnreachable, odd shapes', () => {
  // An `errors` field that is not an array is not read (inside reportOutages a TypeError
  // would replace the client's error).
  test.each([
    ['errors as an object', Object.assign(new Error('x'), { errors: { field: 'bad' } })],
    ['errors as a string', Object.assign(new Error('x'), { errors: 'bad' })],
  ])('%s -> false', (_name, error) => {
    expect(isUnreachable(error)).toBe(false);
  });
});

describe('notFoundAsTus', () => {
  // [case, thrown value, what is thrown on: tus's 404 entry or the value itself]
  const rows: Array<[string, unknown, 'tus 404' | 'same']> = [
    ['NoSuchKey', sdkError('NoSuchKey', 404), 'tus 404'],
    ['NotFound', sdkError('NotFound', 404), 'tus 404'],
    ['any 404', sdkError('Unknown', 404), 'tus 404'],
    ['403', sdkError('AccessDenied', 403), 'same'],
    ['503', sdkError('SlowDown', 503), 'same'],
    ['an outage', new ServiceUnavailable('storage', nodeError('ECONNREFUSED')), 'same'],
    ['a plain Error', new Error('boom'), 'same'],
  ];

  test.each(rows)('%s -> %s', (_name, error, expected) => {
    let thrown: unknown;
    try {
      notFoundAsTus(error);
    } catch (caught) {
      thrown = caught;
    }
    if (expected === 'tus 404') {
      expect(thrown).toBe(TUS_ERRORS.FILE_NOT_FOUND);
      expect(TUS_ERRORS.FILE_NOT_FOUND.status_code).toBe(404);
    } else {
      expect(thrown).toBe(error);
    }
  });
});

describe('reportOutages', () => {
  type Handler = (args: unknown) => Promise<unknown>;
  type Middleware = (next: Handler, context: unknown) => Handler;

  /** The middleware reportOutages adds to a client, wrapped around `next`. */
  function wrapped(next: Handler): { handler: Handler; options: unknown } {
    let middleware: Middleware | undefined;
    let options: unknown;
    const client = {
      middlewareStack: {
        add: (added: Middleware, addedOptions: unknown) => {
          middleware = added;
          options = addedOptions;
        },
      },
    } as unknown as S3Client;
    reportOutages(client);
    if (!middleware) throw new Error('reportOutages added no middleware');
    return { handler: middleware(next, {}), options };
  }

  test('it is added at the initialize step, under a name', () => {
    const { options } = wrapped(async () => undefined);
    expect(options).toEqual({ step: 'initialize', name: 'reportStorageOutages' });
  });

  test('a success passes through', async () => {
    const output = { output: { ETag: '"x"' } };
    const { handler } = wrapped(async (args) => ({ ...output, args }));
    await expect(handler({ input: 1 })).resolves.toEqual({ ...output, args: { input: 1 } });
  });

  // [case, what the client throws, whether it surfaces as ServiceUnavailable('storage')]
  const rows: Array<[string, unknown, boolean]> = [
    ['refused connection', nodeError('ECONNREFUSED'), true],
    ['503 SlowDown', sdkError('SlowDown', 503), true],
    ['TimeoutError', sdkError('TimeoutError'), true],
    ['404 NoSuchKey', sdkError('NoSuchKey', 404), false],
    ['403 AccessDenied', sdkError('AccessDenied', 403), false],
    ['plain Error', new Error('boom'), false],
  ];

  test.each(rows)('%s -> outage %p', async (_name, error, outage) => {
    const { handler } = wrapped(async () => {
      throw error;
    });
    const thrown = await handler({}).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    if (outage) {
      expect(thrown).toBeInstanceOf(ServiceUnavailable);
      expect((thrown as ServiceUnavailable).service).toBe('storage');
      expect((thrown as ServiceUnavailable).cause).toBe(error);
    } else {
      expect(thrown).toBe(error);
    }
  });
});
