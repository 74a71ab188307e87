import { type ClientRequest, request } from 'node:http';
import { allBytesRead } from './processProbe.ts';
import { waitFor } from './services.ts';
import { patchHeaders } from './tus.ts';

/**
 * A PATCH whose body is written but never finished, like a client in the middle of a chunk.
 * Sent chunked, or with `declaredLength` as its Content-Length (more than the bytes written).
 * `sent` resolves once the bytes are handed to the socket; `read()` once the server process
 * has read all of them (nothing of them is left in either side's socket queue); `write(more)`
 * sends more and waits the same way, so each piece reaches the server alone.
 */
export function openPatch(
  url: string,
  offset: number,
  bytes: Buffer,
  declaredLength?: number,
  extraHeaders: Record<string, string> = {},
): {
  req: ClientRequest;
  sent: Promise<void>;
  read(): Promise<void>;
  /** Writes `more` after what was written, resolving once the server has read all of it. */
  write(more: Buffer): Promise<void>;
  response: Promise<number | undefined>;
} {
  const headers: Record<string, string> = { ...patchHeaders(offset), ...extraHeaders };
  if (declaredLength !== undefined) headers['Content-Length'] = String(declaredLength);
  const req = request(url, { method: 'PATCH', headers });
  const response = new Promise<number | undefined>((resolve) => {
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('error', () => resolve(undefined));
    req.on('close', () => resolve(undefined));
  });
  const sent = new Promise<void>((resolve) => {
    req.write(bytes, () => resolve());
  });
  const serverPort = Number(new URL(url).port);
  const untilRead = async (written: Promise<void>, length: number) => {
    await written;
    const clientPort = req.socket?.localPort ?? 0;
    await waitFor(
      async () => allBytesRead(clientPort, serverPort),
      `the server reading the ${length} bytes of the PATCH`,
      30_000,
    );
  };
  const read = () => untilRead(sent, bytes.length);
  const write = (more: Buffer) =>
    untilRead(new Promise<void>((resolve) => req.write(more, () => resolve())), more.length);
  return { req, sent, read, write, response };
}
