import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request that passed through the proxy, as the server received it. */
export type ProxiedRequest = {
  method: string;
  path: string;
  /** When it arrived (ms since the epoch). */
  at: number;
  /** Body bytes handed on to the server so far; 0 for a request the proxy failed itself. */
  bodyBytes: number;
  /** The answer; undefined while there is none (or never was: the client went away). */
  status?: number;
  /** The answer's Upload-Offset header, if any. */
  uploadOffset?: number;
  /** Answered by the proxy with a failure; the server never saw it. */
  failedByProxy?: boolean;
  /** Over: answered in full, or given up by the client (no more body bytes can come). */
  ended?: boolean;
};

/**
 * A reverse proxy in front of a server that counts, per request, the body bytes the server was
 * sent: what arrived for an upload, whatever the client believes it sent. It can also fail
 * requests, as a flaky network in between would.
 */
export type CountingProxy = {
  url: string;
  requests: ProxiedRequest[];
  /** Answers the next `count` requests with `method` 503 itself, after reading their bodies. */
  failNext(method: string, count: number): void;
  close(): Promise<void>;
};

export async function startCountingProxy(target: string): Promise<CountingProxy> {
  const { hostname, port } = new URL(target);
  const requests: ProxiedRequest[] = [];
  const failures = new Map<string, number>();
  const server = createServer((req, res) => {
    const record: ProxiedRequest = {
      method: req.method ?? '',
      path: req.url ?? '',
      at: Date.now(),
      bodyBytes: 0,
    };
    requests.push(record);
    res.once('close', () => {
      record.ended = true;
    });
    const toFail = failures.get(record.method) ?? 0;
    if (toFail > 0) {
      failures.set(record.method, toFail - 1);
      record.failedByProxy = true;
      req.resume();
      req.once('end', () => {
        record.status = 503;
        res.writeHead(503, { 'Tus-Resumable': '1.0.0' }).end();
      });
      return;
    }
    const upstream = request(
      { host: hostname, port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        record.status = answer.statusCode;
        const offset = answer.headers['upload-offset'];
        if (typeof offset === 'string') record.uploadOffset = Number(offset);
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.on('data', (chunk: Buffer) => {
      record.bodyBytes += chunk.length;
    });
    req.pipe(upstream);
    // A client that goes away mid-request (a reload) leaves the server with a cut-off request.
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    failNext(method, count) {
      failures.set(method, count);
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
