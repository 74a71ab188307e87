import type { Upload } from '@tus/utils';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** The kinds of dedupe hit (`tus_dedupe_hits_total{kind}`). */
const DEDUPE_HIT_KINDS = ['owner', 'proof', 'content'] as const;

/** The operations the server's S3 stores send (`tus_s3_request_duration_seconds{operation}`). */
export const S3_OPERATIONS = [
  'CreateMultipartUpload',
  'UploadPart',
  'UploadPartCopy',
  'CompleteMultipartUpload',
  'AbortMultipartUpload',
  'ListParts',
  'GetObject',
  'HeadObject',
  'PutObject',
  'DeleteObject',
  'DeleteObjects',
  'ListObjectsV2',
  'HeadBucket',
  'CreateBucket',
] as const;

/**
 * The request series every instance has from start-up (method, route, status): each tus route's
 * success, and its 500 so that an error rate over them is 0 rather than empty.
 */
const KNOWN_REQUESTS: ReadonlyArray<readonly [string, string, number]> = [
  ['OPTIONS', '/files', 204],
  ['POST', '/files', 201],
  ['POST', '/files', 500],
  ['HEAD', '/files/:id', 200],
  ['HEAD', '/files/:id', 500],
  ['PATCH', '/files/:id', 204],
  ['PATCH', '/files/:id', 500],
  ['DELETE', '/files/:id', 204],
  ['DELETE', '/files/:id', 500],
  ['GET', '/files/:id', 200],
  ['GET', '/files/:id', 500],
  ['POST', '/files/:id/links', 201],
  ['GET', '/healthz', 200],
  ['GET', '/readyz', 200],
];

/** Label values known when the server starts, beyond the ones Metrics itself defines. */
export type KnownLabels = {
  /** The hook types a hook can be (`hooktype`). */
  hookTypes: readonly string[];
  /** The S3 operations the storage sends (`operation`); none on the file store. */
  s3Operations: readonly string[];
};

/**
 * The server's Prometheus metrics (prom-client), one registry per process, served at /metrics.
 * Names follow the contract; labels stay few and bounded (routes are templates, never ids).
 */
export class Metrics {
  readonly registry = new Registry();

  private readonly created = this.counter('tus_uploads_created_total', 'Uploads created');
  private readonly finished = this.counter('tus_uploads_finished_total', 'Uploads finished');
  private readonly terminated = this.counter(
    'tus_uploads_terminated_total',
    'Uploads terminated (DELETE, or stopped by a hook)',
  );
  private readonly received = this.counter(
    'tus_bytes_received_total',
    'Upload bytes accepted into storage (PATCH and creation with upload)',
  );
  private readonly served = this.counter('tus_bytes_served_total', 'Download bytes sent');
  // A redirected download's bytes are S3's to count, not tus_bytes_served_total's.
  private readonly redirects = this.counter(
    'tus_download_redirects_total',
    'Downloads answered with a 307 to a presigned S3 URL (DOWNLOAD_REDIRECT=presigned)',
  );
  private readonly dedupeHits = new Counter({
    name: 'tus_dedupe_hits_total',
    help: 'Dedupe hits: creations finished without a transfer (owner, proof), and finished uploads that share stored content (content)',
    labelNames: ['kind'],
    registers: [this.registry],
  });
  private readonly dedupeMisses = this.counter(
    'tus_dedupe_misses_total',
    'Finished uploads whose content was not stored yet',
  );
  private readonly lockWait = new Histogram({
    name: 'tus_lock_wait_seconds',
    help: 'Time to acquire an upload lock (or a dedupe content lock)',
    buckets: [0.001, 0.005, 0.025, 0.1, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  private readonly releaseRequests = this.counter(
    'tus_lock_release_requests_total',
    'Requests asked to release their lock because another request wants it',
  );
  private readonly requestDuration = new Histogram({
    name: 'tus_request_duration_seconds',
    help: 'HTTP request duration by method, route and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers: [this.registry],
  });
  private readonly s3Duration = new Histogram({
    name: 'tus_s3_request_duration_seconds',
    help: 'S3 request duration by operation',
    labelNames: ['operation'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    // Registered only when the storage is S3 (constructor).
    registers: [],
  });
  private readonly hookInvocations = new Counter({
    name: 'tus_hook_invocations_total',
    help: 'Hook deliveries started, by hook type',
    labelNames: ['hooktype'],
    registers: [this.registry],
  });
  private readonly hookErrors = new Counter({
    name: 'tus_hook_errors_total',
    help: 'Hook deliveries that failed after their retries, by hook type',
    labelNames: ['hooktype'],
    registers: [this.registry],
  });
  private readonly active = new Gauge({
    name: 'tus_active_uploads',
    help: 'Requests writing upload bytes right now',
    registers: [this.registry],
  });

  constructor({ hookTypes, s3Operations }: KnownLabels) {
    collectDefaultMetrics({ register: this.registry });
    // A series that is missing cannot be told from a broken one, and rate() over it is empty
    // (Prometheus' guidance): every label value known at start-up is there from the first scrape.
    for (const kind of DEDUPE_HIT_KINDS) this.dedupeHits.inc({ kind }, 0);
    for (const hooktype of hookTypes) {
      this.hookInvocations.inc({ hooktype }, 0);
      this.hookErrors.inc({ hooktype }, 0);
    }
    if (s3Operations.length > 0) this.registry.registerMetric(this.s3Duration);
    for (const operation of s3Operations) this.s3Duration.zero({ operation });
    for (const [method, route, status] of KNOWN_REQUESTS) {
      this.requestDuration.zero({ method, route, status: String(status) });
    }
  }

  private counter(name: string, help: string): Counter {
    return new Counter({ name, help, registers: [this.registry] });
  }

  /** Lifecycle listener: creations, finishes and terminations, whichever route did them. */
  readonly lifecycle = {
    created: (_req: object, _upload: Upload) => this.created.inc(),
    finished: (_req: object, _upload: Upload) => this.finished.inc(),
    terminated: (_req: object, _upload: Upload) => this.terminated.inc(),
  };

  readonly dedupe = {
    hit: (kind: (typeof DEDUPE_HIT_KINDS)[number]) => this.dedupeHits.inc({ kind }),
    miss: () => this.dedupeMisses.inc(),
  };

  readonly locks = {
    waited: (seconds: number) => this.lockWait.observe(seconds),
    releaseRequested: () => this.releaseRequests.inc(),
  };

  readonly hooks = {
    invoked: (hooktype: string) => this.hookInvocations.inc({ hooktype }),
    failed: (hooktype: string) => this.hookErrors.inc({ hooktype }),
  };

  readonly http = {
    request: (method: string, route: string, status: number, seconds: number) =>
      this.requestDuration.observe({ method, route, status: String(status) }, seconds),
    bytesReceived: (bytes: number) => this.received.inc(bytes),
    bytesServed: (bytes: number) => this.served.inc(bytes),
    downloadRedirected: () => this.redirects.inc(),
    uploading: (delta: 1 | -1) => this.active.inc(delta),
  };

  s3Request = (operation: string, seconds: number): void =>
    this.s3Duration.observe({ operation }, seconds);
}
