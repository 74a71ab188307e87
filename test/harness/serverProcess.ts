import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from './services.ts';

/** The repository: where the server's sources are. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * What `npm start` runs, as arguments to node: its flags and the build of server/main.ts (the
 * test run builds it first). Read from package.json, so tests and bench start what users start.
 */
export const SERVER_ARGS: string[] = (() => {
  const { scripts } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const [command, ...args] = String(scripts.start).split(/\s+/);
  if (command !== 'node') throw new Error(`npm start runs "${command}", not node`);
  return args.map((arg) => (arg.startsWith('-') ? arg : path.join(ROOT, arg)));
})();

/** The node flags of `npm start`, and the same arguments with other flags (the bench compares). */
export const START_FLAGS = SERVER_ARGS.filter((arg) => arg.startsWith('-'));
export function serverArgsWith(nodeFlags: string[]): string[] {
  return [...nodeFlags, ...SERVER_ARGS.filter((arg) => !arg.startsWith('-'))];
}

/** Builds dist/ from the current sources, as `npm start` does before it runs the server. */
export function buildServer(): void {
  execFileSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'scripts/build.ts')], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

/** One real server process, started the way `npm start` starts it. */
export type ServerProcess = {
  url: string;
  /** Where its metrics' own listener is, if it has one (`…/metrics`). */
  metricsUrl?: string;
  pid: number;
  child: ChildProcess;
  /** Everything written so far to stdout and stderr. */
  output(): string;
  /** JSON log lines written so far. */
  logs(): Array<Record<string, unknown>>;
  /** Resolves with the first log line `match` accepts, once the server has written it. */
  waitForLog(
    match: (line: Record<string, unknown>) => boolean,
    what: string,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  /** Sends the signal and resolves with the exit code once the process has exited. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
};

export type ExitResult = { code: number | null; stdout: string; stderr: string };

/** The request a log line reports (the server writes one when a response ends), if any. */
export function loggedRequest(
  line: Record<string, unknown>,
): { method: string; path: string; status?: number } | undefined {
  const req = line.req as { method?: string; path?: string } | undefined;
  if (!req?.method) return undefined;
  return {
    method: req.method,
    path: req.path ?? '',
    status: (line.res as { status?: number } | undefined)?.status,
  };
}

/** Several servers run side by side here: each one's metrics listener takes a free port. */
function spawnServer(env: NodeJS.ProcessEnv, args = SERVER_ARGS): ChildProcess {
  return spawn(process.execPath, args, {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      LOG_LEVEL: 'info',
      METRICS_PORT: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/**
 * Starts the server on a free port and resolves once it listens; `nodeFlags` replace npm start's
 * node flags (the bench measures what each flag costs).
 */
export async function startServer(
  env: NodeJS.ProcessEnv,
  options: { nodeFlags?: string[] } = {},
): Promise<ServerProcess> {
  const args = options.nodeFlags ? serverArgsWith(options.nodeFlags) : SERVER_ARGS;
  const child = spawnServer({ HOST: '127.0.0.1', PORT: '0', ...env }, args);
  let out = '';
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const match = /listening on http:\/\/[^:]+:(\d+)/.exec(out);
      if (match) resolve(`http://127.0.0.1:${match[1]}`);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) =>
      reject(new Error(`server exited with ${code} before listening:\n${out}`)),
    );
  });
  // The metrics line comes before the one that says the server listens.
  const metricsPort = /metrics served at http:\/\/[^:]+:(\d+)/.exec(out)?.[1];
  // Whole lines only: the last one may still be arriving.
  const logs = () =>
    out
      .split('\n')
      .slice(0, -1)
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  return {
    url,
    metricsUrl: metricsPort && `http://127.0.0.1:${metricsPort}/metrics`,
    pid: child.pid ?? 0,
    child,
    output: () => out,
    logs,
    async waitForLog(match, what, timeoutMs = 30_000) {
      await waitFor(async () => logs().some(match), `the server logging ${what}`, timeoutMs);
      return logs().find(match) as Record<string, unknown>;
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Runs the server expecting it to exit by itself (a start-up failure). */
export async function runServerToExit(
  env: NodeJS.ProcessEnv,
  timeoutMs = 30_000,
): Promise<ExitResult> {
  const child = spawnServer({ HOST: '127.0.0.1', PORT: '0', ...env });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearTimeout(timer);
  return { code, stdout, stderr };
}
