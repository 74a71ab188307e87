import { ERRORS as TUS_ERRORS, TUS_RESUMABLE } from '@tus/utils';
import { contextOf } from '../request/context.ts';
import {
  ERRORS,
  type ErrorEntry,
  outageOf,
  retryHeaders,
  sendJsonError,
  sendTusError,
} from './catalogue.ts';

/**
 * A refusal with its whole answer: status, message and headers. Concatenation and hooks throw
 * it (a hook's answer is tusd's HTTPResponse, sent as the hook gave it); it has the shape of an
 * ErrorEntry, so @tus/server answers it too when it reaches tus.
 */
export class HttpError extends Error {
  constructor(
    readonly status_code: number,
    readonly body: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(body.trimEnd());
  }

  static of(entry: ErrorEntry, headers?: Record<string, string>): HttpError {
    return new HttpError(entry.status_code, entry.body, headers);
  }
}

/** Whether an error says the upload is not there (tus's ERR_FILE_NOT_FOUND, any 404 entry). */
export function isNotFoundError(error: unknown): boolean {
  return (error as { status_code?: unknown } | undefined)?.status_code === 404;
}

/**
 * The answer an error stands for: its own entry when it is a refusal (4xx) or an HttpError,
 * 423 for a lock that could not be had, 503 for a backing service that is away. Undefined for
 * anything else: a failure of the server's, answered 500 and logged by whoever asks.
 */
export function entryOf(error: unknown): ErrorEntry | undefined {
  if (error instanceof HttpError) return error;
  // The in-process locker's timeout is a 500 in @tus/server; it is a retryable 423 here.
  if (error === TUS_ERRORS.ERR_LOCK_TIMEOUT) return ERRORS.UPLOAD_LOCKED;
  const outage = outageOf(error);
  if (outage) return outage;
  const entry = error as Partial<ErrorEntry> | undefined;
  if (typeof entry?.status_code === 'number' && entry.status_code < 500) {
    return entry as ErrorEntry;
  }
  return undefined;
}

type AnswerResponse = {
  readonly headersSent: boolean;
  destroy(): unknown;
  status(code: number): AnswerResponse;
  set(headers: Record<string, string>): AnswerResponse;
  send(body: string): unknown;
  json(body: unknown): unknown;
};

/**
 * The one exit for an error of the server's own routes. An HttpError is sent with its own
 * status and headers (on tus routes as its text, with Tus-Resumable); any other refusal as tus
 * text or JSON as the route answers (the request context's `answers`, decided at the edge;
 * a JSON route's missing upload is its plain `not found`); server-side failures (5xx) as JSON
 * on every route. `failed` is told of what is not the client's doing (an outage, or an error
 * of the server's), so it reaches the log; the client learns only the entry. `headers` go on
 * the answer (a JSON route of the tus API sends Tus-Resumable too).
 */
export function answerError(
  req: object,
  res: AnswerResponse,
  error: unknown,
  options: {
    headers?: Record<string, string>;
    failed?: (error: unknown, outage: ErrorEntry | undefined) => void;
  } = {},
): void {
  const format = contextOf(req).answers;
  const entry = entryOf(error);
  if (!entry || entry.status_code >= 500) options.failed?.(error, outageOf(error));
  // A failure after the answer started: the client sees the connection end, not a mixed answer.
  if (res.headersSent) return void res.destroy();
  const headers = { ...options.headers };
  if (format === 'tus') headers['Tus-Resumable'] = TUS_RESUMABLE;
  if (error instanceof HttpError && format === 'tus') {
    // Its own headers win (a hook's answer may be JSON), but not over Tus-Resumable.
    res
      .status(error.status_code || 200)
      .set({
        ...retryHeaders(error.status_code),
        'Content-Type': 'text/plain; charset=utf-8',
        ...error.headers,
        ...headers,
      })
      .send(error.body);
    return;
  }
  if (error instanceof HttpError) {
    sendJsonError(res, error, { ...error.headers, ...headers });
    return;
  }
  let answer = entry ?? ERRORS.INTERNAL_ERROR;
  if (format === 'json' && isNotFoundError(error)) answer = ERRORS.NOT_FOUND;
  if (format === 'tus' && answer.status_code < 500) sendTusError(res, answer, headers);
  else sendJsonError(res, answer, headers);
}

/** Refuses the request with `entry` (and `headers`), in the format its route answers. */
export function refuse(
  req: object,
  res: AnswerResponse,
  entry: ErrorEntry,
  headers?: Record<string, string>,
): void {
  answerError(req, res, HttpError.of(entry, headers));
}
