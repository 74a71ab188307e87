import type { IncomingHttpHeaders } from 'node:http';
import fresh from 'fresh';

/** The validators a response carries (RFC 9110 §8.8), as their header values. */
export type Validators = { etag: string; lastModified: string };

/** The outcome of a request's preconditions, in the order of RFC 9110 §13.2.2. */
export type PreconditionOutcome = 'proceed' | 'not-modified' | 'failed';

const isWeak = (tag: string) => tag.startsWith('W/');

/** Two entity tags match strongly when neither is weak and they are identical (§8.8.3.2). */
function strongMatch(a: string, b: string): boolean {
  return !isWeak(a) && !isWeak(b) && a === b;
}

function entityTags(header: string): string[] {
  return header
    .split(',')
    .map((tag) => tag.trim())
    .filter(Boolean);
}

// HTTP-date = IMF-fixdate / obs-date (rfc850-date, asctime-date), RFC 9110 §5.6.7.
const HTTP_DATE = new RegExp(
  [
    '^[A-Z][a-z]{2}, \\d{2} [A-Z][a-z]{2} \\d{4} \\d{2}:\\d{2}:\\d{2} GMT$',
    '^[A-Z][a-z]+, \\d{2}-[A-Z][a-z]{2}-\\d{2} \\d{2}:\\d{2}:\\d{2} GMT$',
    '^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \\d]\\d \\d{2}:\\d{2}:\\d{2} \\d{4}$',
  ].join('|'),
);

/**
 * An HTTP-date to whole seconds, the precision Last-Modified carries; NaN when it is not an
 * HTTP-date (a recipient MUST ignore such a value, and Date.parse would read "1" as 2001).
 */
function seconds(httpDate: string): number {
  if (!HTTP_DATE.test(httpDate.trim())) return Number.NaN;
  return Math.floor(Date.parse(httpDate) / 1000);
}

/** Evaluates If-Match, If-Unmodified-Since, If-None-Match and If-Modified-Since for GET/HEAD. */
export function evaluatePreconditions(
  headers: IncomingHttpHeaders,
  validators: Validators,
): PreconditionOutcome {
  const ifMatch = headers['if-match'];
  const ifUnmodifiedSince = headers['if-unmodified-since'];
  // 1. When recipient is the origin server and If-Match is present, evaluate the If-Match
  // precondition: if false, respond 412 (Precondition Failed).
  if (ifMatch !== undefined) {
    // An origin server MUST use the strong comparison function when comparing entity-tags for
    // If-Match; if the field value is "*", the condition is true if the origin server has a
    // current representation for the target resource.
    const matches =
      ifMatch.trim() === '*' ||
      entityTags(ifMatch).some((tag) => strongMatch(tag, validators.etag));
    if (!matches) return 'failed';
  } else if (ifUnmodifiedSince !== undefined) {
    // 2. When If-Match is not present, and If-Unmodified-Since is present, evaluate it: if
    // false, respond 412. A recipient MUST ignore the If-Unmodified-Since header field if the
    // received field value is not a valid HTTP-date.
    const since = seconds(ifUnmodifiedSince);
    if (!Number.isNaN(since) && seconds(validators.lastModified) > since) return 'failed';
  }
  // 3./4. If-None-Match (weak comparison), else If-Modified-Since for GET and HEAD: if false
  // (the representation has not changed), respond 304 (Not Modified).
  if (fresh(headers, { etag: validators.etag, 'last-modified': validators.lastModified })) {
    return 'not-modified';
  }
  return 'proceed';
}

/**
 * Whether a Range may be honoured given the request's If-Range (RFC 9110 §13.1.5): true when
 * there is none, or when its validator matches the representation's.
 */
export function ifRangeHolds(header: string | undefined, validators: Validators): boolean {
  if (header === undefined) return true;
  const value = header.trim();
  // A valid entity-tag evaluates to true if it strongly matches the current entity tag.
  if (value.startsWith('"') || isWeak(value)) return strongMatch(value, validators.etag);
  // A valid HTTP-date evaluates to true if it exactly matches the Last-Modified field value
  // of the selected representation; otherwise the condition is false.
  const date = seconds(value);
  return !Number.isNaN(date) && date === seconds(validators.lastModified);
}
