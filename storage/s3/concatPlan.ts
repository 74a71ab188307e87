import type { ContentSource } from '../types.ts';

/** A byte range of one stored object: `start` inclusive, `end` exclusive. */
type SourceRange = { key: string; start: number; end: number };

/**
 * One part of the concatenated object: copied inside S3 from one source range (UploadPartCopy,
 * no bytes through the server), or gathered from several small ranges and sent (UploadPart).
 */
export type PartOrder =
  | { kind: 'copy'; range: SourceRange }
  | { kind: 'gather'; ranges: SourceRange[]; length: number };

/** S3 copies at most 5 GiB into one part. */
const MAX_COPY_BYTES = 5 * 1024 ** 3;

/**
 * The parts of an object made of `sources` in order. S3 requires every part but the last to be
 * at least `minPart` bytes: a source that long (or the last one) is copied inside S3; shorter
 * sources, and what must fill a gathered part up to `minPart`, pass through the server.
 */
export function planConcatenation(
  sources: ContentSource[],
  minPart: number,
  maxCopy = MAX_COPY_BYTES,
): PartOrder[] {
  const parts: PartOrder[] = [];
  let gathered: SourceRange[] = [];
  let gatheredBytes = 0;
  const flush = () => {
    if (gatheredBytes > 0) parts.push({ kind: 'gather', ranges: gathered, length: gatheredBytes });
    gathered = [];
    gatheredBytes = 0;
  };
  const lastWithBytes = sources.findLastIndex((source) => source.size > 0);
  sources.forEach(({ key, size }, index) => {
    let position = 0;
    while (position < size) {
      const remaining = size - position;
      if (gatheredBytes === 0 && (remaining >= minPart || index === lastWithBytes)) {
        // What a copy leaves of this source is copied next, or gathered when it is short.
        const length = Math.min(remaining, maxCopy);
        parts.push({ kind: 'copy', range: { key, start: position, end: position + length } });
        position += length;
        continue;
      }
      const length = Math.min(minPart - gatheredBytes, remaining);
      gathered.push({ key, start: position, end: position + length });
      gatheredBytes += length;
      position += length;
      if (gatheredBytes >= minPart) flush();
    }
  });
  flush();
  return parts;
}
