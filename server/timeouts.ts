import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from './logger.ts';
import { uploadIdIn } from './requests.ts';

/**
 * Time limits for clients that stop sending. Uploads may stream for hours, so there is no limit
 * on a whole request; instead the headers must arrive within the idle period, and a request body
 * that sends nothing for that long is ended by closing its connection. tus treats that like any
 * lost client: what was received is persisted and the upload's lock is released, so the client
 * resumes from there.
 */
export function applyIdleTimeouts(server: Server, idleSeconds: number, logger: Logger): void {
  const idleMs = idleSeconds * 1000;
  server.requestTimeout = 0;
  server.headersTimeout = idleMs;
  // Longer than the 60 s a proxy (nginx) keeps an idle upstream connection, so it closes first.
  server.keepAliveTimeout = 65_000;

  // The last exchange of each connection. No 'close' listener forgets it: a finished one counts
  // as none, and the next request replaces it (a download's response already has 10 'close'
  // listeners of its own: metrics, the log line, the download and stream.pipeline's).
  const current = new WeakMap<Socket, { req: IncomingMessage; res: ServerResponse }>();
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    current.set(req.socket, { req, res });
  });

  // Fires when the connection has neither received nor sent a byte for the idle period.
  server.setTimeout(idleMs, (socket: Socket) => {
    const last = current.get(socket);
    const exchange = last?.res.writableFinished ? undefined : last;
    if (exchange?.req.complete && !exchange.res.headersSent) {
      // The whole request arrived and the server is still working on it (storage is slow).
      socket.setTimeout(idleMs);
      return;
    }
    if (exchange && !exchange.req.complete) {
      const uploadId = uploadIdIn(exchange.req.url);
      logger.warn(
        { uploadId, method: exchange.req.method, idleSeconds },
        'request body idle: closing the connection, the bytes received are kept',
      );
    }
    socket.destroy();
  });
}
