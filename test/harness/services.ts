import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** Where the test stack's MinIO and Redis answer. */
export type Services = {
  s3Endpoint: string;
  s3AccessKeyId: string;
  s3SecretAccessKey: string;
  redisUrl: string;
  stop(): Promise<void>;
};

const MINIO_USER = 'tusminioadmin';
const MINIO_PASSWORD = 'tusminioadmin-secret';
const MINIO_IMAGE = 'minio/minio:RELEASE.2025-09-07T16-13-09Z';
const VERSITY_ACCESS = 'tusversityadmin';
const VERSITY_SECRET = 'tusversityadmin-secret';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

export async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${what}: not within ${timeoutMs} ms`);
}

function dockerAvailable(): boolean {
  try {
    execFileSync('docker', ['info'], { stdio: 'ignore', timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}

/** The binary `go install` put in $(go env GOPATH)/bin, or one of that name on PATH. */
function goInstalled(name: string): string {
  const gopath = (() => {
    try {
      return execFileSync('go', ['env', 'GOPATH'], { encoding: 'utf8' }).trim();
    } catch {
      return path.join(process.env.HOME ?? '/root', 'go');
    }
  })();
  const installed = path.join(gopath, 'bin', name);
  return existsSync(installed) ? installed : name;
}

/** The binary installed by `go install github.com/minio/minio@…`, or one on PATH. */
export function minioBinary(): string {
  return process.env.MINIO_BIN ?? goInstalled('minio');
}

function startProcess(command: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn(command, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  child.once('exit', (code, signal) => {
    if (code !== 0 && signal === null)
      process.stderr.write(`${command} exited ${code}: ${stderr}\n`);
  });
  return child;
}

/** SIGTERM, then SIGKILL after 5 s; resolves once the process has exited. */
export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

export type TestRedis = {
  url: string;
  stop(): Promise<void>;
  /** Starts it again where it was (same address), empty. */
  restart(): Promise<void>;
};

async function redisAnswers(port: number): Promise<boolean> {
  const { Redis } = await import('ioredis');
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 });
  client.on('error', () => {});
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } finally {
    client.disconnect();
  }
}

/** A redis-server process on a free loopback port, persistence off, in a throw-away directory. */
async function startLocalRedis(): Promise<TestRedis> {
  const dir = mkdtempSync(path.join(tmpdir(), 'tus-redis-'));
  const port = await freePort();
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
  ];
  const launch = async () => {
    const child = startProcess('redis-server', args, {});
    await waitFor(() => redisAnswers(port), 'redis-server');
    return child;
  };
  let redis = await launch();
  return {
    url: `redis://127.0.0.1:${port}/0`,
    async stop() {
      await stopProcess(redis);
    },
    async restart() {
      await stopProcess(redis);
      redis = await launch();
    },
  };
}

/** A MinIO of its own for a test that stops it; restarted at the same address with its data. */
export type TestMinio = {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  stop(): Promise<void>;
  restart(): Promise<void>;
  remove(): Promise<void>;
};

async function minioReady(endpoint: string): Promise<void> {
  await waitFor(
    async () => (await fetch(`${endpoint}/minio/health/ready`)).status === 200,
    'minio server',
  );
}

function launchMinio(dir: string, port: number, consolePort: number): ChildProcess {
  return startProcess(
    minioBinary(),
    [
      'server',
      '--quiet',
      '--address',
      `127.0.0.1:${port}`,
      '--console-address',
      `127.0.0.1:${consolePort}`,
      dir,
    ],
    { MINIO_ROOT_USER: MINIO_USER, MINIO_ROOT_PASSWORD: MINIO_PASSWORD, MINIO_BROWSER: 'off' },
  );
}

