import { type ClientRequest, request } from 'node:http';
import { allBytesRead } from './processProbe.ts';
import { waitFor } from './services.ts';
import { patchHeaders } from './tus.ts';

/**
 * A PATCH whose body is written but never finished, like a client in the middle of a chunk.
 * Sent chunked, or with `declaredLength` as its Content-Length (more than the bytes written).
 * `sent` resolves once the bytes are handed to the socket; `read()` once the server process
 * has read all of them (nothing of them is left in either side's socket queue).
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
  const read = async () => {
    await sent;
    const clientPort = req.socket?.localPort ?? 0;
    await waitFor(
      async () => allBytesRead(clientPort, serverPort),
      `the server reading the ${bytes.length} bytes of the PATCH`,
      30_000,
    );
  };
  return { req, sent, read, response };
}
