import { createHash } from 'node:crypto';
import { Upload, type UploadOptions } from 'tus-js-client';

export const TUS = { 'Tus-Resumable': '1.0.0' };

/** Encodes Upload-Metadata the way the tus spec says: `key base64(value)` pairs, comma-separated. */
export function encodeMetadata(metadata: Record<string, string>): string {
  return Object.entries(metadata)
    .map(([key, value]) => `${key} ${Buffer.from(value, 'utf8').toString('base64')}`)
    .join(',');
}

/** Creates an upload with a raw POST and returns its URL. */
export async function createUpload(
  base: string,
  length: number | 'deferred',
  headers: Record<string, string> = {},
): Promise<string> {
  const res = await fetch(`${base}/files/`, {
    method: 'POST',
    headers: {
      ...TUS,
      ...(length === 'deferred'
        ? { 'Upload-Defer-Length': '1' }
        : { 'Upload-Length': String(length) }),
      ...headers,
    },
  });
  if (res.status !== 201) throw new Error(`POST answered ${res.status}: ${await res.text()}`);
  const location = res.headers.get('location');
  if (!location) throw new Error('POST answered without Location');
  return new URL(location, base).toString();
}

export async function patch(
  url: string,
  offset: number,
  body: Buffer,
  headers: Record<string, string> = {},
) {
  return fetch(url, {
    method: 'PATCH',
    headers: {
      ...TUS,
      'Upload-Offset': String(offset),
      'Content-Type': 'application/offset+octet-stream',
      ...headers,
    },
    body: new Uint8Array(body),
  });
}

export async function head(url: string) {
  return fetch(url, { method: 'HEAD', headers: TUS });
}

/** Uploads with the stock tus-js-client and resolves with the upload URL. */
export function tusClientUpload(
  endpoint: string,
  data: Buffer,
  options: Partial<UploadOptions> = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const upload = new Upload(data, {
      endpoint: `${endpoint}/files/`,
      retryDelays: [],
      ...options,
      onError: reject,
      onSuccess: () => resolve(upload.url ?? ''),
    });
    upload.start();
  });
}

export function idOf(url: string): string {
  return new URL(url).pathname.split('/').pop() ?? '';
}

/** sha256 of what a plain GET of the upload URL returns; throws unless it answers 200. */
export async function downloadedSha256(url: string): Promise<string> {
  const res = await fetch(url);
  if (res.status !== 200) throw new Error(`GET ${url} answered ${res.status}: ${await res.text()}`);
  return createHash('sha256')
    .update(Buffer.from(await res.arrayBuffer()))
    .digest('hex');
}

/** Terminates an upload with the stock tus-js-client. */
export function tusClientTerminate(url: string): Promise<void> {
  return Upload.terminate(url, { retryDelays: [] });
}
