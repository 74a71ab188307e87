/** The upload id in a `/files/<id>…` path or URL, if there is one. */
export function uploadIdIn(url: string | undefined): string | undefined {
  return /\/files\/([^/?]+)/.exec(url ?? '')?.[1];
}

/**
 * GET, and a HEAD without Tus-Resumable, download a finished upload; a HEAD with it is the tus
 * HEAD, and a request with X-HTTP-Method-Override is always tus's.
 */
export function isDownloadRequest(req: {
  method: string;
  get(name: string): string | undefined;
}): boolean {
  if (req.get('x-http-method-override') !== undefined) return false;
  return req.method === 'GET' || (req.method === 'HEAD' && req.get('tus-resumable') === undefined);
}
