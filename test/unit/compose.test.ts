import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from '@jest/globals';
import { parse } from 'yaml';

// docker-compose.yml cannot be started here (no Docker engine); these checks keep it in step
// with deploy/nginx.conf, deploy/minio/Dockerfile and scripts/test.sh.
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

type Service = {
  image?: string;
  build?: unknown;
  restart?: string;
  deploy?: { replicas?: number };
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  ports?: string[];
};
const compose = parse(read('docker-compose.yml')) as { services: Record<string, Service> };
const services = compose.services;
const server = services.server as Service;
const minio = services.minio as Service;

describe('docker-compose.yml', () => {
  test('every service restarts after a crash', () => {
    for (const [name, service] of Object.entries(services)) {
      expect({ name, restart: service.restart }).toEqual({ name, restart: 'unless-stopped' });
    }
  });

  test('one server image, built once, runs as two replicas', () => {
    const built = Object.entries(services).filter(([, service]) => service.build === '.');
    expect(built.map(([name]) => name)).toEqual(['server']);
    expect(server.deploy?.replicas).toBe(2);
  });

  test('MinIO credentials are written once: the server gets the very values MinIO starts with', () => {
    const env = server.environment ?? {};
    expect(env.S3_ACCESS_KEY_ID).toBe(minio.environment?.MINIO_ROOT_USER);
    expect(env.S3_SECRET_ACCESS_KEY).toBe(minio.environment?.MINIO_ROOT_PASSWORD);
    // No password ships in the file: compose refuses to start until the operator sets one.
    expect(env.S3_SECRET_ACCESS_KEY).toMatch(/^\$\{MINIO_ROOT_PASSWORD:\?[^}]+\}$/);
    expect(read('docker-compose.yml').match(/MINIO_ROOT_PASSWORD:\?/g)).toHaveLength(1);
  });

  test('MinIO is built from the commit the tests run against', () => {
    expect(minio.build).toBe('deploy/minio');
    const pinned = /^MINIO_MODULE="([^"]+)"$/m.exec(read('scripts/test.sh'))?.[1];
    const built = /^ARG MINIO_MODULE=(\S+)$/m.exec(read('deploy/minio/Dockerfile'))?.[1];
    expect(pinned).toMatch(/^github\.com\/minio\/minio@v0\.0\.0-\d{14}-[0-9a-f]{12}$/);
    expect(built).toBe(pinned);
  });

  test('nginx balances over the server service on the port it listens on, re-resolving its name', () => {
    const nginx = read('deploy/nginx.conf');
    const upstream = /^\s*server (\S+):(\d+) resolve;$/m.exec(nginx);
    expect(upstream?.[1]).toBe('server');
    expect(upstream?.[2]).toBe(server.environment?.PORT);
    // `resolve` on an upstream server needs nginx 1.27.3 or later.
    const [, major, minor] = /^nginx:(\d+)\.(\d+)-/.exec(services.nginx?.image ?? '') ?? [];
    expect(Number(major) * 1000 + Number(minor)).toBeGreaterThanOrEqual(1027);
  });

  test("only nginx is reachable from other machines; MinIO's console only from this one", () => {
    const published = Object.fromEntries(
      Object.entries(services).map(([name, service]) => [name, service.ports ?? []]),
    );
    expect(published).toEqual({
      minio: ['127.0.0.1:9001:9001'],
      redis: [],
      server: [],
      nginx: ['8080:8080'],
    });
  });

  test('the replicas believe the proxy in front of them, and start after MinIO and Redis are ready', () => {
    expect(server.environment?.TRUST_PROXY).toBe('on');
    expect(server.depends_on).toEqual({
      minio: { condition: 'service_healthy' },
      redis: { condition: 'service_healthy' },
    });
  });
});

test('the server image is built on a current Node LTS', () => {
  const major = Number(/^FROM node:(\d+)-/m.exec(read('Dockerfile'))?.[1]);
  // Even majors become LTS; 24 is the newest LTS the project is tried on.
  expect(major % 2).toBe(0);
  expect(major).toBeGreaterThanOrEqual(24);
});
