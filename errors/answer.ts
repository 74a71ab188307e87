import { ERRORS as TUS_ERRORS, TUS_RESUMABLE } from '@tus/utils';
import { ERRORS, type ErrorEntry, outageOf, sendJsonError, sendTusError } from './catalogue.ts';

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

/** Where a route's answers go: tus routes answer in tus's text, the others in JSON. */
export type AnswerFormat = 'tus' | 'json';

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
 * text or JSON, decided by the route; server-side failures (5xx) as JSON on every route. `failed` is told of what is not the client's doing
 * (outages and unknown errors), so it reaches the log; the client learns only the entry.
 */
export function answerError(
  res: AnswerResponse,
  error: unknown,
  format: AnswerFormat,
  failed?: (error: unknown, entry: ErrorEntry) => void,
): void {
  const entry = entryOf(error);
  if (!entry || entry.status_code >= 500) failed?.(error, entry ?? ERRORS.INTERNAL_ERROR);
  // A failure after the answer started: the client sees the connection end, not a mixed answer.
  if (res.headersSent) return void res.destroy();
  const tus: Record<string, string> = format === 'tus' ? { 'Tus-Resumable': TUS_RESUMABLE } : {};
  if (error instanceof HttpError && format === 'tus') {
    // Its own headers win (a hook's answer may be JSON), but not over Tus-Resumable.
    res
      .status(error.status_code || 200)
      .set({ 'Content-Type': 'text/plain; charset=utf-8', ...error.headers, ...tus })
      .send(error.body);
    return;
  }
  if (error instanceof HttpError) {
    sendJsonError(res, error, { ...error.headers });
    return;
  }
  const answer = entry ?? ERRORS.INTERNAL_ERROR;
  if (format === 'tus' && answer.status_code < 500) sendTusError(res, answer);
  else sendJsonError(res, answer, tus);
}
