import { Readable } from 'node:stream';
import type { ReadableStream } from 'node:stream/web';
import { Upload, type UploadOptions } from 'tus-js-client';
import { sha256OfStream } from './stack.ts';

export const TUS = { 'Tus-Resumable': '1.0.0' };

/** The headers of a PATCH that sends bytes from `offset`. */
export function patchHeaders(offset: number): Record<string, string> {
  return {
    ...TUS,
    'Upload-Offset': String(offset),
    'Content-Type': 'application/offset+octet-stream',
  };
}

/** Encodes Upload-Metadata the way the tus spec says: `key base64(value)` pairs, comma-separated. */
export function encodeMetadata(metadata: Record<string, string>): string {
  return Object.entries(metadata)
    .map(([key, value]) => `${key} ${Buffer.from(value, 'utf8').toString('base64')}`)
    .join(',');
}

/** A raw creation POST, answered however the server answers it. */
export function creationRequest(
  base: string,
  length: number | 'deferred',
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(`${base}/files/`, {
    method: 'POST',
    headers: {
      ...TUS,
      ...(length === 'deferred'
        ? { 'Upload-Defer-Length': '1' }
        : { 'Upload-Length': String(length) }),
      ...headers,
    },
  });
}

/** Creates an upload with a raw POST and returns its URL. */
export async function createUpload(
  base: string,
  length: number | 'deferred',
  headers: Record<string, string> = {},
): Promise<string> {
  const res = await creationRequest(base, length, headers);
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
    headers: { ...patchHeaders(offset), ...headers },
    body: new Uint8Array(body),
  });
}

export async function head(url: string, headers: Record<string, string> = {}) {
  return fetch(url, { method: 'HEAD', headers: { ...TUS, ...headers } });
}

/** The Upload-Offset a tus HEAD answers with; throws unless it answers 200 with one. */
export async function offsetOf(url: string): Promise<number> {
  const res = await head(url);
  const offset = res.headers.get('upload-offset');
  if (res.status !== 200 || offset === null) {
    throw new Error(`HEAD ${url} answered ${res.status} with Upload-Offset ${offset}`);
  }
  return Number(offset);
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

/** The same upload addressed through another server (another instance, or after a restart). */
export function uploadUrlOn(server: { url: string }, url: string): string {
  return `${server.url}/files/${idOf(url)}`;
}

/**
 * sha256 of what a plain GET of the upload URL returns, hashed as it streams in (the body is
 * never held whole); throws unless it answers 200.
 */
export async function downloadedSha256(
  url: string,
  headers: Record<string, string> = {},
): Promise<string> {
  const res = await fetch(url, { headers });
  if (res.status !== 200 || !res.body) {
    throw new Error(`GET ${url} answered ${res.status}: ${await res.text()}`);
  }
  return sha256OfStream(Readable.fromWeb(res.body as ReadableStream));
}

/** Terminates an upload with the stock tus-js-client. */
export function tusClientTerminate(url: string): Promise<void> {
  return Upload.terminate(url, { retryDelays: [] });
}
