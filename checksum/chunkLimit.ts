import { ERRORS, type ErrorEntry } from '../errors/catalogue.ts';

/** The 413 for a checksummed body over CHECKSUM_MAX_CHUNK_SIZE, naming the bound. */
export function chunkTooLarge(maxChunkSize: number): ErrorEntry {
  const entry = ERRORS.CHECKSUM_CHUNK_TOO_LARGE;
  return {
    status_code: entry.status_code,
    body: entry.body.replace('{max}', String(maxChunkSize)),
  };
}

/**
 * Whether a checksummed body of `bytes` (its Content-Length, or what has been read of it so far)
 * is refused before more of it is spooled: over what the upload may still take (`uploadLimit`),
 * or over what one such request may carry (`maxChunkSize`). Undefined when it may go on.
 */
export function spoolRefusal(
  bytes: number,
  uploadLimit: number,
  maxChunkSize: number,
): ErrorEntry | undefined {
  if (bytes > uploadLimit) return ERRORS.ERR_SIZE_EXCEEDED;
  if (bytes > maxChunkSize) return chunkTooLarge(maxChunkSize);
  return undefined;
}
