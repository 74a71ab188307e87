import { ERRORS as TUS_ERRORS, TUS_RESUMABLE } from '@tus/utils';
import { ServiceUnavailable } from '../storage/types.ts';

/** One answer the server can fail with: its status and its message, ending in a newline. */
export type ErrorEntry = { readonly status_code: number; readonly body: string };

/**
 * Every error status and message the server sends, defined once. @tus/utils' entries are reused as
 * they are, ours sit beside them in the same shape. tus routes send the body as text (5xx as
 * JSON); the other routes send `{"error": "<message>"}` (jsonError).
 */
export const ERRORS = {
  ...TUS_ERRORS,
  // The tus 1.0.0 text, where @tus/server answers differently or not at all.
  MISSING_TUS_RESUMABLE: { status_code: 412, body: 'Tus-Resumable header is required\n' },
  UNSUPPORTED_TUS_VERSION: {
    status_code: 412,
    body: 'Tus-Resumable version is not supported; this server speaks 1.0.0\n',
  },
  UNSUPPORTED_METHOD_OVERRIDE: {
    status_code: 400,
    body: 'X-HTTP-Method-Override must be PATCH, HEAD, DELETE or POST\n',
  },
  METHOD_OVERRIDE_NOT_POST: {
    status_code: 400,
    body: 'X-HTTP-Method-Override is accepted on POST requests only\n',
  },
  PATCH_CONTENT_TYPE: {
    status_code: 415,
    body: 'PATCH requires Content-Type: application/offset+octet-stream\n',
  },
  CREATION_CONTENT_TYPE: {
    status_code: 415,
    body: 'a creation with a body requires Content-Type: application/offset+octet-stream\n',
  },
  // @tus/utils answers 403 (forbidden) for a header that is only missing.
  MISSING_UPLOAD_OFFSET: { status_code: 400, body: 'PATCH requires Upload-Offset\n' },
  UPLOAD_LENGTH_TOO_LARGE: {
    status_code: 400,
    body: `Upload-Length must be at most ${Number.MAX_SAFE_INTEGER}\n`,
  },
  UPLOAD_OFFSET_TOO_LARGE: {
    status_code: 400,
    body: `Upload-Offset must be at most ${Number.MAX_SAFE_INTEGER}\n`,
  },
  // S3 holds at most 10,000 parts of at most 5 GiB: storage/s3/partPlan.ts (fitsParts).
  PART_LIMIT_EXCEEDED: {
    status_code: 413,
    body: 'the upload cannot hold these bytes: S3 allows 10,000 parts of at most 5 GiB, and its parts so far leave no room; the bytes stored so far stay\n',
  },
  // Upload-Metadata the server understands.
  INVALID_SHA256: { status_code: 400, body: 'Upload-Metadata sha256 must be 64 hex characters\n' },
  INVALID_MD5: { status_code: 400, body: 'Upload-Metadata md5 must be 32 hex characters\n' },
  // 460 is the status of the tus checksum extension for bytes that do not match.
  SHA256_MISMATCH: {
    status_code: 460,
    body: 'Checksum Mismatch: the received bytes do not match the sha256 in Upload-Metadata\n',
  },
  MD5_MISMATCH: {
    status_code: 460,
    body: 'Checksum Mismatch: the received bytes do not match the md5 in Upload-Metadata\n',
  },
  SHA256_AND_MD5_MISMATCH: {
    status_code: 460,
    body: 'Checksum Mismatch: the received bytes do not match the sha256 and md5 in Upload-Metadata\n',
  },
  // The checksum extension: Upload-Checksum on a PATCH (or a creation with upload).
  CHECKSUM_ALGORITHM_UNSUPPORTED: {
    status_code: 400,
    body: 'Upload-Checksum algorithm must be one of sha1, md5, sha256, sha512\n',
  },
  INVALID_UPLOAD_CHECKSUM: {
    status_code: 400,
    body: 'Upload-Checksum must be "<algorithm> <Base64 digest>"\n',
  },
  CHECKSUM_MISMATCH: {
    status_code: 460,
    body: 'Checksum Mismatch: the request body does not match its Upload-Checksum; nothing was stored\n',
  },
  CHECKSUM_TRAILER_MISSING: {
    status_code: 400,
    body: 'the request declared an Upload-Checksum trailer but sent none; nothing was stored\n',
  },
  CHECKSUM_BODY_INCOMPLETE: {
    status_code: 400,
    body: 'the request body ended before its Content-Length; nothing was stored\n',
  },
  // `{max}` is CHECKSUM_MAX_CHUNK_SIZE (checksum/chunkLimit.ts fills it in).
  CHECKSUM_CHUNK_TOO_LARGE: {
    status_code: 413,
    body: 'a request with Upload-Checksum may carry at most {max} bytes; send smaller chunks\n',
  },
  // The concatenation extension: Upload-Concat on a creation.
  INVALID_UPLOAD_CONCAT: {
    status_code: 400,
    body: 'Upload-Concat must be "partial" or "final;" followed by the URLs of 1 to 1000 partial uploads\n',
  },
  CONCAT_FINAL_WITH_LENGTH: {
    status_code: 400,
    body: "a final upload must not carry Upload-Length or Upload-Defer-Length: its length is its partial uploads'\n",
  },
  CONCAT_PARTIAL_UNKNOWN: {
    status_code: 400,
    body: 'Upload-Concat names an upload that does not exist (or is not yours)\n',
  },
  CONCAT_NOT_PARTIAL: {
    status_code: 400,
    body: 'Upload-Concat names an upload that was not created with Upload-Concat: partial\n',
  },
  CONCAT_PARTIAL_UNFINISHED: {
    status_code: 400,
    body: 'Upload-Concat names a partial upload that is not finished; finish it first\n',
  },
  CONCAT_FINAL_PATCH: {
    status_code: 403,
    body: 'a final upload is made of its partial uploads and takes no PATCH\n',
  },
  CONCAT_FINAL_WITH_BODY: {
    status_code: 403,
    body: 'a final upload is made of its partial uploads: its creation carries no body\n',
  },
  // Retryable: the client is told when to come back (retryAfterOf).
  UPLOAD_LOCKED: {
    status_code: 423,
    body: 'upload is locked by another request, retry later\n',
  },
  STORAGE_UNAVAILABLE: { status_code: 503, body: 'storage unavailable, retry later\n' },
  REDIS_UNAVAILABLE: { status_code: 503, body: 'redis unavailable, retry later\n' },
  // The holder's Redis connection closed or its lease ran out: another request may write now.
  LOCK_LOST: { status_code: 503, body: "the upload's lock was lost while writing, retry later\n" },
  HOOKS_UNAVAILABLE: { status_code: 503, body: 'hook receiver unavailable, retry later\n' },
  INTERNAL_ERROR: { status_code: 500, body: 'internal error\n' },
  // Who may do what.
  UNAUTHENTICATED: { status_code: 401, body: 'a valid Bearer token is required\n' },
  METRICS_TOKEN_REQUIRED: { status_code: 401, body: 'the metrics token is required\n' },
  KEYS_UNAVAILABLE: { status_code: 503, body: 'token keys unavailable, retry later\n' },
  LINK_REFUSED: { status_code: 403, body: 'the download link is invalid or has expired\n' },
  RATE_LIMITED: { status_code: 429, body: 'too many uploads created, retry later\n' },
  // Open uploads (server/openUploads.ts): bodies being received, per identity and in total.
  TOO_MANY_OPEN_UPLOADS: {
    status_code: 429,
    body: 'too many uploads in progress from this client, retry later\n',
  },
  SERVER_UPLOADS_FULL: {
    status_code: 503,
    body: 'the server is receiving as many uploads as it can, retry later\n',
  },
  INVALID_LINK_REQUEST: {
    status_code: 400,
    body: 'expiresIn must be a whole number of seconds from 1 to 604800\n',
  },
  UPLOAD_NOT_FINISHED: { status_code: 409, body: 'the upload is not finished\n' },
  // The JSON bodies of POST /files/:id/links and POST /files/:id/proof.
  INVALID_JSON_BODY: {
    status_code: 400,
    body: 'the request body must be a JSON object\n',
  },
  JSON_BODY_TOO_LARGE: { status_code: 413, body: 'the request body must be at most 1 KB\n' },
  // Proofs of ownership for a claimed hash (dedupe).
  INVALID_PROOF_REQUEST: {
    status_code: 400,
    body: 'the proof must be {"answer": "<64 hex characters>"}\n',
  },
  NO_CHALLENGE: { status_code: 409, body: 'this upload has no open dedupe challenge\n' },
  PROOF_REFUSED: {
    status_code: 403,
    body: 'the proof does not match: upload the bytes instead\n',
  },
  // Downloads and the other routes.
  NOT_FOUND: { status_code: 404, body: 'not found\n' },
  METHOD_NOT_ALLOWED: { status_code: 405, body: 'method not allowed\n' },
  MISDIRECTED_REQUEST: {
    status_code: 421,
    body: 'this listener answers requests for a loopback host name only\n',
  },
  PRECONDITION_FAILED: { status_code: 412, body: 'precondition failed\n' },
  RANGE_NOT_SATISFIABLE: { status_code: 416, body: 'range not satisfiable\n' },
  PAGE_BUILD_FAILED: {
    status_code: 500,
    body: 'The upload page could not be built; the server log says why. Uploads over /files/ still work.\n',
  },
} as const satisfies Record<string, ErrorEntry>;

