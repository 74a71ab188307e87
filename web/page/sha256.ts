import { createHMAC, createSHA256, type IHasher } from 'hash-wasm';

/**
 * Feeds a Blob to a hasher as a stream, so a large file never sits in memory whole. Web Crypto's
 * digest() and sign() take only a complete buffer; hash-wasm's hashers take it piece by piece.
 */
async function digestOfBlob(
  hasher: IHasher,
  blob: Blob,
  onProgress: (bytesHashed: number) => void,
  signal?: AbortSignal,
): Promise<string> {
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

/** sha256 (hex) of a Blob, streamed. */
export async function sha256OfBlob(
  blob: Blob,
  onProgress: (bytesHashed: number) => void,
  signal?: AbortSignal,
): Promise<string> {
  return digestOfBlob(await createSHA256(), blob, onProgress, signal);
}

/** HMAC-SHA256 (hex) keyed with `key` over a whole Blob, streamed. */
export async function hmacSha256OfBlob(
  key: Uint8Array,
  blob: Blob,
  onProgress: (bytesHashed: number) => void,
  signal?: AbortSignal,
): Promise<string> {
  return digestOfBlob(await createHMAC(createSHA256(), key), blob, onProgress, signal);
}
