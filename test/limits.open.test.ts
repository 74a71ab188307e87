import { type ClientRequest, type IncomingHttpHeaders, request } from 'node:http';
import { describe, expect, test } from '@jest/globals';
import { allBytesRead } from './harness/processProbe.ts';
import { type ServerOnStorage, serverOnStorage } from './harness/serverOnStorage.ts';
import { waitFor } from './harness/services.ts';
import { openPatch } from './harness/slowPatch.ts';
import { MIB, randomContent, STORAGE_KINDS, sha256 } from './harness/stack.ts';
import { bearer, JWT_SECRET, tokenFor } from './harness/tokens.ts';
import { createUpload, downloadedSha256, head, patchHeaders, TUS } from './harness/tus.ts';

const PER_CLIENT = 3;
const TOTAL = 5;
const CAPS = {
  MAX_OPEN_UPLOADS_PER_CLIENT: String(PER_CLIENT),
  MAX_OPEN_UPLOADS: String(TOTAL),
};
/** Each held request declares this many bytes and sends the first HELD_SENT of them. */
const HELD_LENGTH = 1000;
const HELD_SENT = 100;

type Answer = { status: number; headers: IncomingHttpHeaders; body: string };

/**
 * A request from `localAddress` (another loopback address is another anonymous client) whose
 * body is `bytes`; with `declaredLength` above their length it stays open, like a client in the
 * middle of a chunk. `read()` resolves once the server process has read every byte written.
 */
function openRequest(
  url: string,
  options: {
    method: string;
    headers: Record<string, string>;
    bytes: Buffer;
    declaredLength?: number;
    localAddress?: string;
  },
): { req: ClientRequest; read(): Promise<void>; answer: Promise<Answer | undefined> } {
  const { method, bytes, declaredLength = bytes.length, localAddress } = options;
  const headers = { ...options.headers, 'Content-Length': String(declaredLength) };
  const req = request(url, { method, headers, localAddress });
  const answer = new Promise<Answer | undefined>((resolve) => {
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', () => resolve(undefined));
    });
    req.on('error', () => resolve(undefined));
    req.on('close', () => resolve(undefined));
  });
  const sent = new Promise<void>((resolve) => {
    if (declaredLength === bytes.length) req.end(bytes, () => resolve());
    else req.write(bytes, () => resolve());
  });
  const read = async () => {
    await sent;
    const clientPort = req.socket?.localPort ?? 0;
    await waitFor(
      async () => allBytesRead(clientPort, Number(new URL(url).port)),
      `the server reading the ${bytes.length} bytes of the ${method}`,
      30_000,
    );
  };
  return { req, read, answer };
}

/** A whole request from `localAddress`, answered. */
async function send(
  url: string,
  options: {
    method: string;
    headers: Record<string, string>;
    body?: Buffer;
    localAddress?: string;
  },
): Promise<Answer> {
  const answer = await openRequest(url, { ...options, bytes: options.body ?? Buffer.alloc(0) })
    .answer;
  if (!answer) throw new Error(`${options.method} ${url} got no answer`);
  return answer;
}

/** A PATCH from offset 0 that sends the first HELD_SENT bytes of `body` and then waits. */
function midBodyPatch(
  url: string,
  body: Buffer,
  options: { headers?: Record<string, string>; localAddress?: string; method?: string } = {},
) {
  return openRequest(url, {
    method: options.method ?? 'PATCH',
    headers: { ...patchHeaders(0), ...options.headers },
    bytes: body.subarray(0, HELD_SENT),
    declaredLength: HELD_LENGTH,
    localAddress: options.localAddress,
  });
}

/** Requests the server is writing upload bytes for right now (its metrics' gauge). */
async function activeUploads(stack: ServerOnStorage): Promise<number> {
  const text = await (await fetch(stack.server.metricsUrl ?? '')).text();
  return Number(/^tus_active_uploads (\d+)$/m.exec(text)?.[1] ?? Number.NaN);
}

/** Waits until the server writes for exactly `count` requests: theirs are counted, or released. */
function waitForActive(stack: ServerOnStorage, count: number): Promise<void> {
  return waitFor(
    async () => (await activeUploads(stack)) === count,
    `the server writing for ${count} requests`,
    30_000,
  );
}

