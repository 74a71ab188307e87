import type { OutgoingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Request, Response } from 'express';
import type { Logger } from 'pino';
import { answerError, HttpError } from '../errors/answer.ts';
import { ERRORS, type ErrorEntry, outageOf } from '../errors/catalogue.ts';
import { contextOf } from '../request/context.ts';
import type { ByteRange, StoredContent, UploadStorage } from '../storage/types.ts';
import { UPLOAD_ID } from '../storage/uploadId.ts';
import { evaluatePreconditions, ifRangeHolds, type Validators } from './conditions.ts';
import { contentDispositionOf, contentTypeOf } from './headers.ts';
import { multipartByteranges } from './multipart.ts';
import { contentRange, parseRangeHeader, rangeLength, unsatisfiedRange } from './ranges.ts';
import { type DownloadRedirect, redirectHeaders } from './redirect.ts';

/** The read side of storage: all a download needs. */
export type ContentSource = Pick<UploadStorage, 'stat' | 'readContent'>;

/** Opens a response body; `signal` fires when the client goes away. */
type OpenBody = (signal: AbortSignal) => Promise<Readable>;

/** A response decided but not yet sent. */
type Reply = {
  status: number;
  headers: OutgoingHttpHeaders;
  /** The body's bytes; absent for HEAD and 304. */
  open?: OpenBody;
  /** A refusal instead of content: it leaves through the one error exit (errors/answer.ts). */
  refusal?: HttpError;
};

/** A client that went away mid-response: nothing to report. */
function isClientGone(error: unknown): boolean {
  const err = error as { code?: string; name?: string };
  return err.code === 'ERR_STREAM_PREMATURE_CLOSE' || err.name === 'AbortError';
}

function errorReply(entry: ErrorEntry, headers: OutgoingHttpHeaders = {}): Reply {
  const named = Object.fromEntries(
    Object.entries(headers).flatMap(([name, value]) =>
      value === undefined ? [] : [[name, String(value)]],
    ),
  );
  return { status: entry.status_code, headers: {}, refusal: HttpError.of(entry, named) };
}

/** An outage is a 503 the client may retry, never a 404 that looks like a deleted file. */
function unavailableReply(error: unknown): Reply {
  return errorReply(outageOf(error) ?? ERRORS.STORAGE_UNAVAILABLE);
}

/**
 * GET and HEAD of a finished upload's bytes, with ranges and conditional requests (RFC 9110
 * §13, §14). It asks storage for bytes and streams them; it knows nothing of tus.
 */
export class DownloadHandler {
  constructor(
    private readonly storage: ContentSource,
    private readonly logger: Logger,
    /** Told how many body bytes each download sent (metrics). */
    private readonly onServed?: (bytes: number) => void,
    /** When set, a permitted download of finished content is redirected to storage instead. */
    private readonly redirect?: DownloadRedirect,
  ) {}

  /** The Express route handler; never rejects, so Express never renders an error page. */
  readonly handle = async (req: Request, res: Response): Promise<void> => {
    try {
      await this.send(req, res);
    } catch (error) {
      answerError(req, res, error, {
        failed: (err) => this.logger.error({ err, uploadId: req.params.id }, 'download failed'),
      });
    }
  };

  async send(req: Request, res: Response): Promise<void> {
    const id = req.params.id;
    // Ids are the server's own, so anything else (`..`, `%2F`, NUL) never reaches storage.
    if (typeof id !== 'string' || !UPLOAD_ID.test(id)) {
      return this.deliver(req, res, undefined, errorReply(ERRORS.NOT_FOUND));
    }
    let content: StoredContent | undefined;
    try {
      content = await this.storage.stat(id);
    } catch (error) {
      this.logger.error({ err: error, uploadId: id }, 'download: storage stat failed');
      return this.deliver(req, res, id, unavailableReply(error));
    }
    // Unfinished, unknown, expired and deleted uploads have no content to download.
    if (!content) return this.deliver(req, res, id, errorReply(ERRORS.NOT_FOUND));
    if (!this.redirect) return this.deliver(req, res, id, this.replyFor(req, content));
    let reply: Reply;
    try {
      reply = await this.redirectFor(req, content, this.redirect);
    } catch (error) {
      this.logger.error({ err: error, uploadId: id }, 'download: presigning failed');
      return this.deliver(req, res, id, unavailableReply(error));
    }
    this.redirect.onRedirect?.();
    return this.deliver(req, res, id, reply);
  }

  /**
   * A 307 to storage's own URL of the bytes, with the headers a proxied download would carry.
   * Conditions and ranges are storage's to answer: the client sends them on, and the validators
   * it compares against are the ones storage gave it.
   */
  private async redirectFor(
    req: Request,
    content: StoredContent,
    redirect: DownloadRedirect,
  ): Promise<Reply> {
    const contentType = contentTypeOf(content.metadata);
    // A signed link's download is redirected by a URL that expires with the link, not later:
    // the presigned URL is a credential of its own.
    const { linkExpires } = contextOf(req);
    const linkLeft =
      linkExpires === undefined ? Number.POSITIVE_INFINITY : linkExpires - Date.now() / 1000;
    const location = await redirect.urlOf(content.key, {
      method: req.method === 'HEAD' ? 'HEAD' : 'GET',
      expiresInSeconds: Math.max(1, Math.floor(Math.min(redirect.expiresInSeconds, linkLeft))),
      contentType,
      contentDisposition: contentDispositionOf(content.metadata, contentType),
    });
    // The user agent MUST NOT change the request method if it performs an automatic
    // redirection to that URI (RFC 9110 §15.4.8): a HEAD stays a HEAD, its URL signed for HEAD.
    return { status: 307, headers: redirectHeaders(location) };
  }

