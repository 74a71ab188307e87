import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { type ServerProcess, startServer } from './harness/serverProcess.ts';
import {
  createTestStorage,
  MIB,
  randomContent,
  S3_COMPAT_KINDS,
  STORAGE_KINDS,
  sha256,
  type TestStorage,
} from './harness/stack.ts';
import {
  createUpload,
  downloadedSha256,
  encodeMetadata,
  head,
  idOf,
  offsetOf,
  patch,
  TUS,
  uploadUrlOn,
} from './harness/tus.ts';

/** Every configuration, and S3 on VersityGW: what S3 answers decides what termination does. */
const KINDS = [...STORAGE_KINDS, ...S3_COMPAT_KINDS];

// Started by hand, not with serverOnStorage: one test restarts the server.
describe.each(KINDS)('tus 1.0.0 protocol on the %s configuration', (kind) => {
  let storage: TestStorage;
  let server: ServerProcess;
  const MAX = 50 * MIB;

  beforeAll(async () => {
    storage = createTestStorage(kind);
    server = await startServer({ ...storage.env, MAX_UPLOAD_SIZE: String(MAX) });
  });
  afterAll(async () => {
    await server?.stop();
    await storage?.cleanup();
  });

  test('OPTIONS advertises version, extensions and max size', async () => {
    const res = await fetch(`${server.url}/files/`, { method: 'OPTIONS' });
    expect(res.status).toBe(204);
    expect(res.headers.get('tus-version')).toBe('1.0.0');
    expect(res.headers.get('tus-max-size')).toBe(String(MAX));
    expect(res.headers.get('tus-extension')?.split(',').sort()).toEqual(
      [
        'checksum',
        'checksum-trailer',
        'concatenation',
        'creation',
        'creation-defer-length',
        'creation-with-upload',
        'expiration',
        'termination',
      ].sort(),
    );
  });

  test('a request without Tus-Resumable gets 412 with Tus-Version', async () => {
    const res = await fetch(`${server.url}/files/`, {
      method: 'POST',
      headers: { 'Upload-Length': '1' },
    });
    expect(res.status).toBe(412);
    expect(res.headers.get('tus-version')).toBe('1.0.0');
  });

  test('an unsupported Tus-Resumable gets 412 and creates nothing', async () => {
    const before = await storage.inventory();
    const res = await fetch(`${server.url}/files/`, {
      method: 'POST',
      headers: { 'Tus-Resumable': '0.2.2', 'Upload-Length': '1' },
    });
    expect(res.status).toBe(412);
    expect(res.headers.get('tus-version')).toBe('1.0.0');
    expect(await storage.inventory()).toEqual(before);
  });

  test('POST without Upload-Length and without Upload-Defer-Length gets 400', async () => {
    const res = await fetch(`${server.url}/files/`, { method: 'POST', headers: TUS });
    expect(res.status).toBe(400);
  });

  test.each(['-1', 'abc', '1.5', '1e3', ''])(
    'POST with Upload-Length %p gets 400',
    async (length) => {
      const res = await fetch(`${server.url}/files/`, {
        method: 'POST',
        headers: { ...TUS, 'Upload-Length': length },
      });
      expect(res.status).toBe(400);
    },
  );

  test.each(['filename aGk=,,', 'filename aGk=,filename aGk=', 'file name aGk=', 'filename %%%'])(
    'malformed Upload-Metadata %p gets 400',
    async (metadata) => {
      const res = await fetch(`${server.url}/files/`, {
        method: 'POST',
        headers: { ...TUS, 'Upload-Length': '1', 'Upload-Metadata': metadata },
      });
      expect(res.status).toBe(400);
    },
  );

  test('a malformed sha256 or md5 in the metadata gets 400', async () => {
    for (const metadata of [{ sha256: 'abc' }, { md5: 'z'.repeat(32) }] as Record<
      string,
      string
    >[]) {
      const res = await fetch(`${server.url}/files/`, {
        method: 'POST',
        headers: { ...TUS, 'Upload-Length': '1', 'Upload-Metadata': encodeMetadata(metadata) },
      });
      expect(res.status).toBe(400);
      expect(await res.text()).toMatch(/sha256|md5/);
    }
  });

  test('POST above MAX_UPLOAD_SIZE gets 413', async () => {
    const res = await fetch(`${server.url}/files/`, {
      method: 'POST',
      headers: { ...TUS, 'Upload-Length': String(MAX + 1) },
    });
    expect(res.status).toBe(413);
  });

  test('create, PATCH in two pieces, HEAD reports progress, bytes stored intact', async () => {
    const data = randomContent(100_000);
    const url = await createUpload(server.url, data.length, {
      'Upload-Metadata': encodeMetadata({ filename: 'a.bin' }),
    });
    let res = await head(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('upload-offset')).toBe('0');
    expect(res.headers.get('upload-length')).toBe(String(data.length));
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('upload-metadata')).toBe(encodeMetadata({ filename: 'a.bin' }));

    res = await patch(url, 0, data.subarray(0, 40_000));
    expect(res.status).toBe(204);
    expect(res.headers.get('upload-offset')).toBe('40000');
    expect(await offsetOf(url)).toBe(40_000);

    res = await patch(url, 40_000, data.subarray(40_000));
    expect(res.status).toBe(204);
    expect(res.headers.get('upload-offset')).toBe(String(data.length));
    expect(await storage.storedSha256(idOf(url))).toBe(sha256(data));
  });

  test('PATCH at the wrong offset gets 409 and changes nothing', async () => {
    const url = await createUpload(server.url, 10);
    expect((await patch(url, 0, Buffer.from('hello'))).status).toBe(204);
    const res = await patch(url, 3, Buffer.from('XXXXX'));
    expect(res.status).toBe(409);
    expect(await offsetOf(url)).toBe(5);
    expect((await patch(url, 5, Buffer.from('world'))).status).toBe(204);
    expect(await storage.storedSha256(idOf(url))).toBe(sha256('helloworld'));
  });

  test('PATCH with a wrong Content-Type gets 415 and changes nothing', async () => {
    const url = await createUpload(server.url, 10);
    const res = await patch(url, 0, Buffer.from('hello'), { 'Content-Type': 'application/json' });
    expect(res.status).toBe(415);
    expect(await offsetOf(url)).toBe(0);
  });

  test('PATCH past the declared length gets 413 and keeps the offset', async () => {
    const url = await createUpload(server.url, 4);
    const res = await patch(url, 0, Buffer.from('too long'));
    expect(res.status).toBe(413);
    expect(await offsetOf(url)).toBe(0);
  });

  test('an unknown id gets 404 on HEAD, PATCH and DELETE', async () => {
    const url = `${server.url}/files/${'0'.repeat(32)}`;
    expect((await head(url)).status).toBe(404);
    expect((await patch(url, 0, Buffer.from('x'))).status).toBe(404);
    expect((await fetch(url, { method: 'DELETE', headers: TUS })).status).toBe(404);
  });

  test.each(['..%2F..%2Fetc%2Fpasswd', '%2e%2e', 'abc%00def', 'ABCDEF', '%zz'])(
    'an id with path tricks (%s) gets 404',
    async (id) => {
      expect((await head(`${server.url}/files/${id}`)).status).toBe(404);
    },
  );

  test('DELETE gets 204, then the upload is gone', async () => {
    const url = await createUpload(server.url, 10);
    await patch(url, 0, Buffer.from('hello'));
    const res = await fetch(url, { method: 'DELETE', headers: TUS });
    expect(res.status).toBe(204);
    expect([404, 410]).toContain((await head(url)).status);
    expect(await storage.inventory()).not.toContainEqual(expect.stringContaining(idOf(url)));
  });

  test.each([
    ['5 bytes', 5],
    ['7 MiB + 3 (a part and a tail)', 7 * MIB + 3],
  ])('DELETE of a finished upload of %s removes it all: 204, then 404', async (_name, size) => {
    const data = randomContent(size);
    const url = await createUpload(server.url, size);
    expect((await patch(url, 0, data)).status).toBe(204);
    expect(await downloadedSha256(url)).toBe(sha256(data));
    expect((await fetch(url, { method: 'DELETE', headers: TUS })).status).toBe(204);
    expect([404, 410]).toContain((await head(url)).status);
    expect((await fetch(url)).status).toBe(404);
    expect((await fetch(url, { method: 'HEAD' })).status).toBe(404);
    expect((await fetch(url, { method: 'DELETE', headers: TUS })).status).toBe(404);
    expect(await storage.inventory()).not.toContainEqual(expect.stringContaining(idOf(url)));
  });

  test('X-HTTP-Method-Override turns a POST into PATCH, HEAD or DELETE', async () => {
    const url = await createUpload(server.url, 5);
    let res = await fetch(url, {
      method: 'POST',
      headers: {
        ...TUS,
        'X-HTTP-Method-Override': 'PATCH',
        'Upload-Offset': '0',
        'Content-Type': 'application/offset+octet-stream',
      },
      body: new Uint8Array(Buffer.from('hello')),
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('upload-offset')).toBe('5');
    res = await fetch(url, {
      method: 'POST',
      headers: { ...TUS, 'X-HTTP-Method-Override': 'HEAD' },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('upload-offset')).toBe('5');
    res = await fetch(url, {
      method: 'POST',
      headers: { ...TUS, 'X-HTTP-Method-Override': 'DELETE' },
    });
    expect(res.status).toBe(204);
    expect((await head(url)).status).toBe(404);
  });

  test('creation-defer-length: the length is declared by a later PATCH', async () => {
    const url = await createUpload(server.url, 'deferred');
    let res = await head(url);
    expect(res.headers.get('upload-defer-length')).toBe('1');
    res = await patch(url, 0, Buffer.from('hello'));
    expect(res.status).toBe(204);
    res = await patch(url, 5, Buffer.from('world'), { 'Upload-Length': '10' });
    expect(res.status).toBe(204);
    res = await head(url);
    expect(res.headers.get('upload-length')).toBe('10');
    expect(res.headers.get('upload-offset')).toBe('10');
    expect(await storage.storedSha256(idOf(url))).toBe(sha256('helloworld'));
    expect(await downloadedSha256(url)).toBe(sha256('helloworld'));
  });

  test.each([
    ['Upload-Length', String(2 ** 53)],
    ['Upload-Length', '99999999999999999999999'],
  ])('POST with %s %s (above 2^53 - 1) gets 400 and creates nothing', async (name, value) => {
    const before = await storage.inventory();
    const res = await fetch(`${server.url}/files/`, {
      method: 'POST',
      headers: { ...TUS, [name]: value },
    });
    expect(res.status).toBe(400);
    expect(await res.text()).toMatch(/at most 9007199254740991/);
    expect(await storage.inventory()).toEqual(before);
  });

  test('PATCH with Upload-Offset above 2^53 - 1 gets 400 and changes nothing', async () => {
    const url = await createUpload(server.url, 5);
    const res = await patch(url, 0, Buffer.from('hello'), { 'Upload-Offset': String(2 ** 53) });
    expect(res.status).toBe(400);
    expect(await offsetOf(url)).toBe(0);
  });

  test('every creation answer carries Upload-Offset, 0 when no body came with it', async () => {
    const lengths: Record<string, string>[] = [
      { 'Upload-Length': '10' },
      { 'Upload-Defer-Length': '1' },
    ];
    for (const headers of lengths) {
      const res = await fetch(`${server.url}/files/`, {
        method: 'POST',
        headers: { ...TUS, ...headers },
      });
      expect(res.status).toBe(201);
      expect(res.headers.get('upload-offset')).toBe('0');
    }
  });

  test('creation-defer-length with 0 bytes: a PATCH declaring length 0 finishes the upload', async () => {
    const url = await createUpload(server.url, 'deferred');
    const res = await patch(url, 0, Buffer.alloc(0), { 'Upload-Length': '0' });
    expect(res.status).toBe(204);
    expect(res.headers.get('upload-offset')).toBe('0');
    const state = await head(url);
    expect(state.headers.get('upload-length')).toBe('0');
    expect(state.headers.get('upload-defer-length')).toBeNull();
    const download = await fetch(url);
    expect(download.status).toBe(200);
    expect((await download.arrayBuffer()).byteLength).toBe(0);
  });

  test('creation-defer-length: the declared length survives a restart of the server', async () => {
    const url = await createUpload(server.url, 'deferred');
    expect((await patch(url, 0, Buffer.from('hello'), { 'Upload-Length': '10' })).status).toBe(204);
    await server.stop();
    server = await startServer({ ...storage.env, MAX_UPLOAD_SIZE: String(MAX) });
    const fresh = uploadUrlOn(server, url);
    expect((await head(fresh)).headers.get('upload-length')).toBe('10');
    expect((await patch(fresh, 5, Buffer.from('world'))).status).toBe(204);
    expect(await downloadedSha256(fresh)).toBe(sha256('helloworld'));
  });

  test('creation-with-upload: the POST body is the first chunk', async () => {
    const data = randomContent(3000);
    const res = await fetch(`${server.url}/files/`, {
      method: 'POST',
      headers: {
        ...TUS,
        'Upload-Length': String(data.length),
        'Content-Type': 'application/offset+octet-stream',
      },
      body: new Uint8Array(data),
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('upload-offset')).toBe(String(data.length));
    const url = new URL(res.headers.get('location') ?? '', server.url).toString();
    expect(await storage.storedSha256(idOf(url))).toBe(sha256(data));
  });

  test('a 0-byte upload is finished at creation, with or without a creation body', async () => {
    for (const headers of [{}, { 'Content-Type': 'application/offset+octet-stream' }] as Record<
      string,
      string
    >[]) {
      const res = await fetch(`${server.url}/files/`, {
        method: 'POST',
        headers: { ...TUS, 'Upload-Length': '0', ...headers },
      });
      expect(res.status).toBe(201);
      const url = new URL(res.headers.get('location') ?? '', server.url).toString();
      const state = await head(url);
      expect(state.headers.get('upload-offset')).toBe('0');
      expect(state.headers.get('upload-length')).toBe('0');
      expect(await storage.storedSha256(idOf(url))).toBe(sha256(''));
    }
  });

  test('an unfinished upload announces Upload-Expires', async () => {
    const res = await fetch(`${server.url}/files/`, {
      method: 'POST',
      headers: { ...TUS, 'Upload-Length': '10' },
    });
    const expires = Date.parse(res.headers.get('upload-expires') ?? '');
    expect(expires - Date.now()).toBeGreaterThan(86_000_000);
  });
});
