/**
 * `npm run build`: the server as plain JavaScript (dist/server, one file per command, packages
 * left to node_modules) and the upload page as files (dist/page). `npm start` runs the result,
 * so nothing is compiled while the server runs. `npm ci` and `npm start` both build.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { buildPageBundle, PREBUILT_PAGE_MANIFEST } from '../web/pageBundle.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIST = path.join(ROOT, 'dist');

async function buildServer(): Promise<void> {
  await build({
    entryPoints: [path.join(ROOT, 'server/main.ts'), path.join(ROOT, 'server/reindex.ts')],
    outdir: path.join(DIST, 'server'),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // Dependencies load from node_modules as they are: only the project's own code is bundled.
    packages: 'external',
    legalComments: 'none',
    logLevel: 'warning',
  });
}

async function buildPage(): Promise<void> {
  const dir = path.join(DIST, 'page');
  const bundle = await buildPageBundle();
  await rm(dir, { recursive: true, force: true });
  await mkdir(path.join(dir, 'assets'), { recursive: true });
  await writeFile(path.join(dir, 'index.html'), bundle.html);
  for (const [name, asset] of bundle.assets) {
    await writeFile(path.join(dir, 'assets', name), asset.body);
  }
  // Written last: a page directory without it is an interrupted build, and is not used.
  await writeFile(
    path.join(dir, PREBUILT_PAGE_MANIFEST),
    JSON.stringify([...bundle.assets.keys()]),
  );
}

const started = Date.now();
await Promise.all([buildServer(), buildPage()]);
process.stderr.write(`build: dist/ written in ${Date.now() - started} ms\n`);