export async function startDedicatedMinio(): Promise<TestMinio> {
  const credentials = { accessKeyId: MINIO_USER, secretAccessKey: MINIO_PASSWORD };
  if (process.env.TEST_SERVICES !== 'local' && dockerAvailable()) {
    const { MinioContainer } = await import('@testcontainers/minio');
    // A fixed host port, so that a restarted container answers at the same address.
    const port = await freePort();
    const container = await new MinioContainer(MINIO_IMAGE)
      .withUsername(MINIO_USER)
      .withPassword(MINIO_PASSWORD)
      .withExposedPorts({ container: 9000, host: port })
      .start();
    const endpoint = `http://127.0.0.1:${port}`;
    return {
      endpoint,
      ...credentials,
      stop: async () => void (await container.stop({ remove: false })),
      restart: async () => {
        await container.restart();
        await minioReady(endpoint);
      },
      remove: async () => void (await container.stop()),
    };
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'tus-minio-'));
  const [port, consolePort] = [await freePort(), await freePort()];
  const endpoint = `http://127.0.0.1:${port}`;
  let minio = launchMinio(dir, port, consolePort);
  await minioReady(endpoint);
  return {
    endpoint,
    ...credentials,
    stop: () => stopProcess(minio),
    async restart() {
      await stopProcess(minio);
      minio = launchMinio(dir, port, consolePort);
      await minioReady(endpoint);
    },
    async remove() {
      await stopProcess(minio);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A second S3 of the test stack, one that answers as AWS does where MinIO does not. */
export type TestS3 = {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  stop(): Promise<void>;
};

/**
 * VersityGW (`go install github.com/versity/versitygw/cmd/versitygw@v1.8.0`, see scripts/test.sh)
 * on a free loopback port, its posix backend in a throw-away directory: always a local process.
 */
export async function startVersity(): Promise<TestS3> {
  const dir = mkdtempSync(path.join(tmpdir(), 'tus-versity-'));
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const args = ['--access', VERSITY_ACCESS, '--secret', VERSITY_SECRET];
  args.push('--port', `127.0.0.1:${port}`, 'posix', dir);
  const child = startProcess(process.env.VERSITYGW_BIN ?? goInstalled('versitygw'), args, {});
  // It has no health route: any S3 answer (403 to an anonymous listing) means it serves.
  await waitFor(async () => (await fetch(endpoint)).status > 0, 'versitygw');
  return {
    endpoint,
    accessKeyId: VERSITY_ACCESS,
    secretAccessKey: VERSITY_SECRET,
    async stop() {
      await stopProcess(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function startLocal(): Promise<Services> {
  const dir = mkdtempSync(path.join(tmpdir(), 'tus-minio-'));
  const [port, consolePort] = [await freePort(), await freePort()];
  const minio = launchMinio(dir, port, consolePort);
  const redis = await startLocalRedis();
  const endpoint = `http://127.0.0.1:${port}`;
  await minioReady(endpoint);
  return {
    s3Endpoint: endpoint,
    s3AccessKeyId: MINIO_USER,
    s3SecretAccessKey: MINIO_PASSWORD,
    redisUrl: redis.url,
    async stop() {
      await Promise.all([stopProcess(minio), redis.stop()]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function startContainers(): Promise<Services> {
  const { MinioContainer } = await import('@testcontainers/minio');
  const { RedisContainer } = await import('@testcontainers/redis');
  const [minio, redis] = await Promise.all([
    new MinioContainer(MINIO_IMAGE).withUsername(MINIO_USER).withPassword(MINIO_PASSWORD).start(),
    new RedisContainer('redis:7-alpine').start(),
  ]);
  return {
    s3Endpoint: minio.getConnectionUrl(),
    s3AccessKeyId: MINIO_USER,
    s3SecretAccessKey: MINIO_PASSWORD,
    redisUrl: redis.getConnectionUrl(),
    async stop() {
      await Promise.all([minio.stop(), redis.stop()]);
    },
  };
}

/** Containers where a Docker engine answers (unless TEST_SERVICES=local), local binaries otherwise. */
export async function startServices(): Promise<Services> {
  const useContainers = process.env.TEST_SERVICES !== 'local' && dockerAvailable();
  return useContainers ? startContainers() : startLocal();
}

/** A Redis of its own for a test that stops it: a container where Docker answers, else a local process. */
export async function startDedicatedRedis(): Promise<TestRedis> {
  if (process.env.TEST_SERVICES !== 'local' && dockerAvailable()) {
    const { RedisContainer } = await import('@testcontainers/redis');
    // A fixed host port, so that a restarted container answers at the same address.
    const port = await freePort();
    const container = await new RedisContainer('redis:7-alpine')
      .withExposedPorts({ container: 6379, host: port })
      .start();
    return {
      url: `redis://127.0.0.1:${port}/0`,
      stop: async () => void (await container.stop({ remove: false })),
      restart: async () => void (await container.restart()),
    };
  }
  return startLocalRedis();
}
