import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './serverProcess.ts';

/** The venv `npm test` installs tuspy into, from test/requirements.txt (scripts/test.sh). */
const VENV = path.join(ROOT, '.cache/tuspy-venv');
const PYTHON = path.join(VENV, 'bin/python');
const SCRIPT = path.join(ROOT, 'test/harness/tuspy.py');

const MISSING = `tuspy is not installed in ${VENV} as test/requirements.txt pins it: run npm test (it installs tuspy)`;

/** Whether the venv holds what test/requirements.txt pins (test.sh copies the file in last). */
function tuspyInstalled(): boolean {
  const installed = path.join(VENV, 'requirements.txt');
  return (
    existsSync(PYTHON) &&
    existsSync(installed) &&
    readFileSync(installed, 'utf8') ===
      readFileSync(path.join(ROOT, 'test/requirements.txt'), 'utf8')
  );
}

/** Throws, saying how to install tuspy, unless the venv holds it: a suite fails, never skips. */
export function requireTuspy(): void {
  if (!tuspyInstalled()) throw new Error(MISSING);
}

/** One tuspy upload, in the names of tuspy's own arguments (see tuspy.py). */
export type TuspyOptions = {
  /** The creation URL (`…/files/`). */
  endpoint: string;
  file_path: string;
  /** Bytes per PATCH; the whole file in one PATCH without it. */
  chunk_size?: number;
  metadata?: Record<string, string>;
  /** Sent with every request (tuspy's TusClient headers). */
  headers?: Record<string, string>;
  /** Upload-Checksum (sha1) with every PATCH. */
  upload_checksum?: boolean;
  /** An existing upload to resume. */
  url?: string;
};

/**
 * Uploads a file with tuspy's Uploader in a Python process and resolves with the upload URL and
 * the offset tuspy ended at; rejects with the process's output when it fails.
 */
export function tuspyUpload(options: TuspyOptions): Promise<{ url: string; offset: number }> {
  requireTuspy();
  return new Promise((resolve, reject) => {
    execFile(PYTHON, [SCRIPT, JSON.stringify(options)], (error, stdout, stderr) => {
      if (error) {
        reject(new Error(`tuspy failed (${error.message.split('\n')[0]}):\n${stderr}${stdout}`));
        return;
      }
      resolve(JSON.parse(stdout) as { url: string; offset: number });
    });
  });
}
