import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test } from '@jest/globals';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** Folders that hold no code of the server (tests, tooling, docs, build output). */
const NOT_SERVER = new Set(['test', 'bench', 'scripts', 'deploy', 'node_modules', 'dist', 'data']);

test('the Dockerfile copies every folder of server code (the image builds them into dist/)', () => {
  const copied = new Set(
    [...readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8').matchAll(/^COPY (\S+) \.\/\1$/gm)].map(
      (match) => match[1],
    ),
  );
  const folders = readdirSync(ROOT, { withFileTypes: true })
    .filter(
      (entry) => entry.isDirectory() && !entry.name.startsWith('.') && !NOT_SERVER.has(entry.name),
    )
    .filter((entry) =>
      readdirSync(path.join(ROOT, entry.name), { recursive: true }).some((file) =>
        String(file).endsWith('.ts'),
      ),
    )
    .map((entry) => entry.name);
  expect(folders.length).toBeGreaterThan(5);
  expect(folders.filter((folder) => !copied.has(folder))).toEqual([]);
});
