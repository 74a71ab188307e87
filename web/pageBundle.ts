import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** The browser side of the upload page: index.html, main.ts and what they pull in. */
const PAGE_DIR = path.join(HERE, 'page');
/**
 * The page `npm run build` wrote: dist/page beside dist/server, where the built server runs.
 * From the sources (web/) the path names nothing, and the page is bundled on demand.
 */
const PREBUILT_DIR = path.join(HERE, '../page');
/** The list of asset files, written last by the build. */
export const PREBUILT_PAGE_MANIFEST = 'manifest.json';
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
  // Loaded only here: a server serving the built page never loads esbuild.
  const { build } = await import('esbuild');
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
    assets.set(name, { contentType: contentTypeOf(name), body: file.contents });
    if (name.startsWith('main-')) entryFiles[`main${extension}`] = ASSETS_PATH + name;
  }
  const html = template.replace(/\{\{(main\.(?:js|css))\}\}/g, (placeholder, key: string) => {
    const url = entryFiles[key];
    if (!url) throw new Error(`the bundle has no ${key} for ${placeholder} in index.html`);
    return url;
  });
  return { html, assets };
}

const contentTypeOf = (name: string) =>
  CONTENT_TYPES[path.extname(name)] ?? 'application/octet-stream';

/** The page as `npm run build` wrote it, or undefined when there is no complete build. */
async function loadPrebuiltBundle(dir: string): Promise<PageBundle | undefined> {
  let names: string[];
  try {
    names = JSON.parse(await readFile(path.join(dir, PREBUILT_PAGE_MANIFEST), 'utf8'));
  } catch {
    return undefined;
  }
  const assets = new Map<string, PageAsset>();
  for (const name of names) {
    const body = await readFile(path.join(dir, 'assets', path.basename(name)));
    assets.set(name, { contentType: contentTypeOf(name), body });
  }
  return { html: await readFile(path.join(dir, 'index.html'), 'utf8'), assets };
}

/** The built page when there is one, else a bundle made now (running from the sources). */
export async function loadPageBundle(prebuiltDir = PREBUILT_DIR): Promise<PageBundle> {
  return (await loadPrebuiltBundle(prebuiltDir)) ?? buildPageBundle();
}
