import type { IncomingMessage } from 'node:http';
import { PassThrough } from 'node:stream';
import { describe, expect, test } from '@jest/globals';
import { bodyStreamOf } from '../../server/requests.ts';

/** A request body stand-in: the stream interface bodyStreamOf uses of an IncomingMessage. */
function body() {
  const stream = new PassThrough();
  return { stream, req: stream as unknown as IncomingMessage };
}

const bytes = (length: number, seed: number) =>
  Buffer.from(Array.from({ length }, (_, i) => (i * 7 + seed) % 256));

describe('bodyStreamOf: a request body as a web stream, chunk by chunk', () => {
  test('every chunk passes as it came, in order, without a copy', async () => {
    const { stream, req } = body();
    const web = bodyStreamOf(req);
    const parts = Array.from({ length: 25 }, (_, i) => bytes(100 + i, i));
    const reader = web.getReader();
    const got: Uint8Array[] = [];
    for (const part of parts) {
      stream.write(part);
      const { value } = await reader.read();
      if (value) got.push(value);
    }
    stream.end();
    expect((await reader.read()).done).toBe(true);
    expect(Buffer.concat(got).equals(Buffer.concat(parts))).toBe(true);
    // The very buffers that came: nothing was copied on the way.
    expect(got.every((chunk, i) => chunk.buffer === (parts[i] as Buffer).buffer)).toBe(true);
  });

  test('a client that goes away mid-body is an AbortError, after the chunks already read', async () => {
    const { stream, req } = body();
    const reader = bodyStreamOf(req).getReader();
    stream.write(bytes(300, 1));
    const first = await reader.read();
    expect(Buffer.from(first.value ?? []).equals(bytes(300, 1))).toBe(true);
    stream.destroy();
    await expect(reader.read()).rejects.toMatchObject({ name: 'AbortError' });
  });

  test('an empty body closes at once', async () => {
    const { stream, req } = body();
    const reader = bodyStreamOf(req).getReader();
    stream.end();
    expect((await reader.read()).done).toBe(true);
  });
});
