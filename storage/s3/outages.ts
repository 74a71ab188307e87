import type { S3Client } from '@aws-sdk/client-s3';
import { ERRORS } from '@tus/utils';
import { currentContext } from '../../request/context.ts';
import { ServiceUnavailable } from '../types.ts';

// Errors of a connection that could not be made or was lost, from Node's net and undici.
const NETWORK_ERROR_CODES = new Set([
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
]);

/**
 * Whether an error from an S3 client means the service is away rather than that the request was
 * wrong: no connection, a timeout, or a 5xx answer (MinIO's 503 "SlowDown" included).
 */
export function isUnreachable(error: unknown): boolean {
  const err = error as
    | (Error & {
        code?: string;
        cause?: { code?: string };
        errors?: Array<{ code?: string }>;
        $metadata?: { httpStatusCode?: number };
      })
    | undefined;
  if (!err || typeof err !== 'object') return false;
  const nested = Array.isArray(err.errors) ? err.errors.map((e) => e?.code) : [];
  const codes = [err.code, err.cause?.code, ...nested];
  if (codes.some((code) => code !== undefined && NETWORK_ERROR_CODES.has(code))) return true;
  if (err.name === 'TimeoutError' || err.name === 'RequestTimeout') return true;
  return (err.$metadata?.httpStatusCode ?? 0) >= 500;
}

/**
 * Every request of the client that fails because S3 is away (after the SDK's own retries)
 * surfaces as ServiceUnavailable, so no caller mistakes an outage for a missing upload.
 */
export function reportOutages(client: S3Client): void {
  client.middlewareStack.add(
    (next) => async (args) => {
      try {
        return await next(args);
      } catch (error) {
        throw isUnreachable(error) ? new ServiceUnavailable('storage', error) : error;
      }
    },
    { step: 'initialize', name: 'reportStorageOutages' },
  );
}

/**
 * A request whose upload lock was lost (see RequestContext.lockLost) starts nothing more on S3:
 * each command fails with the loss before it leaves. (TusS3Store aborts the parts in flight.)
 */
function fenceLostLocks(client: S3Client): void {
  client.middlewareStack.add(
    (next) => async (args) => {
      currentContext()?.lockLost.signal.throwIfAborted();
      return next(args);
    },
    { step: 'initialize', name: 'fenceLostLocks' },
  );
}

/** How long each S3 request took, by operation (the SDK's command name), for metrics. */
export type S3Observer = (operation: string, seconds: number) => void;

/** Reports the duration of every request of the client, failed ones included. */
function timeRequests(client: S3Client, observe: S3Observer | undefined): void {
  if (!observe) return;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const started = performance.now();
      try {
        return await next(args);
      } finally {
        observe(
          context.commandName?.replace(/Command$/, '') ?? 'unknown',
          (performance.now() - started) / 1000,
        );
      }
    },
    { step: 'initialize', name: 'timeS3Requests' },
  );
}

/** What every S3 client of the server does: outages as 503s, lost locks fenced, requests timed. */
export function instrument(client: S3Client, observe: S3Observer | undefined): void {
  reportOutages(client);
  fenceLostLocks(client);
  timeRequests(client, observe);
}

export function isNotFound(error: unknown): boolean {
  const err = error as (Error & { $metadata?: { httpStatusCode?: number } }) | undefined;
  if (!err || typeof err !== 'object') return false;
  return (
    err.name === 'NotFound' ||
    err.name === 'NoSuchKey' ||
    err.name === 'NoSuchBucket' ||
    err.$metadata?.httpStatusCode === 404
  );
}

/** A missing `<id>.info` is a missing upload; any other failure stays what it is. */
export function notFoundAsTus(error: unknown): never {
  throw isNotFound(error) ? ERRORS.FILE_NOT_FOUND : error;
}
