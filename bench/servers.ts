import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { peakResidentBytes } from '../test/harness/processProbe.ts';
import { SERVER_ARGS, serverArgsWith, startServer } from '../test/harness/serverProcess.ts';
import { freePort, waitFor } from '../test/harness/services.ts';
import { MIB } from './stats.ts';

/** A server under test, as a process seen from outside. */
export type BenchServer = {
  name: string;
  /** The tus creation endpoint, `…/files/`. */
  filesUrl: string;
  pid: number;
  /** VmHWM of the process since it started, from /proc: the peak resident set. */
  peakRssMiB(): number;
  /** CPU time (user + system, all threads) the process has used so far, in seconds. */
  cpuSeconds(): number;
  /** Error-level log lines written so far. */
  errorLines(): number;
  stop(): Promise<void>;
};

/** utime + stime from /proc/<pid>/stat, in USER_HZ ticks (100 a second). */
function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Keeps a count of error lines and a short tail: the whole log of 1,000s of requests is not needed. */
function watchLog(streams: Array<Readable | null>, errorLine: RegExp) {
  let errors = 0;
  let tail = '';
  for (const stream of streams) {
    let partial = '';
    stream?.removeAllListeners('data');
    stream?.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) if (errorLine.test(line)) errors += 1;
      tail = `${tail}${lines.join('\n')}\n`.slice(-4000);
    });
  }
  return { errors: () => errors, tail: () => tail };
}

export type OursOptions = {
  s3Endpoint: string;
  s3AccessKeyId: string;
  s3SecretAccessKey: string;
  redisUrl: string;
  bucket: string;
  partSize: number;
  dedupe: boolean;
  /** AUTH_JWT_SECRET: tokens required, dedupe hits only for an owner's own content. */
  authSecret?: string;
  /** Where `node --cpu-prof` writes the profiles when the process exits; unset: no profile. */
  cpuProfileDir?: string;
  /** Further variables, e.g. DEDUPE_PROOF for the proof-timing scenario. */
  env?: Record<string, string>;
  /** Node flags instead of npm start's (the flags scenario); unset: npm start's. */
  nodeFlags?: string[];
};

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Our server under `node --cpu-prof` (not allowed in NODE_OPTIONS, so the harness cannot pass it):
 * spawned as `npm start` runs it, with the profiler flags in front. The profile is written at exit.
 */