/** The refusal of a request over a cap, before its body was read: it never sends the rest. */
function expectRefused(answer: Answer | undefined, status: 429 | 503): void {
  expect(answer?.status).toBe(status);
  const retryAfter = Number(answer?.headers['retry-after']);
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(answer?.headers.connection).toBe('close');
  const body = JSON.parse(answer?.body ?? '{}') as { error?: string };
  expect(body.error).toMatch(status === 429 ? /too many uploads in progress/ : /as many uploads/);
}

/** Uploads `data` from `localAddress` with a creation and one PATCH; resolves with its URL. */
async function uploadWhole(
  base: string,
  data: Buffer,
  headers: Record<string, string>,
  localAddress?: string,
): Promise<string> {
  const created = await send(`${base}/files/`, {
    method: 'POST',
    headers: { ...TUS, ...headers, 'Upload-Length': String(data.length) },
    localAddress,
  });
  expect(created.status).toBe(201);
  const url = new URL(String(created.headers.location), base).toString();
  const patched = await send(url, {
    method: 'PATCH',
    headers: { ...patchHeaders(0), ...headers },
    body: data,
    localAddress,
  });
  expect(patched.status).toBe(204);
  expect(patched.headers['upload-offset']).toBe(String(data.length));
  return url;
}

describe.each(STORAGE_KINDS)('open uploads capped on the %s configuration', (kind) => {
  describe('anonymous: per client address and in total', () => {
    const stack = serverOnStorage(kind, CAPS);

    test(`a client with ${PER_CLIENT} open uploads is refused more (429), others upload; over ${TOTAL} in all is 503; ended ones free their places`, async () => {
      const base = stack.server.url;
      const body = randomContent(HELD_LENGTH);
      // Client A (127.0.0.1): two PATCHes and a creation with upload, all in the middle of their body.
      const uploads = [
        await createUpload(base, HELD_LENGTH),
        await createUpload(base, HELD_LENGTH),
      ];
      const heldPatches = uploads.map((url) =>
        openPatch(url, 0, body.subarray(0, HELD_SENT), HELD_LENGTH),
      );
      const heldCreation = openRequest(`${base}/files/`, {
        method: 'POST',
        headers: {
          ...TUS,
          'Upload-Length': String(HELD_LENGTH),
          'Content-Type': 'application/offset+octet-stream',
        },
        bytes: body.subarray(0, HELD_SENT),
        declaredLength: HELD_LENGTH,
      });
      for (const held of [...heldPatches, heldCreation]) await held.read();
      await waitForActive(stack, PER_CLIENT);

      // A's next PATCH is refused before its body is read: the answer comes while it still owes
      // bytes, and its upload is untouched.
      const target = await createUpload(base, HELD_LENGTH);
      expectRefused(await midBodyPatch(target, body).answer, 429);
      const state = await head(target);
      expect(state.status).toBe(200);
      expect(state.headers.get('upload-offset')).toBe('0');
      expect(await stack.storage.storedBytes(target.split('/').pop() ?? '')).toBe(0);

      // So is a creation with upload, and it creates nothing; one without a body is no upload.
      const before = await stack.storage.inventory();
      const creation = await send(`${base}/files/`, {
        method: 'POST',
        headers: {
          ...TUS,
          'Upload-Length': '10',
          'Content-Type': 'application/offset+octet-stream',
        },
        body: Buffer.from('0123456789'),
      });
      expectRefused(creation, 429);
      expect(await stack.storage.inventory()).toEqual(before);
      const bare = await fetch(`${base}/files/`, {
        method: 'POST',
        headers: { ...TUS, 'Upload-Length': '10' },
      });
      expect(bare.status).toBe(201);

      // Client B (127.0.0.2) meanwhile uploads a whole file.
      const data = randomContent(6 * MIB + 5);
      const url = await uploadWhole(base, data, {}, '127.0.0.2');
      expect(await downloadedSha256(url)).toBe(sha256(data));

      // B holds two: the process holds its total of 5; client C (127.0.0.3) gets 503, A still 429.
      const heldByB = [
        await createUpload(base, HELD_LENGTH),
        await createUpload(base, HELD_LENGTH),
      ].map((heldUrl) => midBodyPatch(heldUrl, body, { localAddress: '127.0.0.2' }));
      for (const held of heldByB) await held.read();
      await waitForActive(stack, TOTAL);
      expectRefused(await midBodyPatch(target, body, { localAddress: '127.0.0.3' }).answer, 503);
      expectRefused(await midBodyPatch(target, body).answer, 429);
      expect((await head(target)).headers.get('upload-offset')).toBe('0');

      // A's PATCHes finish and its creation's client goes away: A is served again, and C too.
      for (const held of heldPatches) {
        held.req.end(body.subarray(HELD_SENT));
        expect(await held.response).toBe(204);
      }
      heldCreation.req.destroy();
      await waitForActive(stack, 2);
      for (const heldUrl of uploads) expect(await downloadedSha256(heldUrl)).toBe(sha256(body));
      const again = await send(target, {
        method: 'PATCH',
        headers: patchHeaders(0),
        body: body.subarray(0, HELD_SENT),
      });
      expect(again.status).toBe(204);
      const fromCAgain = await send(target, {
        method: 'PATCH',
        headers: patchHeaders(HELD_SENT),
        body: body.subarray(HELD_SENT),
        localAddress: '127.0.0.3',
      });
      expect(fromCAgain.status).toBe(204);
      expect(await downloadedSha256(target)).toBe(sha256(body));

      for (const held of heldByB) held.req.destroy();
      await waitForActive(stack, 0);
    });
  });

  describe('auth on: per owner, the method override counted as the PATCH it is', () => {
    const stack = serverOnStorage(kind, { ...CAPS, AUTH_JWT_SECRET: JWT_SECRET });

    test(`an owner with ${PER_CLIENT} open uploads (one a POST overridden to PATCH) gets 429 for PATCH and override alike; another owner uploads`, async () => {
      const base = stack.server.url;
      const alice = bearer(await tokenFor('alice'));
      const bob = bearer(await tokenFor('bob'));
      const body = randomContent(HELD_LENGTH);
      const uploads = [
        await createUpload(base, HELD_LENGTH, alice),
        await createUpload(base, HELD_LENGTH, alice),
        await createUpload(base, HELD_LENGTH, alice),
      ];
      const held = [
        openPatch(uploads[0] ?? '', 0, body.subarray(0, HELD_SENT), HELD_LENGTH, alice),
        openPatch(uploads[1] ?? '', 0, body.subarray(0, HELD_SENT), HELD_LENGTH, alice),
      ];
      const override = { ...alice, 'X-HTTP-Method-Override': 'PATCH' };
      const overridden = midBodyPatch(uploads[2] ?? '', body, {
        method: 'POST',
        headers: override,
      });
      for (const request of [...held, overridden]) await request.read();
      await waitForActive(stack, PER_CLIENT);

      const target = await createUpload(base, HELD_LENGTH, alice);
      expectRefused(await midBodyPatch(target, body, { headers: alice }).answer, 429);
      const refusedOverride = midBodyPatch(target, body, { method: 'POST', headers: override });
      expectRefused(await refusedOverride.answer, 429);
      const state = await head(target, alice);
      expect(state.status).toBe(200);
      expect(state.headers.get('upload-offset')).toBe('0');

      // Bob, from the same address, is another identity.
      const data = randomContent(6 * MIB + 5);
      const url = await uploadWhole(base, data, bob);
      expect(await downloadedSha256(url, bob)).toBe(sha256(data));

      // The overridden request ends like any PATCH and frees its place.
      overridden.req.end(body.subarray(HELD_SENT));
      expect((await overridden.answer)?.status).toBe(204);
      const again = await send(target, {
        method: 'POST',
        headers: { ...patchHeaders(0), ...override },
        body,
      });
      expect(again.status).toBe(204);
      expect(await downloadedSha256(target, alice)).toBe(sha256(body));

      for (const request of held) request.req.destroy();
      await waitForActive(stack, 0);
    });
  });
});
