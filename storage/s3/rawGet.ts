import type { IncomingHttpHeaders } from 'node:http';
import net from 'node:net';
import { Readable } from 'node:stream';

/** What a read asks of the socket: up to this much lands in one buffer, handed on as it is. */
const READ_SIZE = 1024 * 1024;
/** A read shorter than this is copied out, and its large buffer serves the next read. */
const COPY_BELOW = READ_SIZE / 8;
/** A response head longer than this is no S3 answer. */
const MAX_HEAD = 64 * 1024;

export type RawAnswer = {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body: exactly Content-Length bytes, or an error if the connection ends before. */
  body: Readable;
};

type RawRequest = {
  hostname: string;
  port: number;
  path: string;
  /** Signed headers, `host` among them. */
  headers: Record<string, string>;
  signal?: AbortSignal;
  /** How long the head of the answer may take. */
  answerTimeoutMs: number;
};

/**
 * A GET over a plain socket, for object bodies. Node's http client reads its socket in 64 KiB
 * pieces and passes each through its parser and two streams; measured on a 512 MiB download
 * (bench `flags`), that floor alone cost 1.46 CPU-s per GiB, against 0.68 for a socket whose reads
 * land in 1 MiB buffers (net's `onread`) handed to the response as they are, tusd's figure. An
 * S3 GET answers with a Content-Length (RFC 9112 §6.3: the body is that many octets), so the head
 * is all there is to parse. One connection per request (`Connection: close`): bodies are large,
 * and nothing is left on a socket that could be read by the next request.
 */
export function rawGet(request: RawRequest): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    let spare: Buffer | undefined;
    let head: Buffer | undefined = Buffer.alloc(0);
    let body: Readable | undefined;
    let expected = 0;
    let received = 0;
    const fail = (error: Error) => {
      socket.destroy();
      if (body) body.destroy(error);
      else reject(error);
    };
    const socket = net.connect({
      host: request.hostname,
      port: request.port,
      onread: {
        buffer: () => {
          const buffer = spare ?? Buffer.allocUnsafe(READ_SIZE);
          spare = undefined;
          return buffer;
        },
        callback: (length, given) => {
          // One of the buffers above: a Buffer, whatever the type says.
          const buffer = given as Buffer;
          let chunk = buffer.subarray(0, length);
          if (head) {
            head = Buffer.concat([head, chunk]);
            spare = buffer;
            const end = head.indexOf('\r\n\r\n');
            if (end < 0) {
              if (head.length > MAX_HEAD) fail(new Error('S3 sent an answer head of over 64 KiB'));
              return true;
            }
            const answer = parseHead(head.subarray(0, end));
            if (!answer) {
              fail(new Error('S3 sent an answer that is not HTTP/1.1'));
              return false;
            }
            chunk = head.subarray(end + 4);
            head = undefined;
            socket.setTimeout(0);
            expected = Number(answer.headers['content-length'] ?? Number.NaN);
            if (!Number.isSafeInteger(expected)) {
              fail(new Error('S3 answered without a Content-Length'));
              return false;
            }
            body = new Readable({
              highWaterMark: READ_SIZE,
              read: () => socket.resume(),
              destroy: (error, done) => {
                socket.destroy();
                done(error);
              },
            });
            resolve({ ...answer, body });
          } else if (length < COPY_BELOW) {
            chunk = Buffer.from(chunk);
            spare = buffer;
          }
          if (!body) return true;
          received += chunk.length;
          if (received > expected) {
            fail(new Error('S3 sent more than its Content-Length'));
            return false;
          }
          if (chunk.length > 0 && !body.push(chunk)) socket.pause();
          if (received === expected) {
            body.push(null);
            socket.destroy();
          }
          return true;
        },
      },
    });
    socket.setTimeout(request.answerTimeoutMs, () => {
      fail(Object.assign(new Error('S3 sent no answer'), { code: 'ETIMEDOUT' }));
    });
    socket.once('error', fail);
    socket.once('end', () => {
      if (received < expected || !body) {
        fail(Object.assign(new Error('S3 closed the connection early'), { code: 'ECONNRESET' }));
      }
    });
    const onAbort = () => fail(Object.assign(new Error('aborted'), { name: 'AbortError' }));
    if (request.signal?.aborted) return onAbort();
    request.signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('close', () => request.signal?.removeEventListener('abort', onAbort));
    const lines = Object.entries(request.headers).map(([name, value]) => `${name}: ${value}\r\n`);
    socket.write(`GET ${request.path} HTTP/1.1\r\n${lines.join('')}connection: close\r\n\r\n`);
  });
}

/** The status and headers of an answer's head (its lines without the blank one). */
function parseHead(head: Buffer): { status: number; headers: IncomingHttpHeaders } | undefined {
  const [statusLine = '', ...lines] = head.toString('latin1').split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1];
  if (!status) return undefined;
  const headers: IncomingHttpHeaders = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(status), headers };
}