/** Seconds a client should wait before retrying a busy (423) or unavailable (503) upload. */
export function retryAfterOf(status: number): number | undefined {
  if (status === 503) return 5;
  if (status === 423) return 1;
  return undefined;
}

/** The `Retry-After` header an answer with this status carries, if any. */
export function retryHeaders(status: number): Record<string, string> {
  const seconds = retryAfterOf(status);
  return seconds === undefined ? {} : { 'Retry-After': String(seconds) };
}

/** The JSON body of an error: `{"error": "<message>"}`. */
export function jsonError(entry: ErrorEntry): { error: string } {
  return { error: entry.body.trimEnd() };
}

/** The entry for an outage of a backing service. */
export function unavailableEntry(service: 'storage' | 'redis' | 'hooks'): ErrorEntry {
  if (service === 'hooks') return ERRORS.HOOKS_UNAVAILABLE;
  return service === 'storage' ? ERRORS.STORAGE_UNAVAILABLE : ERRORS.REDIS_UNAVAILABLE;
}

/** The 503 entry for an error that means a backing service is away; undefined for any other. */
export function outageOf(error: unknown): ErrorEntry | undefined {
  if (error === ERRORS.STORAGE_UNAVAILABLE) return ERRORS.STORAGE_UNAVAILABLE;
  if (error === ERRORS.REDIS_UNAVAILABLE) return ERRORS.REDIS_UNAVAILABLE;
  return error instanceof ServiceUnavailable ? unavailableEntry(error.service) : undefined;
}