  /** Decides status, headers and body from the request's conditions and ranges. */
  private replyFor(req: Request, content: StoredContent): Reply {
    const { size } = content;
    const validators: Validators = {
      etag: content.etag,
      lastModified: content.lastModified.toUTCString(),
    };
    const headers: OutgoingHttpHeaders = {
      // A server that supports range requests MAY send Accept-Ranges: bytes.
      'Accept-Ranges': 'bytes',
      ETag: validators.etag,
      // Caches may keep a copy but must ask again, so a deleted upload is not served on.
      'Cache-Control': 'no-cache',
      // Whatever a download is, it runs nothing on this origin: no script, no plugin, no form,
      // and no same-origin access even when opened as a page (CSP sandbox without allow-*).
      'Content-Security-Policy': 'sandbox',
      // The declared type is the only one: a browser must not guess HTML from the bytes.
      'X-Content-Type-Options': 'nosniff',
    };

    const outcome = evaluatePreconditions(req.headers, validators);
    if (outcome === 'failed') return errorReply(ERRORS.PRECONDITION_FAILED, headers);
    // The server generating a 304 response MUST generate any of the following header fields
    // that would have been sent in a 200 (OK) response: ... ETag ... Cache-Control.
    if (outcome === 'not-modified') return { status: 304, headers };

    // A server MUST ignore a Range header field received with a request method that is
    // unrecognized or for which range handling is not defined. For this specification, GET
    // is the only method for which range handling is defined.
    // If the If-Range condition is false, the recipient MUST ignore the Range header field.
    const ranged = req.method === 'GET' && ifRangeHolds(req.get('if-range'), validators);
    const wanted = parseRangeHeader(ranged ? req.headers.range : undefined, size);
    if (wanted.kind === 'unsatisfiable') {
      // For byte ranges, a sender SHOULD generate a Content-Range header field with an
      // unsatisfied-range value in a 416 (Range Not Satisfiable) response.
      headers['Content-Range'] = unsatisfiedRange(size);
      return errorReply(ERRORS.RANGE_NOT_SATISFIABLE, headers);
    }

    const contentType = contentTypeOf(content.metadata);
    Object.assign(headers, {
      'Last-Modified': validators.lastModified,
      'Content-Type': contentType,
      'Content-Disposition': contentDispositionOf(content.metadata, contentType),
    });
    const withBody = (open: OpenBody) => (req.method === 'HEAD' ? undefined : open);
    const read = (range?: ByteRange) => (signal: AbortSignal) =>
      this.read(content.key, range, signal);

    if (wanted.kind === 'whole') {
      return {
        status: 200,
        headers: { ...headers, 'Content-Length': size },
        open: withBody(read()),
      };
    }
    const [first, ...more] = wanted.ranges;
    if (first && more.length === 0) {
      // A server MUST NOT generate a multipart response to a request for a single range.
      return {
        status: 206,
        headers: {
          ...headers,
          'Content-Range': contentRange(first, size),
          'Content-Length': rangeLength(first),
        },
        open: withBody(read(first)),
      };
    }
    const multipart = multipartByteranges(wanted.ranges, size, contentType);
    return {
      status: 206,
      headers: {
        ...headers,
        'Content-Type': multipart.contentType,
        'Content-Length': multipart.length,
      },
      open: withBody(async (signal) =>
        multipart.body((range) => this.read(content.key, range, signal)),
      ),
    };
  }

  /** Reads the bytes stat found (no second record lookup), unless the client has already gone. */
  private async read(
    key: string,
    range: ByteRange | undefined,
    signal: AbortSignal,
  ): Promise<Readable> {
    signal.throwIfAborted();
    return this.storage.readContent(key, range, signal);
  }

  /** Sends the reply; streams the body with backpressure and stops storage when the client goes. */
  private async deliver(
    req: Request,
    res: Response,
    id: string | undefined,
    reply: Reply,
  ): Promise<void> {
    if (reply.refusal) return answerError(req, res, reply.refusal);
    if (!reply.open) {
      res.writeHead(reply.status, reply.headers).end();
      return;
    }
    const clientGone = new AbortController();
    res.once('close', () => clientGone.abort());
    let body: Readable;
    try {
      // Opened before any header is sent, so a read that fails can still be answered.
      body = await reply.open(clientGone.signal);
    } catch (error) {
      if (clientGone.signal.aborted) return;
      // The upload may have been deleted since it was looked at: that is a 404, not a failure.
      const stillThere = id && (await this.storage.stat(id).catch(() => 'unknown' as const));
      if (!stillThere) return this.deliver(req, res, id, errorReply(ERRORS.NOT_FOUND));
      this.logger.error({ err: error, uploadId: id }, 'download: read failed');
      return this.deliver(req, res, id, unavailableReply(error));
    }
    // Whether the body failed by itself, before the client went away. Aborting the storage read
    // when the client goes also fails the body: on Node 22+ that error can win the pipeline.
    let failedFirst = false;
    body.once('error', () => {
      failedFirst ||= !clientGone.signal.aborted;
    });
    let served = 0;
    if (this.onServed) {
      body.on('data', (chunk: Buffer) => {
        served += chunk.length;
      });
    }
    try {
      res.writeHead(reply.status, reply.headers);
      await pipeline(body, res);
    } catch (error) {
      if (isClientGone(error) || (clientGone.signal.aborted && !failedFirst)) return;
      // Headers are out: all that is left is to cut the response short, so the client knows.
      this.logger.error({ err: error, uploadId: id }, 'download: streaming failed');
      res.destroy();
    } finally {
      if (served > 0) this.onServed?.(served);
    }
  }
}
