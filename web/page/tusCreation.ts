const TUS_VERSION = '1.0.0';
/** A server that does not answer by then is left to Tus, which retries with back-off. */
const CREATION_TIMEOUT_MS = 30_000;

/**
 * An upload the server created, how much of it it already holds, and the dedupe challenge it
 * may have sent for the announced hash.
 */
export type CreatedUpload = { url: string; offset: number | undefined; challenge: string | null };

function base64OfUtf8(value: string): string {
  let binary = '';
  for (const byte of new TextEncoder().encode(value)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** The Upload-Metadata header: comma-separated `key base64(value)` pairs (tus 1.0.0, Creation). */
function encodeUploadMetadata(metadata: Record<string, string>): string {
  return Object.entries(metadata)
    .map(([key, value]) => `${key} ${base64OfUtf8(value)}`)
    .join(',');
}

/**
 * The creation POST, sent by the page itself so it can read the answer: for content this user
 * already uploaded the server answers with Upload-Offset equal to the length; otherwise it may
 * send a challenge that proves the page holds the file.
 */
export async function createUpload(
  endpoint: string,
  size: number,
  metadata: Record<string, string>,
  headers: Record<string, string>,
): Promise<CreatedUpload> {
  const response = await fetch(endpoint, {
    method: 'POST',
    headers: {
      ...headers,
      'Tus-Resumable': TUS_VERSION,
      'Upload-Length': String(size),
      'Upload-Metadata': encodeUploadMetadata(metadata),
    },
    signal: AbortSignal.timeout(CREATION_TIMEOUT_MS),
  });
  // The Server MUST acknowledge a successful upload creation with the 201 Created status.
  if (response.status !== 201) throw new Error(`upload creation answered ${response.status}`);
  const location = response.headers.get('Location');
  if (!location) throw new Error('upload creation answered without Location');
  const offset = response.headers.get('Upload-Offset');
  return {
    url: new URL(location, endpoint).href,
    offset: offset === null ? undefined : Number(offset),
    challenge: response.headers.get('Upload-Dedupe-Challenge'),
  };
}
