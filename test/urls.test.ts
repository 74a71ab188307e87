import { request } from 'node:http';
import { describe, expect, test } from '@jest/globals';
import { serverOnStorage } from './harness/serverOnStorage.ts';
import { randomContent, STORAGE_KINDS, sha256 } from './harness/stack.ts';
import { encodeMetadata } from './harness/tus.ts';

const PUBLIC_URL = 'https://uploads.example.com/base';

/** A creation whose Host and forwarding headers are the caller's choice; resolves with Location. */
function locationOf(base: string, headers: Record<string, string>): Promise<string> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        hostname,
        port,
        path: '/files/',
        method: 'POST',
        headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '10', ...headers },
      },
      (res) => {
        res.resume();
        if (res.statusCode !== 201) reject(new Error(`POST answered ${res.statusCode}`));
        else resolve(String(res.headers.location));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const ID = '[0-9a-f]{32}';

describe.each(STORAGE_KINDS)('the URLs the server makes on the %s configuration', (kind) => {
  describe('with PUBLIC_URL', () => {
    const stack = serverOnStorage(kind, { PUBLIC_URL: `${PUBLIC_URL}/` });

    test('Location starts with PUBLIC_URL whatever Host and X-Forwarded-* say', async () => {
      const location = await locationOf(stack.server.url, {
        Host: 'evil.example',
        'X-Forwarded-Host': 'evil.example',
        'X-Forwarded-Proto': 'http',
      });
      expect(location).toMatch(new RegExp(`^${PUBLIC_URL}/files/${ID}$`));
    });

    test('a dedupe hit gets its Location from PUBLIC_URL too', async () => {
      const data = randomContent(5000);
      // Sent whole with the creation, since the Location it gets leads nowhere from here.
      const first = await fetch(`${stack.server.url}/files/`, {
        method: 'POST',
        headers: {
          'Tus-Resumable': '1.0.0',
          'Upload-Length': String(data.length),
          'Content-Type': 'application/offset+octet-stream',
        },
        body: new Uint8Array(data),
      });
      expect(first.headers.get('upload-offset')).toBe(String(data.length));
      const location = await locationOf(stack.server.url, {
        Host: 'evil.example',
        'Upload-Length': String(data.length),
        'Upload-Metadata': encodeMetadata({ sha256: sha256(data) }),
      });
      expect(location).toMatch(new RegExp(`^${PUBLIC_URL}/files/${ID}$`));
    });
  });

  describe('without PUBLIC_URL', () => {
    const stack = serverOnStorage(kind);

    test('Location names the Host the client used; forwarding headers are not believed', async () => {
      const location = await locationOf(stack.server.url, {
        Host: 'uploads.internal:8080',
        'X-Forwarded-Host': 'evil.example',
        'X-Forwarded-Proto': 'https',
      });
      expect(location).toMatch(new RegExp(`^http://uploads\\.internal:8080/files/${ID}$`));
    });

    test('a Host that is not a host name gives a Location with the path only', async () => {
      const location = await locationOf(stack.server.url, { Host: 'evil.example/phish?' });
      expect(location).toMatch(new RegExp(`^/files/${ID}$`));
    });
  });

  describe('with TRUST_PROXY=on', () => {
    const stack = serverOnStorage(kind, { TRUST_PROXY: 'on' });

    test("Location follows the proxy's X-Forwarded-Proto and X-Forwarded-Host", async () => {
      const location = await locationOf(stack.server.url, {
        Host: '127.0.0.1',
        'X-Forwarded-Host': 'uploads.example.org',
        'X-Forwarded-Proto': 'https',
      });
      expect(location).toMatch(new RegExp(`^https://uploads\\.example\\.org/files/${ID}$`));
    });
  });
});
