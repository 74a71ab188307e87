import { z } from 'zod';
import { HOOK_TYPES, type HookType, TUSD_DEFAULT_HOOKS } from '../hooks/wire.ts';
import type { MetricsExposure } from '../metrics/exposure.ts';

/** Raised for a configuration value the server cannot run with; the message names the variable. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

const MIB = 1024 * 1024;

const integer = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const url = (protocols: string[]) =>
  z
    .string()
    .trim()
    .refine(
      (value) => {
        try {
          return protocols.includes(new URL(value).protocol);
        } catch {
          return false;
        }
      },
      `must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}`,
    );

const onOff = z.enum(['on', 'off'], { error: 'must be "on" or "off"' });

const hookEvents = z
  .string()
  .trim()
  .transform((value) => value.split(',').map((name) => name.trim()))
  .refine(
    (names) => names.every((name) => (HOOK_TYPES as readonly string[]).includes(name)),
    `must be a comma-separated list of ${HOOK_TYPES.join(', ')}`,
  )
  .transform((names) => [...new Set(names)] as HookType[]);

/** A comma-separated list of HTTP header names. */
const headerNames = z
  .string()
  .trim()
  .transform((value) =>
    value
      .split(',')
      .map((name) => name.trim())
      .filter(Boolean),
  )
  .refine(
    (names) => names.every((name) => /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(name)),
    'must be a comma-separated list of HTTP header names',
  );

const seconds = (max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+(\.\d+)?$/, 'must be a number of seconds')
    .transform(Number)
    .pipe(z.number().min(0).max(max));

/** An origin with an optional path prefix: where clients reach `/files/` (or S3) from outside. */
const publicUrl = url(['http:', 'https:'])
  .refine((value) => {
    // zod runs this check even when the URL check above failed.
    const parsed = URL.canParse(value) ? new URL(value) : undefined;
    return !parsed || (!parsed.search && !parsed.hash && !parsed.username && !parsed.password);
  }, 'must have no query, fragment or credentials')
  .transform((value) => value.replace(/\/+$/, ''));

