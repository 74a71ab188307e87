import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, test } from '@jest/globals';
import { serverOnStorage } from './harness/serverOnStorage.ts';
import { waitFor } from './harness/services.ts';
import { MIB, randomContent, STORAGE_KINDS, sha256 } from './harness/stack.ts';
import { createUpload, downloadedSha256, head, patch } from './harness/tus.ts';

const IDLE_SECONDS = 2;

/** A raw connection to the server, and when it was closed by the other side. */
function rawConnection(base: string): { socket: Socket; closed: Promise<number> } {
  const { hostname, port } = new URL(base);
  const socket = connect(Number(port), hostname);
  socket.on('error', () => {});
  socket.resume();
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
  return { socket, closed };
}

function write(socket: Socket, data: Buffer | string): Promise<void> {
  return new Promise((resolve, reject) =>
    socket.write(data, (error) => (error ? reject(error) : resolve())),
  );
}

function patchHead(url: string, offset: number, length: number): string {
  const { pathname, host } = new URL(url);
  return [
    `PATCH ${pathname} HTTP/1.1`,
    `Host: ${host}`,
    'Tus-Resumable: 1.0.0',
    `Upload-Offset: ${offset}`,
    'Content-Type: application/offset+octet-stream',
    `Content-Length: ${length}`,
    '',
    '',
  ].join('\r\n');
}

describe.each(STORAGE_KINDS)('idle clients on the %s configuration', (kind) => {
  const stack = serverOnStorage(kind, { REQUEST_IDLE_TIMEOUT_SECONDS: String(IDLE_SECONDS) });

  test('a PATCH body that stops is ended after the idle period; every byte it sent is kept and the lock is free', async () => {
    const data = randomContent(12 * MIB + 3);
    const url = await createUpload(stack.server.url, data.length);
    const sent = 9 * MIB + 7;
    const { socket, closed } = rawConnection(stack.server.url);
    await write(socket, patchHead(url, 0, data.length));
    await write(socket, data.subarray(0, sent));
    const stalledAt = Date.now();
    const idleFor = (await closed) - stalledAt;
    expect(idleFor).toBeGreaterThanOrEqual(IDLE_SECONDS * 1000 - 500);
    expect(idleFor).toBeLessThan(IDLE_SECONDS * 1000 + 5000);

    // The lock is released: HEAD takes it and answers with what was received.
    const state = await head(url);
    expect(state.status).toBe(200);
    expect(state.headers.get('upload-offset')).toBe(String(sent));
    const res = await patch(url, sent, data.subarray(sent));
    expect(res.status).toBe(204);
    expect(await downloadedSha256(url)).toBe(sha256(data));
    expect(
      stack.server
        .logs()
        .some((line) => line.level === 40 && String(line.msg).startsWith('request body idle')),
    ).toBe(true);
  });

  test('a body that keeps sending, slowly, is never cut', async () => {
    const data = randomContent(6 * 64 * 1024);
    const url = await createUpload(stack.server.url, data.length);
    const { socket, closed } = rawConnection(stack.server.url);
    let answer = '';
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString();
    });
    await write(socket, patchHead(url, 0, data.length));
    // 6 pieces, one every second: the request lasts three times the idle period. The pauses
    // are the slow client under test.
    for (let at = 0; at < data.length; at += 64 * 1024) {
      await sleep(1000);
      await write(socket, data.subarray(at, at + 64 * 1024));
    }
    await waitFor(async () => answer.includes('\r\n\r\n'), 'the answer', 10_000).catch(
      () => undefined,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 204 /);
    socket.destroy();
    await closed;
    expect(await downloadedSha256(url)).toBe(sha256(data));
  });

  test('headers that never finish are closed within the idle period', async () => {
    const { socket, closed } = rawConnection(stack.server.url);
    await write(socket, 'PATCH /files/0123 HTTP/1.1\r\nHost: x\r\n');
    const stalledAt = Date.now();
    expect((await closed) - stalledAt).toBeLessThan(IDLE_SECONDS * 1000 + 3000);
    expect((await fetch(`${stack.server.url}/healthz`)).status).toBe(200);
  });
});
