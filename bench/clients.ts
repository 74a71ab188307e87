import { Agent, request } from 'node:http';
import type { Readable } from 'node:stream';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload as S3Upload } from '@aws-sdk/lib-storage';
import { Upload as TusUpload } from 'tus-js-client';

/** Milliseconds since an arbitrary origin, monotonic. */
export const now = (): number => performance.now();

export type Timed<T> = T & { ms: number };

/** One upload with tus-js-client; no retries, so every failure is counted, not hidden. */
export function tusUpload(
  endpoint: string,
  data: Buffer,
  chunkSize: number,
  metadata: Record<string, string> = {},
  headers: Record<string, string> = {},
): Promise<Timed<{ url: string }>> {
  return new Promise((resolve, reject) => {
    const started = now();
    const upload = new TusUpload(data, {
      endpoint,
      chunkSize,
      headers,
      retryDelays: null,
      metadata: { filename: 'bench.bin', filetype: 'application/octet-stream', ...metadata },
      onError: reject,
      onSuccess: () => resolve({ url: upload.url ?? '', ms: now() - started }),
    });
    upload.start();
  });
}

/** Direct multipart upload with lib-storage: the bytes go to S3 with no server in between. */
export async function directUpload(
  client: S3Client,
  bucket: string,
  key: string,
  data: Buffer,
  partSize: number,
  queueSize: number,
): Promise<Timed<object>> {
  const started = now();
  await new S3Upload({
    client,
    params: { Bucket: bucket, Key: key, Body: data },
    partSize,
    queueSize,
  }).done();
  return { ms: now() - started };
}

/** Reads a body to its end, counting bytes and keeping none. */
async function drain(body: Readable): Promise<number> {
  let bytes = 0;
  for await (const chunk of body) bytes += (chunk as Buffer).length;
  return bytes;
}

export type Fetched = Timed<{ status: number; bytes: number; headers: Record<string, string> }>;

/** One HTTP request on a keep-alive agent; the response body is drained, not kept. */
export function httpRequest(
  url: string,
  agent: Agent,
  init: { method?: string; headers?: Record<string, string> } = {},
): Promise<Fetched> {
  return new Promise((resolve, reject) => {
    const started = now();
    const req = request(url, { method: init.method ?? 'GET', headers: init.headers, agent });
    req.once('error', reject);
    req.once('response', (res) => {
      drain(res).then((bytes) => {
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(res.headers))
          if (typeof value === 'string') headers[name] = value;
        resolve({ status: res.statusCode ?? 0, bytes, headers, ms: now() - started });
      }, reject);
    });
    req.end();
  });
}

export function keepAliveAgent(maxSockets: number): Agent {
  return new Agent({ keepAlive: true, maxSockets });
}

/** GetObject, whole or one range, streamed to the end and discarded. */
export async function directGet(
  client: S3Client,
  bucket: string,
  key: string,
  range?: { start: number; end: number },
): Promise<Timed<{ bytes: number }>> {
  const started = now();
  const object = await client.send(
    new GetObjectCommand({
      Bucket: bucket,
      Key: key,
      Range: range ? `bytes=${range.start}-${range.end}` : undefined,
    }),
  );
  const bytes = await drain(object.Body as Readable);
  return { bytes, ms: now() - started };
}

/** Runs `count` tasks with at most `limit` in flight; resolves with each task's result in order. */
export async function withConcurrency<T>(
  count: number,
  limit: number,
  task: (index: number) => Promise<T>,
): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const index = next++;
      results[index] = await task(index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker));
  return results;
}
