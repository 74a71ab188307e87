import { Agent, request } from 'node:http';
import type { Readable } from 'node:stream';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload as S3Upload } from '@aws-sdk/lib-storage';
import { Upload as TusUpload } from 'tus-js-client';

/** Milliseconds since an arbitrary origin, monotonic. */
export const now = (): number => performance.now();

export type Timed<T> = T & { ms: number };

export type TusExtras = {
  metadata?: Record<string, string>;
  headers?: Record<string, string>;
  /**
   * Above 1: tus concatenation, that many `Upload-Concat: partial` uploads of one slice each, then
   * a final POST joining them (a Buffer is a source tus-js-client can slice in Node).
   */
  parallelUploads?: number;
};

/** One upload with tus-js-client; no retries, so every failure is counted, not hidden. */
export function tusUpload(
  endpoint: string,
  data: Buffer,
  chunkSize: number,
  { metadata = {}, headers = {}, parallelUploads = 1 }: TusExtras = {},
): Promise<Timed<{ url: string }>> {
  return new Promise((resolve, reject) => {
    const started = now();
    const upload = new TusUpload(data, {
      endpoint,
      chunkSize,
      headers,
      parallelUploads,
      retryDelays: null,
      metadata: { filename: 'bench.bin', filetype: 'application/octet-stream', ...metadata },
      onError: (error) => {
        // One partial upload failing leaves the others sending: stop them before the next run.
        void upload.abort();
        reject(error);
      },
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

/**
 * GETs a body and compares it with `expected` as it streams in, keeping none of it: the offset
 * of the first byte that differs (or where the body ends early or runs long), undefined if equal.
 */
export function httpFirstDifference(
  url: string,
  expected: Buffer,
): Promise<{ status: number; difference?: number }> {
  return new Promise((resolve, reject) => {
    const req = request(url);
    req.once('error', reject);
    req.once('response', async (res) => {
      try {
        let offset = 0;
        let difference: number | undefined;
        for await (const chunk of res as AsyncIterable<Buffer>) {
          if (difference === undefined) {
            const want = expected.subarray(offset, offset + chunk.length);
            if (!want.equals(chunk)) {
              let i = 0;
              while (i < want.length && want[i] === chunk[i]) i += 1;
              difference = offset + i;
            }
          }
          offset += chunk.length;
        }
        if (difference === undefined && offset !== expected.length)
          difference = Math.min(offset, expected.length);
        resolve({ status: res.statusCode ?? 0, difference });
      } catch (error) {
        reject(error);
      }
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
