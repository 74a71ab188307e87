import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, test } from '@jest/globals';
import { type ServerProcess, startServer } from './harness/serverProcess.ts';
import { waitFor } from './harness/services.ts';
import {
  createTestStorage,
  MIB,
  randomContent,
  S3_COMPAT_KINDS,
  STORAGE_KINDS,
  sha256,
  type TestStorage,
} from './harness/stack.ts';
import { createUpload, head, idOf, patch, TUS, uploadUrlOn } from './harness/tus.ts';

// Started by hand, not with serverOnStorage: two servers with different sweeps share the storage.
describe.each([...STORAGE_KINDS, ...S3_COMPAT_KINDS])(
  'expiration on the %s configuration',
  (kind) => {
    const storage: TestStorage = createTestStorage(kind);
    const servers: ServerProcess[] = [];
    afterAll(async () => {
      await Promise.all(servers.map((server) => server.stop()));
      await storage.cleanup();
    });

    test('an expired unfinished upload answers 410 and the sweep removes all its storage; finished uploads stay', async () => {
      // The first server never sweeps, so the 410 is observable before the storage is gone.
      const lazy = await startServer({
        ...storage.env,
        UPLOAD_EXPIRY_SECONDS: '2',
        EXPIRY_SWEEP_SECONDS: '3600',
      });
      servers.push(lazy);
      // 6 MiB + 5 leaves a finished part and an incomplete tail on S3.
      const partial = randomContent(6 * MIB + 5);
      const unfinished = await createUpload(lazy.url, 20 * MIB);
      expect((await patch(unfinished, 0, partial)).status).toBe(204);
      const done = randomContent(1000);
      const finished = await createUpload(lazy.url, done.length);
      expect((await patch(finished, 0, done)).status).toBe(204);
      // A final upload is finished; a partial one that is not expires like any upload.
      const joined = randomContent(2000);
      const piece = await createUpload(lazy.url, joined.length, { 'Upload-Concat': 'partial' });
      expect((await patch(piece, 0, joined)).status).toBe(204);
      const made = await fetch(`${lazy.url}/files/`, {
        method: 'POST',
        headers: { ...TUS, 'Upload-Concat': `final;${piece}` },
      });
      expect(made.status).toBe(201);
      const final = new URL(made.headers.get('location') ?? '', lazy.url).toString();
      const openPartial = await createUpload(lazy.url, 100, { 'Upload-Concat': 'partial' });
      const before = await storage.inventory();
      expect(before.filter((name) => name.includes(idOf(unfinished))).length).toBeGreaterThan(0);

      // Waits out UPLOAD_EXPIRY_SECONDS: the expiry is what is tested (this server never sweeps).
      await sleep(2500);
      expect((await head(unfinished)).status).toBe(410);
      expect((await patch(unfinished, partial.length, Buffer.from('x'))).status).toBe(410);
      expect((await head(finished)).status).toBe(200);
      expect((await head(final)).status).toBe(200);
      expect((await head(openPartial)).status).toBe(410);

      const sweeper = await startServer({
        ...storage.env,
        UPLOAD_EXPIRY_SECONDS: '2',
        EXPIRY_SWEEP_SECONDS: '1',
      });
      servers.push(sweeper);
      // Read once through the sweeper (410, or 404 when its first sweep was quicker), so a record
      // it caches must go with the upload.
      expect([404, 410]).toContain((await head(uploadUrlOn(sweeper, unfinished))).status);
      await waitFor(
        async () =>
          (await storage.inventory()).every(
            (name) => !name.includes(idOf(unfinished)) && !name.includes(idOf(openPartial)),
          ),
        'the sweep',
        15_000,
      );
      expect((await head(uploadUrlOn(sweeper, unfinished))).status).toBe(404);
      const after = await head(uploadUrlOn(sweeper, finished));
      expect(after.status).toBe(200);
      expect(after.headers.get('upload-offset')).toBe(String(done.length));
      expect(await storage.storedSha256(idOf(finished))).toBe(sha256(done));
      expect((await head(uploadUrlOn(sweeper, final))).status).toBe(200);
      expect(await storage.storedSha256(idOf(final))).toBe(sha256(joined));
    });
  },
);
