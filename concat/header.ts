import { ERRORS, type ErrorEntry } from '../errors/catalogue.ts';
import { type ConcatRequest, concatOf } from '../request/metadata.ts';
import { UPLOAD_ID } from '../storage/uploadId.ts';

/** A final upload names at most this many partials (S3 allows 10,000 parts for the result). */
export const MAX_PARTIALS = 1000;

/** The upload id at the end of a partial's URL: absolute (as tus-js-client sends it) or a path. */
function idOfUrl(url: string): string | undefined {
  const path = url.replace(/[?#].*$/, '');
  return /(?:^|\/)files\/([^/]+)$/.exec(path)?.[1];
}

/** Whether an Upload-Concat header asks for a final upload (well formed or not). */
export function asksForFinal(value: string | undefined): boolean {
  return value?.trim().startsWith('final;') ?? false;
}

/**
 * Parses `Upload-Concat: partial` or `Upload-Concat: final;<url> <url> …` (tus concatenation).
 * A URL that names no upload of this server's id format names none that exists.
 */
export function parseUploadConcat(value: string): ConcatRequest | ErrorEntry {
  const trimmed = value.trim();
  if (trimmed === 'partial') return { kind: 'partial' };
  if (!asksForFinal(trimmed)) return ERRORS.INVALID_UPLOAD_CONCAT;
  const urls = trimmed.slice('final;'.length).split(/\s+/).filter(Boolean);
  if (urls.length === 0 || urls.length > MAX_PARTIALS) return ERRORS.INVALID_UPLOAD_CONCAT;
  const ids: string[] = [];
  for (const url of urls) {
    const id = idOfUrl(url);
    if (id === undefined) return ERRORS.INVALID_UPLOAD_CONCAT;
    if (!UPLOAD_ID.test(id)) return ERRORS.CONCAT_PARTIAL_UNKNOWN;
    ids.push(id);
  }
  // The same partial upload MAY be present multiple times in the Upload-Concat header.
  return { kind: 'final', ids };
}

/**
 * The Upload-Concat a HEAD answers with (tus: "the Server MUST include the Upload-Concat
 * header" for partial and final uploads), the partials named by URL.
 */
export function uploadConcatHeader(
  metadata: Record<string, string | null> | undefined,
  urlOf: (id: string) => string,
): string | undefined {
  const concat = concatOf(metadata);
  if (!concat) return undefined;
  return concat.kind === 'partial' ? 'partial' : `final;${concat.ids.map(urlOf).join(' ')}`;
}
