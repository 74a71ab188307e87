import parseRange from 'range-parser';
import type { ByteRange } from '../storage/types.ts';

/**
 * More ranges than this (after coalescing) are answered with the whole representation: one
 * storage read instead of one per range.
 */
export const MAX_RANGES = 20;

/** What a Range header asks of a representation of a given size. */
export type RangeRequest =
  | { kind: 'whole' }
  | { kind: 'ranges'; ranges: ByteRange[] }
  | { kind: 'unsatisfiable' };

/**
 * range-parser 1.x drops a suffix-range longer than the representation (2.x, which needs
 * Node 22, no longer does). If the selected representation is shorter than the specified
 * suffix-length, the entire representation is used.
 */
function clampSuffixRanges(header: string, size: number): string {
  const equals = header.indexOf('=');
  if (equals === -1) return header;
  const specs = header
    .slice(equals + 1)
    .split(',')
    .map((spec) => {
      const suffixLength = /^\s*-(\d+)\s*$/.exec(spec)?.[1];
      return suffixLength !== undefined && Number(suffixLength) > size ? '0-' : spec;
    });
  return `${header.slice(0, equals + 1)}${specs.join(',')}`;
}

/** Reads a Range header (RFC 9110 §14.2) against a representation of `size` bytes. */
export function parseRangeHeader(header: string | undefined, size: number): RangeRequest {
  if (header === undefined) return { kind: 'whole' };
  // A zero-length representation has no byte to address, and no valid Content-Range; a server
  // MAY ignore the Range header field.
  if (size === 0) return { kind: 'whole' };
  // When multiple ranges are requested, a server MAY coalesce any of the ranges that overlap.
  const parsed = parseRange(size, clampSuffixRanges(header, size), { combine: true });
  // An origin server MUST ignore a Range header field that contains a range unit it does not
  // understand. A proxy MAY discard a Range header field that contains a range unit it does
  // not understand. A server MAY ignore a Range with an invalid ranges-specifier.
  // Range unit names are case-insensitive.
  const unit = header.slice(0, header.indexOf('=')).toLowerCase();
  if (parsed === -2 || unit !== 'bytes') return { kind: 'whole' };
  // If all of the preconditions are true, the server supports the Range header field for the
  // target resource, and the specified range(s) are invalid or unsatisfiable, the server
  // SHOULD send a 416 (Range Not Satisfiable) response.
  if (parsed === -1) return { kind: 'unsatisfiable' };
  // A server that supports range requests MAY ignore or reject a Range header field that
  // contains ... a set of many small ranges ..., since these are indications of either a
  // broken client or a deliberate denial-of-service attack.
  if (parsed.length > MAX_RANGES) return { kind: 'whole' };
  return { kind: 'ranges', ranges: parsed.map(({ start, end }) => ({ start, end })) };
}

/** The Content-Range value of a part: `bytes first-last/complete-length` (RFC 9110 §14.4). */
export function contentRange(range: ByteRange, size: number): string {
  return `bytes ${range.start}-${range.end}/${size}`;
}

/** The Content-Range of a 416: `bytes *` `/complete-length` (unsatisfied-range). */
export function unsatisfiedRange(size: number): string {
  return `bytes */${size}`;
}

export function rangeLength(range: ByteRange): number {
  return range.end - range.start + 1;
}
