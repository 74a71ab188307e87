import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HookEvent } from '../../hooks/wire.ts';

/** One hook request as the receiver got it. */
type ReceivedHook = {
  type: string;
  event: HookEvent;
  headers: IncomingHttpHeaders;
  at: number;
};

/** How the receiver answers one hook request: a status, and a body sent as JSON. */
type HookAnswer = { status?: number; body?: unknown; delayMs?: number };

export type HookReceiver = {
  url: string;
  received: ReceivedHook[];
  /** Answers hooks of `type` with `answer` (or what the function returns for each request). */
  answer(type: string, answer: HookAnswer | ((hook: ReceivedHook) => HookAnswer)): void;
  /** Back to answering every hook with `{}`. */
  reset(): void;
  /** The hooks received so far of `type` (and of upload `id`, when given). */
  of(type: string, id?: string): ReceivedHook[];
  close(): Promise<void>;
};

/** A hook receiver on loopback that records every request and answers as told (`{}` by default). */
export async function startHookReceiver(): Promise<HookReceiver> {
  const received: ReceivedHook[] = [];
  const answers = new Map<string, HookAnswer | ((hook: ReceivedHook) => HookAnswer)>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      const hook: ReceivedHook = {
        type: body.Type,
        event: body.Event,
        headers: req.headers,
        at: Date.now(),
      };
      received.push(hook);
      const scripted = answers.get(hook.type);
      const answer = typeof scripted === 'function' ? scripted(hook) : (scripted ?? {});
      const send = () => {
        res.writeHead(answer.status ?? 200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(answer.body ?? {}));
      };
      if (answer.delayMs) setTimeout(send, answer.delayMs);
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`,
    received,
    answer(type, answer) {
      answers.set(type, answer);
    },
    reset() {
      answers.clear();
    },
    of(type, id) {
      return received.filter((hook) => hook.type === type && (!id || hook.event.Upload.ID === id));
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