async function startProfiled(
  env: NodeJS.ProcessEnv,
  profileDir: string,
  nodeFlags?: string[],
): Promise<{ url: string; child: ChildProcess; stop(): Promise<number | null> }> {
  const child = spawn(
    process.execPath,
    [
      // One profile per thread, under Node's default names.
      '--cpu-prof',
      `--cpu-prof-dir=${profileDir}`,
      ...(nodeFlags ? serverArgsWith(nodeFlags) : SERVER_ARGS),
    ],
    {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, HOST: '127.0.0.1', PORT: '0', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const port = /listening on http:\/\/[^:]+:(\d+)/.exec(out)?.[1];
      if (port) resolve(`http://127.0.0.1:${port}`);
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${out}`)));
  });
  return {
    url,
    child,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** Our server, started by the test harness the way `npm start` starts it. */
export async function startOurs(options: OursOptions): Promise<BenchServer> {
  const env = {
    LOG_LEVEL: 'info',
    S3_ENDPOINT: options.s3Endpoint,
    S3_ACCESS_KEY_ID: options.s3AccessKeyId,
    S3_SECRET_ACCESS_KEY: options.s3SecretAccessKey,
    S3_BUCKET: options.bucket,
    S3_PART_SIZE: String(options.partSize),
    REDIS_URL: options.redisUrl,
    DEDUPE: options.dedupe ? 'on' : 'off',
    // The benchmark creates thousands of uploads a minute from one address, and holds hundreds
    // open at once: it stands for many clients, and the per-client limits are not what is measured.
    CREATE_RATE_LIMIT: '100000000',
    MAX_OPEN_UPLOADS_PER_CLIENT: '100000',
    ...(options.authSecret ? { AUTH_JWT_SECRET: options.authSecret } : {}),
    ...options.env,
  };
  const server = options.cpuProfileDir
    ? await startProfiled(env, options.cpuProfileDir, options.nodeFlags)
    : await startServer(env, { nodeFlags: options.nodeFlags });
  // The harness keeps and rescans every log line, fine for tests but not for 1,000s of requests.
  const log = watchLog([server.child.stdout, server.child.stderr], /"level":(50|60)/);
  const pid = server.child.pid ?? 0;
  return {
    name: options.dedupe ? 'ours' : 'ours (dedupe off)',
    filesUrl: `${server.url}/files/`,
    pid,
    peakRssMiB: () => peakResidentBytes(pid) / MIB,
    cpuSeconds: () => cpuSecondsOf(pid),
    errorLines: log.errors,
    async stop() {
      const code = await server.stop();
      if (code !== 0) throw new Error(`our server exited with ${code}: ${log.tail()}`);
    },
  };
}

export type TusdOptions = {
  binary: string;
  s3Endpoint: string;
  s3AccessKeyId: string;
  s3SecretAccessKey: string;
  bucket: string;
  partSize: number;
};

/** tusd with its S3 store on the same MinIO; -s3-endpoint also makes it address buckets by path. */
export async function startTusd(options: TusdOptions): Promise<BenchServer> {
  const port = await freePort();
  const args = [
    '-host',
    '127.0.0.1',
    '-port',
    String(port),
    '-base-path',
    '/files/',
    '-s3-bucket',
    options.bucket,
    '-s3-endpoint',
    options.s3Endpoint,
    '-s3-part-size',
    String(options.partSize),
  ];
  const child = spawn(options.binary, args, {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      AWS_ACCESS_KEY_ID: options.s3AccessKeyId,
      AWS_SECRET_ACCESS_KEY: options.s3SecretAccessKey,
      AWS_REGION: 'us-east-1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log = watchLog([child.stdout, child.stderr], /level=ERROR/);
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const url = `http://127.0.0.1:${port}`;
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`tusd exited: ${log.tail()}`);
    return (await fetch(`${url}/files/`, { method: 'OPTIONS' })).ok;
  }, 'tusd');
  return {
    name: 'tusd',
    filesUrl: `${url}/files/`,
    pid: child.pid ?? 0,
    peakRssMiB: () => peakResidentBytes(child.pid ?? 0) / MIB,
    cpuSeconds: () => cpuSecondsOf(child.pid ?? 0),
    errorLines: log.errors,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Node's http both ways: the download path at its simplest. */
const BARE_PROXY = `
const http = require('node:http');
http.createServer((req, res) => {
  const target = new URL(req.url, 'http://proxy').searchParams.get('u');
  http.get(target, (upstream) => {
    res.writeHead(upstream.statusCode, { 'content-length': upstream.headers['content-length'] });
    upstream.pipe(res);
  });
}).listen(0, '127.0.0.1', function () { console.log('listening on ' + this.address().port); });
`;

/**
 * Below Node's http client: a raw socket to S3 whose reads land in 1 MiB buffers (net's
 * `onread`), handed to the response as they are; the response head is parsed by hand (MinIO
 * answers a GET with Content-Length). An experiment for the floor, not a client to ship.
 */
const RAW_PROXY = `
const http = require('node:http');
const net = require('node:net');
const READ = 1024 * 1024;
http.createServer((req, res) => {
  const target = new URL(new URL(req.url, 'http://proxy').searchParams.get('u'));
  let head = Buffer.alloc(0);
  let started = false;
  const socket = net.connect({
    host: target.hostname,
    port: Number(target.port),
    onread: {
      buffer: () => Buffer.allocUnsafe(READ),
      callback(length, buffer) {
        let chunk = buffer.subarray(0, length);
        if (!started) {
          head = Buffer.concat([head, chunk]);
          const end = head.indexOf('\\r\\n\\r\\n');
          if (end < 0) return;
          const lines = head.subarray(0, end).toString('latin1').split('\\r\\n');
          const status = Number(lines[0].split(' ')[1]);
          const size = lines.find((line) => /^content-length:/i.test(line))?.split(':')[1].trim();
          res.writeHead(status, { 'content-length': size });
          started = true;
          chunk = head.subarray(end + 4);
        }
        if (chunk.length > 0 && !res.write(chunk)) {
          socket.pause();
          res.once('drain', () => socket.resume());
        }
      },
    },
  });
  socket.write('GET ' + target.pathname + target.search + ' HTTP/1.1\\r\\nHost: ' + target.host + '\\r\\nConnection: close\\r\\n\\r\\n');
  socket.on('end', () => res.end());
}).listen(0, '127.0.0.1', function () { console.log('listening on ' + this.address().port); });
`;

export async function startBareProxy(kind: 'http' | 'raw' = 'http'): Promise<BenchServer> {
  const source = kind === 'http' ? BARE_PROXY : RAW_PROXY;
  const child = spawn(process.execPath, ['-e', source], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<string>((resolve, reject) => {
    child.stdout?.once('data', (chunk: Buffer) => {
      const found = /listening on (\d+)/.exec(chunk.toString())?.[1];
      if (found) resolve(found);
      else reject(new Error(`bare proxy: ${chunk.toString()}`));
    });
    child.once('exit', (code) => reject(new Error(`bare proxy exited with ${code}`)));
  });
  const pid = child.pid ?? 0;
  return {
    name: kind === 'http' ? 'bare Node proxy' : 'raw-socket proxy',
    filesUrl: `http://127.0.0.1:${port}/?u=`,
    pid,
    peakRssMiB: () => peakResidentBytes(pid) / MIB,
    cpuSeconds: () => cpuSecondsOf(pid),
    errorLines: () => 0,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}
