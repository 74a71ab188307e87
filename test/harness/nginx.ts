import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT } from './serverProcess.ts';
import { freePort, stopProcess, waitFor } from './services.ts';

/** The project's documented load balancer, as users deploy it. */
export const DEPLOY_NGINX_CONF = path.join(ROOT, 'deploy/nginx.conf');

// The two lines that only make sense inside docker compose, matched whole (indentation kept).
const UPSTREAM_SERVER = /^([ \t]*)server server:8080 resolve;[ \t]*$/gm;
const LISTEN = /^([ \t]*)listen 8080;[ \t]*$/gm;
const HASH = /^[ \t]*hash \$balance_key consistent;[ \t]*\n/gm;

/** Throws unless `pattern` matches exactly one line of `conf`: the file and tests stay in step. */
function expectOneLine(conf: string, pattern: RegExp, what: string): void {
  const found = [...conf.matchAll(pattern)].length;
  if (found !== 1) {
    throw new Error(`nginx.conf: expected one "${what}" line, found ${found}`);
  }
}

/** Replaces the one line `pattern` matches; throws unless exactly one does. */
function replaceLine(
  conf: string,
  pattern: RegExp,
  what: string,
  lines: (indent: string) => string[],
): string {
  expectOneLine(conf, pattern, what);
  return conf.replace(pattern, (_line, indent: string) =>
    lines(indent)
      .map((line) => `${indent}${line}`)
      .join('\n'),
  );
}

export type LoopbackOptions = {
  listenPort: number;
  upstreamPorts: number[];
  tls?: { cert: string; key: string };
};

/**
 * deploy/nginx.conf as it runs on loopback: the compose service name (`server:8080 resolve`, which
 * nginx 1.22 does not know and loopback does not need) becomes one `server 127.0.0.1:<port>;` per
 * instance, and `listen 8080;` a loopback port, with TLS when asked. Nothing else changes.
 */
export function renderForLoopback(conf: string, options: LoopbackOptions): string {
  const upstreams = replaceLine(conf, UPSTREAM_SERVER, 'server server:8080 resolve;', () =>
    options.upstreamPorts.map((port) => `server 127.0.0.1:${port};`),
  );
  return replaceLine(upstreams, LISTEN, 'listen 8080;', () =>
    options.tls
      ? [
          `listen 127.0.0.1:${options.listenPort} ssl;`,
          `ssl_certificate ${options.tls.cert};`,
          `ssl_certificate_key ${options.tls.key};`,
        ]
      : [`listen 127.0.0.1:${options.listenPort};`],
  );
}

/** The same configuration balancing round-robin: the `hash … consistent;` line removed. */
export function withoutHashing(conf: string): string {
  expectOneLine(conf, HASH, 'hash');
  return conf.replace(HASH, '');
}

/** Debian's nginx (`npm test` installs the package where it is missing), or one on PATH. */
export function nginxBinary(): string {
  if (existsSync('/usr/sbin/nginx')) return '/usr/sbin/nginx';
  try {
    return execFileSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('nginx is not installed: run `npm test` once (scripts/test.sh installs it)');
  }
}

/** A self-signed certificate for 127.0.0.1, made with the openssl CLI. */
function selfSignedCertificate(dir: string): { cert: string; key: string } {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: 'ignore' },
  );
  return { cert, key };
}

/** nginx's own settings around the rendered file: everything it writes stays in `dir`. */
function mainConfig(dir: string, included: string): string {
  const temp = (name: string) => path.join(dir, name);
  return [
    'daemon off;',
    'worker_processes 1;',
    `pid ${temp('nginx.pid')};`,
    `error_log ${temp('error.log')} warn;`,
    'events {}',
    'http {',
    '    access_log off;',
    `    client_body_temp_path ${temp('client_body')};`,
    `    proxy_temp_path ${temp('proxy')};`,
    `    fastcgi_temp_path ${temp('fastcgi')};`,
    `    uwsgi_temp_path ${temp('uwsgi')};`,
    `    scgi_temp_path ${temp('scgi')};`,
    `    include ${included};`,
    '}',
    '',
  ].join('\n');
}

/** Whether something answers HTTP at `url` (any status), trusting `ca` for TLS. */
function answers(url: string, ca?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const send = url.startsWith('https:') ? httpsRequest : httpRequest;
    const req = send(url, { method: 'GET', ca, timeout: 2000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

export type NginxProcess = {
  /** `http://127.0.0.1:<port>`, or `https://…` with TLS. */
  url: string;
  port: number;
  /** With TLS: the self-signed certificate (PEM file) clients must trust. */
  certificateFile?: string;
  stop(): Promise<void>;
  /** nginx's error log (level warn and above) so far; kept after stop. */
  errorLog(): string;
};

export type NginxOptions = {
  /** Base URLs of the instances, `http://127.0.0.1:<port>`. */
  upstreams: string[];
  tls?: boolean;
  /** `round-robin` drops the file's consistent hashing (for measuring what it buys). */
  balancing?: 'as-deployed' | 'round-robin';
};

/**
 * nginx running deploy/nginx.conf on a free loopback port in front of `upstreams`, in a
 * throw-away directory; resolves once it answers.
 */
export async function startNginx(options: NginxOptions): Promise<NginxProcess> {
  const upstreamPorts = options.upstreams.map((base) => {
    const { hostname, port } = new URL(base);
    if (hostname !== '127.0.0.1' || !port) throw new Error(`not a loopback upstream: ${base}`);
    return Number(port);
  });
  const dir = mkdtempSync(path.join(tmpdir(), 'tus-nginx-'));
  // Started as root, nginx runs its worker as nobody: it must reach the temp folders in here.
  chmodSync(dir, 0o755);
  const tls = options.tls ? selfSignedCertificate(dir) : undefined;
  const port = await freePort();
  const deployed = readFileSync(DEPLOY_NGINX_CONF, 'utf8');
  const conf = options.balancing === 'round-robin' ? withoutHashing(deployed) : deployed;
  const included = path.join(dir, 'uploads.conf');
  writeFileSync(included, renderForLoopback(conf, { listenPort: port, upstreamPorts, tls }));
  const mainPath = path.join(dir, 'nginx.conf');
  writeFileSync(mainPath, mainConfig(dir, included));

  const errorLogPath = path.join(dir, 'error.log');
  let stderr = '';
  let keptLog: string | undefined;
  const errorLog = () =>
    keptLog ?? `${stderr}${existsSync(errorLogPath) ? readFileSync(errorLogPath, 'utf8') : ''}`;
  // -e: errors before the configuration is read go to the same file, not to /var/log/nginx.
  const child = spawn(nginxBinary(), ['-p', dir, '-c', mainPath, '-e', errorLogPath], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const url = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  const ca = tls ? readFileSync(tls.cert, 'utf8') : undefined;
  const stop = async () => {
    // SIGTERM is nginx's fast shutdown: open connections are closed, not waited for.
    await stopProcess(child);
    keptLog = errorLog();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // deploy/nginx.conf answers /metrics itself (404): nginx is up, whatever the instances do.
    const probe = `${url}/metrics`;
    await waitFor(
      async () => child.exitCode !== null || (await answers(probe, ca)),
      'nginx',
      10_000,
    );
    if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}`);
  } catch (error) {
    await stop();
    throw new Error(`${(error as Error).message}:\n${errorLog()}`);
  }
  return { url, port, certificateFile: tls?.cert, stop, errorLog };
}
