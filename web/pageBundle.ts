import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

/** The browser side of the upload page: index.html, main.ts and what they pull in. */
const PAGE_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'page');
/** Where the page's scripts and styles are served. */
const ASSETS_PATH = '/assets/';

type PageAsset = { contentType: string; body: Uint8Array };

/** The page, ready to serve: its HTML and its assets by file name. */
export type PageBundle = { html: string; assets: Map<string, PageAsset> };

const CONTENT_TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
};

/**
 * Bundles main.ts with everything it imports (Uppy and its CSS, hash-wasm's WebAssembly) into
 * memory: the page needs no CDN and works offline. File names carry a content hash, so
 * browsers may cache them for good.
 */
export async function buildPageBundle(pageDir = PAGE_DIR): Promise<PageBundle> {
  const [result, template] = await Promise.all([
    build({
      entryPoints: [path.join(pageDir, 'main.ts')],
      bundle: true,
      write: false,
      outdir: path.join(pageDir, 'out'),
      entryNames: '[name]-[hash]',
      assetNames: '[name]-[hash]',
      publicPath: ASSETS_PATH,
      platform: 'browser',
      format: 'esm',
      target: ['es2022'],
      minify: true,
      legalComments: 'eof',
      define: { 'process.env.NODE_ENV': '"production"' },
      logLevel: 'silent',
    }),
    readFile(path.join(pageDir, 'index.html'), 'utf8'),
  ]);
  const assets = new Map<string, PageAsset>();
  const entryFiles: Record<string, string> = {};
  for (const file of result.outputFiles) {
    const name = path.basename(file.path);
    const extension = path.extname(name);
    assets.set(name, {
      contentType: CONTENT_TYPES[extension] ?? 'application/octet-stream',
      body: file.contents,
    });
    if (name.startsWith('main-')) entryFiles[`main${extension}`] = ASSETS_PATH + name;
  }
  const html = template.replace(/\{\{(main\.(?:js|css))\}\}/g, (placeholder, key: string) => {
    const url = entryFiles[key];
    if (!url) throw new Error(`the bundle has no ${key} for ${placeholder} in index.html`);
    return url;
  });
  return { html, assets };
}