/** The part of an HTTP response (Express's) that an error is sent through. */
type ErrorResponse = {
  status(code: number): ErrorResponse;
  set(headers: Record<string, string>): ErrorResponse;
  json(body: unknown): unknown;
};

/** Sends an entry as `{"error": …}` with its Retry-After, if any; `headers` go on top. */
export function sendJsonError(
  res: ErrorResponse,
  entry: ErrorEntry,
  headers: Record<string, string> = {},
): void {
  res
    .status(entry.status_code)
    .set({ ...retryHeaders(entry.status_code), ...headers })
    .json(jsonError(entry));
}

/** The part of an HTTP response (Express's) that a tus error is sent through. */
type TusErrorResponse = {
  status(code: number): TusErrorResponse;
  set(headers: Record<string, string>): TusErrorResponse;
  send(body: string): unknown;
};

/** Sends an entry the way tus answers errors: its text, with Tus-Resumable and any Retry-After. */
export function sendTusError(
  res: TusErrorResponse,
  entry: ErrorEntry,
  headers: Record<string, string> = {},
): void {
  res
    .status(entry.status_code)
    .set({
      ...retryHeaders(entry.status_code),
      ...headers,
      'Tus-Resumable': TUS_RESUMABLE,
      'Content-Type': 'text/plain; charset=utf-8',
    })
    .send(entry.body);
}
