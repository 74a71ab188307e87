import { type NextFunction, type Request, type Response, Router } from 'express';
import type { Logger } from 'pino';
import { ERRORS } from '../errors/catalogue.ts';
import { loadPageBundle, type PageBundle } from './pageBundle.ts';

/**
 * The page bundle, built on the first request that needs it (start-up does not wait for
 * esbuild) and kept in memory. A failed build is tried again by the next request.
 */
export class LazyPageBundle {
  private built: Promise<PageBundle> | undefined;

  constructor(private readonly buildBundle: () => Promise<PageBundle> = () => loadPageBundle()) {}

  get(): Promise<PageBundle> {
    this.built ??= this.buildBundle().catch((error: unknown) => {
      this.built = undefined;
      throw error;
    });
    return this.built;
  }
}

const PAGE_HEADERS = {
  'Content-Type': 'text/html; charset=utf-8',
  // The HTML names the current asset files, so it is revalidated every time.
  'Cache-Control': 'no-cache',
  // hash-wasm compiles WebAssembly, Uppy styles elements inline, thumbnails are blob: URLs.
  'Content-Security-Policy': [
    "default-src 'self'",
    "script-src 'self' 'wasm-unsafe-eval'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' blob: data:",
    "media-src 'self' blob:",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
  ].join('; '),
  'X-Content-Type-Options': 'nosniff',
};

const ASSET_HEADERS = {
  // Asset names carry a hash of their content: a changed asset is a new name.
  'Cache-Control': 'public, max-age=31536000, immutable',
  'X-Content-Type-Options': 'nosniff',
};

type BundleHandler = (bundle: PageBundle, req: Request, res: Response, next: NextFunction) => void;

/** A tus client's request is never for the page: it gets the 404 of any path that is no upload. */
function isTusRequest(req: Request): boolean {
  return req.get('tus-resumable') !== undefined;
}

/** GET / serves the upload page, GET /assets/:name its scripts and styles. */
export function uploadPageRoutes(logger: Logger, bundle = new LazyPageBundle()): Router {
  // A build that fails costs the page a 500, never the server or its other routes.
  const withBundle =
    (handler: BundleHandler) => async (req: Request, res: Response, next: NextFunction) => {
      if (isTusRequest(req)) return next();
      let built: PageBundle;
      try {
        built = await bundle.get();
      } catch (error) {
        logger.error({ err: error }, 'upload page: build failed');
        res
          .status(ERRORS.PAGE_BUILD_FAILED.status_code)
          .set({ 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' })
          .send(ERRORS.PAGE_BUILD_FAILED.body);
        return;
      }
      handler(built, req, res, next);
    };

  const router = Router();
  router.get(
    '/',
    withBundle((built, _req, res) => {
      res.set(PAGE_HEADERS).send(built.html);
    }),
  );
  router.get(
    '/assets/:name',
    withBundle((built, req, res, next) => {
      const asset = built.assets.get(String(req.params.name));
      if (!asset) return next();
      res
        .set({ ...ASSET_HEADERS, 'Content-Type': asset.contentType })
        .send(Buffer.from(asset.body.buffer, asset.body.byteOffset, asset.body.byteLength));
    }),
  );
  return router;
}
