import { type ClientRequest, request } from 'node:http';

/**
 * A PATCH whose body is written but never finished, like a client in the middle of a chunk.
 * `sent` resolves once the bytes are handed to the socket.
 */
export function openPatch(
  url: string,
  offset: number,
  bytes: Buffer,
): { req: ClientRequest; sent: Promise<void>; response: Promise<number | undefined> } {
  const req = request(url, {
    method: 'PATCH',
    headers: {
      'Tus-Resumable': '1.0.0',
      'Upload-Offset': String(offset),
      'Content-Type': 'application/offset+octet-stream',
    },
  });
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
  return { req, sent, response };
}