// Every variable the server reads, with its default: the README's configuration table lists them.
const schema = z.object({
  PORT: integer(0, 65535).default(8080),
  HOST: z.string().trim().min(1, 'must not be empty').default('0.0.0.0'),
  S3_ENDPOINT: url(['http:', 'https:']).optional(),
  S3_BUCKET: z
    .string()
    .trim()
    .regex(
      /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
      'must be a valid S3 bucket name (3-63 chars: a-z, 0-9, ".", "-")',
    )
    .default('uploads'),
  S3_REGION: z.string().trim().min(1, 'must not be empty').default('us-east-1'),
  S3_ACCESS_KEY_ID: z.string().min(1).optional(),
  S3_SECRET_ACCESS_KEY: z.string().min(1).optional(),
  S3_PART_SIZE: integer(5 * MIB, 5 * 1024 * MIB).default(8 * MIB),
  // Where clients reach S3 when that is not S3_ENDPOINT (a proxy, a public name): presigned URLs.
  S3_PUBLIC_ENDPOINT: publicUrl.optional(),
  DOWNLOAD_REDIRECT: z
    .enum(['off', 'presigned'], { error: 'must be "off" or "presigned"' })
    .default('off'),
  // SigV4 query auth, X-Amz-Expires: "The minimum value you can set is 1, and the maximum is
  // 604800 (seven days)."
  DOWNLOAD_REDIRECT_TTL_SECONDS: integer(1, 604800).default(300),
  REDIS_URL: url(['redis:', 'rediss:']).optional(),
  DATA_DIR: z.string().trim().min(1, 'must not be empty').default('./data'),
  MAX_UPLOAD_SIZE: integer(0).default(0),
  // What one request with Upload-Checksum may carry: its body is spooled whole before it is stored.
  CHECKSUM_MAX_CHUNK_SIZE: integer(1).default(4 * 8 * MIB),
  UPLOAD_EXPIRY_SECONDS: integer(0).default(86400),
  EXPIRY_SWEEP_SECONDS: integer(1).default(600),
  LOCK_TTL_SECONDS: integer(1, 3600).default(10),
  DEDUPE: onOff.default('on'),
  DEDUPE_PROOF: onOff.default('off'),
  // Proofs per identity per 30 days: 10,000 candidates then take 34 windows (README, Dedupe).
  DEDUPE_PROOF_BUDGET: integer(1, 9999).default(300),
  DEDUPE_PROOF_FLOOR_MS: integer(0, 60_000).default(100),
  REQUEST_IDLE_TIMEOUT_SECONDS: integer(1, 3600).default(60),
  PUBLIC_URL: publicUrl.optional(),
  TRUST_PROXY: onOff.default('off'),
  AUTH_JWT_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  AUTH_JWKS_URL: url(['http:', 'https:']).optional(),
  AUTH_JWT_ISSUER: z.string().trim().min(1).optional(),
  AUTH_JWT_AUDIENCE: z.string().trim().min(1).optional(),
  AUTH_REQUIRE_EXP: onOff.default('on'),
  LINK_SIGNING_KEY: z.string().min(32, 'must be at least 32 characters').optional(),
  CORS_ORIGINS: z
    .string()
    .trim()
    .refine(
      (value) =>
        value === '*' ||
        value.split(',').every((origin) => {
          const trimmed = origin.trim();
          return URL.canParse(trimmed) && new URL(trimmed).origin === trimmed;
        }),
      'must be "*" or a comma-separated list of origins such as https://app.example.com',
    )
    .default('*'),
  CREATE_RATE_LIMIT: integer(1).default(3000),
  // Bodies being received at once (0 = no cap), counted per process: 500 idle ones measured
  // +38 MB and 1,067 fds, 10,200 made /healthz take seconds (README, Limits).
  MAX_OPEN_UPLOADS_PER_CLIENT: integer(0).default(32),
  MAX_OPEN_UPLOADS: integer(0).default(1000),
  HOOKS_HTTP_URL: url(['http:', 'https:']).optional(),
  HOOKS_ENABLED_EVENTS: hookEvents.default(TUSD_DEFAULT_HOOKS),
  HOOKS_HTTP_RETRY: integer(0, 100).default(3),
  HOOKS_HTTP_BACKOFF_SECONDS: seconds(3600).default(1),
  HOOKS_HTTP_TIMEOUT_SECONDS: seconds(3600).default(15),
  HOOKS_HTTP_FORWARD_HEADERS: headerNames.default([]),
  METRICS: onOff.default('on'),
  // The metrics' own listener; without METRICS_TOKEN it is where /metrics is served.
  METRICS_HOST: z.string().trim().min(1, 'must not be empty').default('127.0.0.1'),
  METRICS_PORT: integer(0, 65535).optional(),
  METRICS_TOKEN: z.string().min(32, 'must be at least 32 characters').optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

type Env = z.infer<typeof schema>;

export type Config = {
  port: number;
  host: string;
  s3?: {
    endpoint: string;
    bucket: string;
    region: string;
    credentials?: { accessKeyId: string; secretAccessKey: string };
    partSize: number;
    /** The S3 address clients use, when it differs from `endpoint`: presigned URLs name it. */
    publicEndpoint?: string;
  };
  /**
   * Whether a permitted download of a finished upload is answered with a redirect to a presigned
   * URL of its bytes (S3 only; the embedded store serves it itself), valid for `ttlSeconds`.
   */
  downloadRedirect?: { ttlSeconds: number };
  redisUrl?: string;
  dataDir: string;
  maxUploadSize: number;
  /** Bytes one request with Upload-Checksum may carry (it is spooled whole first). */
  checksumMaxChunkSize: number;
  uploadExpirySeconds: number;
  expirySweepSeconds: number;
  lockTtlSeconds: number;
  dedupe: boolean;
  /**
   * Whether a creation claiming a sha256 of content another owner stored may skip the transfer
   * by answering a challenge (POST /files/:id/proof). Off: only the owner's own content skips.
   */
  dedupeProof: boolean;
  /** Proofs one identity (`sub`, or client address key) may have verified per 30 days. */
  dedupeProofBudget: number;
  /** The least time before a verified proof is answered, before the per-byte part. */
  dedupeProofFloorMs: number;
  requestIdleTimeoutSeconds: number;
  /** Base of every absolute URL the server makes, without a trailing slash. */
  publicUrl?: string;
  /** Whether X-Forwarded-Proto / X-Forwarded-Host (and Forwarded) from the proxy are believed. */
  trustProxy: boolean;
  auth: {
    secret?: string;
    jwksUrl?: string;
    issuer?: string;
    audience?: string;
    /** Whether a token must carry `exp` (one without it would be valid forever). */
    requireExp: boolean;
  };
  linkSigningKey?: string;
  /** Exact origins allowed by CORS, or '*'. */
  corsOrigins: '*' | string[];
  /** Upload creations per minute per owner (per client address when anonymous). */
  createRateLimit: number;
  /** Requests receiving an upload body at once, per owner (client address key) and in total. */
  maxOpenUploads: { perClient: number; total: number };
  /** tusd-compatible HTTP hooks; undefined when HOOKS_HTTP_URL is unset. */
  hooks?: {
    url: string;
    events: HookType[];
    retries: number;
    backoffMs: number;
    timeoutMs: number;
    forwardHeaders: string[];
  };
  /**
   * Where GET /metrics is served: its own listener (loopback by default) and, with a token, the
   * public port too; undefined with METRICS=off.
   */
  metrics?: MetricsExposure;
  logLevel: Env['LOG_LEVEL'];
};

function describeIssue(issue: z.core.$ZodIssue, env: Record<string, string | undefined>): string {
  const name = String(issue.path[0] ?? 'environment');
  const value = env[name];
  let reason = issue.message;
  if (issue.code === 'too_small' && 'minimum' in issue)
    reason = `must be at least ${issue.minimum}`;
  if (issue.code === 'too_big' && 'maximum' in issue) reason = `must be at most ${issue.maximum}`;
  // Secrets are never echoed back, not even in an error.
  const shown = /SECRET|URL|KEY|TOKEN/.test(name) || value === undefined ? '' : ` (got "${value}")`;
  return `${name} ${reason}${shown}`;
}

/** The default metrics port when they have no token: OpenTelemetry's Prometheus exporter's. */
const METRICS_PORT = 9464;

/**
 * Without a token, metrics have a listener of their own (METRICS_PORT, default 9464, on
 * METRICS_HOST); with one, the public port serves them to its holder, plus METRICS_PORT if set.
 */
function metricsExposure(e: Env): MetricsExposure {
  const port = e.METRICS_PORT ?? (e.METRICS_TOKEN ? undefined : METRICS_PORT);
  if (port !== undefined && port !== 0 && port === e.PORT) {
    throw new ConfigError(`METRICS_PORT must differ from PORT (both are ${port})`);
  }
  return {
    listener: port === undefined ? undefined : { host: e.METRICS_HOST, port },
    token: e.METRICS_TOKEN,
  };
}

/** Reads and validates the environment; throws ConfigError naming the first bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // An empty variable counts as unset, as it does for most servers configured by env.
  const present = Object.fromEntries(
    Object.keys(schema.shape)
      .map((key) => [key, env[key]] as const)
      .filter(([, value]) => value !== undefined && value !== ''),
  );
  const parsed = schema.safeParse(present);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new ConfigError(first ? describeIssue(first, env) : 'invalid environment');
  }
  const e = parsed.data;
  if (Boolean(e.S3_ACCESS_KEY_ID) !== Boolean(e.S3_SECRET_ACCESS_KEY)) {
    throw new ConfigError(
      'S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY must be set together (or both left unset)',
    );
  }
  if (e.AUTH_JWT_SECRET && e.AUTH_JWKS_URL) {
    throw new ConfigError('AUTH_JWT_SECRET and AUTH_JWKS_URL are exclusive: set one of them');
  }
  return {
    port: e.PORT,
    host: e.HOST,
    s3: e.S3_ENDPOINT
      ? {
          endpoint: e.S3_ENDPOINT,
          bucket: e.S3_BUCKET,
          region: e.S3_REGION,
          credentials:
            e.S3_ACCESS_KEY_ID && e.S3_SECRET_ACCESS_KEY
              ? { accessKeyId: e.S3_ACCESS_KEY_ID, secretAccessKey: e.S3_SECRET_ACCESS_KEY }
              : undefined,
          partSize: e.S3_PART_SIZE,
          publicEndpoint: e.S3_PUBLIC_ENDPOINT,
        }
      : undefined,
    downloadRedirect:
      e.DOWNLOAD_REDIRECT === 'presigned'
        ? { ttlSeconds: e.DOWNLOAD_REDIRECT_TTL_SECONDS }
        : undefined,
    redisUrl: e.REDIS_URL,
    dataDir: e.DATA_DIR,
    maxUploadSize: e.MAX_UPLOAD_SIZE,
    checksumMaxChunkSize: e.CHECKSUM_MAX_CHUNK_SIZE,
    uploadExpirySeconds: e.UPLOAD_EXPIRY_SECONDS,
    expirySweepSeconds: e.EXPIRY_SWEEP_SECONDS,
    lockTtlSeconds: e.LOCK_TTL_SECONDS,
    dedupe: e.DEDUPE === 'on',
    dedupeProof: e.DEDUPE === 'on' && e.DEDUPE_PROOF === 'on',
    dedupeProofBudget: e.DEDUPE_PROOF_BUDGET,
    dedupeProofFloorMs: e.DEDUPE_PROOF_FLOOR_MS,
    requestIdleTimeoutSeconds: e.REQUEST_IDLE_TIMEOUT_SECONDS,
    publicUrl: e.PUBLIC_URL,
    trustProxy: e.TRUST_PROXY === 'on',
    auth: {
      secret: e.AUTH_JWT_SECRET,
      jwksUrl: e.AUTH_JWKS_URL,
      issuer: e.AUTH_JWT_ISSUER,
      audience: e.AUTH_JWT_AUDIENCE,
      requireExp: e.AUTH_REQUIRE_EXP === 'on',
    },
    linkSigningKey: e.LINK_SIGNING_KEY,
    corsOrigins:
      e.CORS_ORIGINS === '*' ? '*' : e.CORS_ORIGINS.split(',').map((origin) => origin.trim()),
    createRateLimit: e.CREATE_RATE_LIMIT,
    maxOpenUploads: { perClient: e.MAX_OPEN_UPLOADS_PER_CLIENT, total: e.MAX_OPEN_UPLOADS },
    hooks: e.HOOKS_HTTP_URL
      ? {
          url: e.HOOKS_HTTP_URL,
          events: e.HOOKS_ENABLED_EVENTS,
          retries: e.HOOKS_HTTP_RETRY,
          backoffMs: e.HOOKS_HTTP_BACKOFF_SECONDS * 1000,
          timeoutMs: e.HOOKS_HTTP_TIMEOUT_SECONDS * 1000,
          forwardHeaders: e.HOOKS_HTTP_FORWARD_HEADERS,
        }
      : undefined,
    metrics: e.METRICS === 'on' ? metricsExposure(e) : undefined,
    logLevel: e.LOG_LEVEL,
  };
}
