const MIB = 1024 * 1024;

/** S3's smallest multipart part: a smaller chunk waits on the server as an incomplete tail. */
export const MIN_CHUNK_SIZE = 5 * MIB;
/** Bounds what one failed request costs to send again. */
export const MAX_CHUNK_SIZE = 64 * MIB;
/** Enough requests for smooth progress and cheap retries, few enough to keep overhead low. */
const CHUNKS_PER_FILE = 20;

/**
 * The PATCH size for a file of `size` bytes: size / 20 rounded up to whole MiB, kept within
 * 5–64 MiB; a file smaller than 5 MiB goes in one request.
 */
export function chunkSizeFor(size: number): number {
  if (size < MIN_CHUNK_SIZE) return Math.max(size, 1);
  const even = Math.ceil(size / CHUNKS_PER_FILE / MIB) * MIB;
  return Math.min(MAX_CHUNK_SIZE, Math.max(MIN_CHUNK_SIZE, even));
}
