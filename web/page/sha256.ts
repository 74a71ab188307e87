import { createSHA256 } from 'hash-wasm';

/**
 * sha256 (hex) of a Blob, read as a stream so a large file never sits in memory whole. Web
 * Crypto's digest() takes only a complete buffer; hash-wasm's hasher takes it piece by piece.
 */
export async function sha256OfBlob(
  blob: Blob,
  onProgress: (bytesHashed: number) => void,
  signal?: AbortSignal,
): Promise<string> {
  const hasher = await createSHA256();
  hasher.init();
  const reader = blob.stream().getReader();
  let bytesHashed = 0;
  try {
    for (;;) {
      signal?.throwIfAborted();
      const { done, value } = await reader.read();
      if (done) break;
      hasher.update(value);
      bytesHashed += value.byteLength;
      onProgress(bytesHashed);
    }
  } catch (error) {
    // Stops reading the file from disk.
    await reader.cancel().catch(() => undefined);
    throw error;
  }
  return hasher.digest('hex');
}
