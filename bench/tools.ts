import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { nginxBinary } from '../test/harness/nginx.ts';
import { minioBinary } from '../test/harness/services.ts';

const TUSD_MODULE = 'github.com/tus/tusd/v2/cmd/tusd@v2.10.0';

function run(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch {
    return '';
  }
}

function goBin(): string {
  const gopath = run('go', ['env', 'GOPATH']).trim() || path.join(os.homedir(), 'go');
  return path.join(gopath, 'bin');
}

/** tusd from `go install`, installed on first use the way the tests install MinIO. */
export function ensureTusd(log: (message: string) => void): string {
  const binary = path.join(goBin(), 'tusd');
  if (existsSync(binary)) return binary;
  log(`installing tusd: go install ${TUSD_MODULE}`);
  execFileSync('go', ['install', TUSD_MODULE], { stdio: 'inherit' });
  return binary;
}

/** MinIO, redis-server and nginx are the test suite's; `npm test` installs them where missing. */
export function checkServices(needsNginx: boolean): void {
  const minio = minioBinary();
  if (minio === 'minio' && !run('minio', ['--version']))
    throw new Error('MinIO is not installed: run `npm test` once (scripts/test.sh installs it)');
  if (!run('redis-server', ['--version']))
    throw new Error('redis-server is not installed: run `npm test` once (it installs it)');
  if (needsNginx) nginxBinary();
}

/** The module version a Go binary was built from, as `go version -m` reports it. */
function goModuleVersion(binary: string): string {
  const line = run('go', ['version', '-m', binary])
    .split('\n')
    .find((l) => l.trim().startsWith('mod\t'));
  return line?.trim().split('\t').slice(1, 3).join('@') ?? 'unknown';
}

export type Machine = {
  cpu: string;
  cores: number;
  ramGiB: number;
  kernel: string;
  node: string;
  go: string;
  minio: string;
  tusd: string;
  redis: string;
  date: string;
};

export function describeMachine(tusdBinary: string): Machine {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  return {
    cpu: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown',
    cores: os.cpus().length,
    ramGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    go: run('go', ['version']).trim(),
    minio: goModuleVersion(minioBinary()),
    tusd: goModuleVersion(tusdBinary),
    redis: /v=(\S+)/.exec(run('redis-server', ['--version']))?.[1] ?? 'unknown',
    date: new Date().toISOString(),
  };
}

/** The commit the measured server code comes from, and whether the work tree differs from it. */
export function describeCode(): { commit: string; uncommittedChanges: boolean } {
  return {
    commit: run('git', ['rev-parse', 'HEAD']).trim() || 'unknown',
    uncommittedChanges:
      run('git', ['status', '--porcelain', '--', 'server', 'download', 'hooks']).trim() !== '',
  };
}
