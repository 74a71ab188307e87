import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { afterEach, describe, expect, test } from '@jest/globals';
import { rawGet } from '../../storage/s3/rawGet.ts';

/**
 * rawGet against a loopback socket that answers as scripted: what S3 sends on the wire, down to
 * the pieces the bytes arrive in, and what it does when it goes away mid-body.
 */
let servers: net.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.map((server) => new Promise((done) => server.close(done))));
  servers = [];
});

/** A server that answers each connection with `answer` (written piece by piece). */
async function answering(
  answer: (socket: net.Socket, request: Promise<string>) => void,
): Promise<number> {
  const server = net.createServer((socket) => {
    const request = new Promise<string>((resolve) => {
      let text = '';
      socket.on('data', (chunk) => {
        text += chunk.toString('latin1');
        if (text.includes('\r\n\r\n')) resolve(text);
      });
    });
    answer(socket, request);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

function get(port: number, signal?: AbortSignal) {
  return rawGet({
    hostname: '127.0.0.1',
    port,
    path: '/bucket/key',
    headers: { host: `127.0.0.1:${port}`, range: 'bytes=0-' },
    signal,
    answerTimeoutMs: 5000,
  });
}

async function bytesOf(body: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('rawGet', () => {
  test('sends the signed head and reads exactly Content-Length bytes, however they are cut', async () => {
    const content = randomBytes(3 * 1024 * 1024 + 17);
    let seen = '';
    const port = await answering(async (socket, request) => {
      seen = await request;
      const head = `HTTP/1.1 206 Partial Content\r\nContent-Length: ${content.length}\r\nETag: "x"\r\n\r\n`;
      // The head in two pieces, the body in uneven ones.
      socket.write(head.slice(0, 10));
      socket.write(head.slice(10) + content.subarray(0, 5).toString('latin1'), 'latin1');
      socket.write(content.subarray(5, 70_000));
      socket.end(content.subarray(70_000));
    });
    const answer = await get(port);
    expect(answer.status).toBe(206);
    expect(answer.headers.etag).toBe('"x"');
    expect((await bytesOf(answer.body)).equals(content)).toBe(true);
    expect(seen).toMatch(/^GET \/bucket\/key HTTP\/1\.1\r\n/);
    expect(seen).toContain('range: bytes=0-\r\n');
    expect(seen).toContain('connection: close\r\n');
  });

  test('an empty body ends at once', async () => {
    const port = await answering(async (socket, request) => {
      await request;
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
    });
    const answer = await get(port);
    expect((await bytesOf(answer.body)).length).toBe(0);
  });

  test('a connection that ends before Content-Length fails the body: never a short success', async () => {
    const port = await answering(async (socket, request) => {
      await request;
      socket.end('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly this');
    });
    const answer = await get(port);
    await expect(bytesOf(answer.body)).rejects.toThrow(/closed the connection early/);
  });

  test('an answer without Content-Length is refused', async () => {
    const port = await answering(async (socket, request) => {
      await request;
      socket.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
    });
    await expect(get(port)).rejects.toThrow(/without a Content-Length/);
  });

  test('an error status comes back with its headers, for the caller to map', async () => {
    const port = await answering(async (socket, request) => {
      await request;
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nNoSuchKey');
    });
    const answer = await get(port);
    expect(answer.status).toBe(404);
    expect((await bytesOf(answer.body)).toString()).toBe('NoSuchKey');
  });

  test('no listener is unreachable storage (ECONNREFUSED), as for Node http', async () => {
    const port = await answering(() => undefined);
    await new Promise((done) => servers.pop()?.close(done));
    await expect(get(port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  test('an abort mid-body ends the body and closes the connection to S3', async () => {
    let closed!: () => void;
    const serverSawClose = new Promise<void>((resolve) => {
      closed = resolve;
    });
    const port = await answering(async (socket, request) => {
      await request;
      socket.on('close', closed);
      socket.on('error', () => undefined);
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n');
      socket.write(randomBytes(1000));
    });
    const controller = new AbortController();
    const answer = await get(port, controller.signal);
    const first = await new Promise<Buffer>((resolve) => answer.body.once('data', resolve));
    expect(first.length).toBeGreaterThan(0);
    const failed = new Promise<Error>((resolve) => answer.body.once('error', resolve));
    controller.abort();
    expect((await failed).name).toBe('AbortError');
    await serverSawClose;
  });
});
