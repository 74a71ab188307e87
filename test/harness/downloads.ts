import { randomContent } from './stack.ts';
import { createUpload, encodeMetadata, patch } from './tus.ts';

/** A finished upload: its URL and the bytes it holds. */
export type FinishedUpload = { url: string; data: Buffer };

/** Uploads `size` random bytes with raw tus requests and the given metadata. */
export async function finishedUpload(
  base: string,
  size: number,
  metadata: Record<string, string> = {},
): Promise<FinishedUpload> {
  const data = randomContent(size);
  const headers = Object.keys(metadata).length
    ? { 'Upload-Metadata': encodeMetadata(metadata) }
    : undefined;
  const url = await createUpload(base, size, headers);
  if (size > 0) {
    const res = await patch(url, 0, data);
    if (res.status !== 204) throw new Error(`PATCH answered ${res.status}`);
  }
  return { url, data };
}
