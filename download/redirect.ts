import type { OutgoingHttpHeaders } from 'node:http';
import type { PresignOptions } from '../storage/types.ts';

/**
 * Downloads sent to the backend instead of being streamed through the server: a URL of the
 * bytes that the backend answers itself (Range, If-Range and all), valid for a while.
 */
export type DownloadRedirect = {
  /** A URL for the request's method on the bytes under a content key. */
  urlOf(key: string, options: PresignOptions): Promise<string>;
  expiresInSeconds: number;
  /** Told of each redirect answered: its bytes are then the backend's to count (metrics). */
  onRedirect?: () => void;
};

/** The headers of a redirect to `location`, a URL whose query is a bearer credential. */
export function redirectHeaders(location: string): OutgoingHttpHeaders {
  return {
    // The server SHOULD generate a Location header field in the response containing a URI
    // reference for the different URI (RFC 9110 §15.4.8, 307 Temporary Redirect).
    Location: location,
    // The no-store response directive indicates that a cache MUST NOT store any part of either
    // the immediate request or the response (RFC 9111 §5.2.2.5): the URL grants the download.
    'Cache-Control': 'no-store',
    // The request that follows carries no Referer: S3 learns nothing of the page it came from.
    'Referrer-Policy': 'no-referrer',
    'Content-Length': 0,
  };
}
