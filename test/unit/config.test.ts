import { describe, expect, test } from '@jest/globals';
import { ConfigError, loadConfig } from '../../server/config.ts';

describe('loadConfig', () => {
  test('no variables give the embedded defaults of the contract', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 8080,
      host: '0.0.0.0',
      dataDir: './data',
      maxUploadSize: 0,
      uploadExpirySeconds: 86400,
      dedupe: true,
    });
    expect(config.s3).toBeUndefined();
    expect(config.redisUrl).toBeUndefined();
  });

  test('S3_ENDPOINT selects S3 with the contract defaults', () => {
    const config = loadConfig({ S3_ENDPOINT: 'http://127.0.0.1:9000' });
    expect(config.s3).toEqual({
      endpoint: 'http://127.0.0.1:9000',
      bucket: 'uploads',
      region: 'us-east-1',
      credentials: undefined,
      partSize: 8 * 1024 * 1024,
    });
  });

  test.each([
    [{ PORT: 'abc' }, /^PORT .*"abc"/],
    [{ PORT: '70000' }, /^PORT must be at most 65535/],
    [{ S3_PART_SIZE: '1000' }, /^S3_PART_SIZE must be at least 5242880/],
    [{ S3_ENDPOINT: 'minio:9000' }, /^S3_ENDPOINT must be a URL/],
    [{ S3_BUCKET: 'Bad_Bucket' }, /^S3_BUCKET must be a valid S3 bucket name/],
    [{ REDIS_URL: 'http://x' }, /^REDIS_URL must be a URL starting with redis:/],
    [{ MAX_UPLOAD_SIZE: '-1' }, /^MAX_UPLOAD_SIZE/],
    [{ UPLOAD_EXPIRY_SECONDS: '1.5' }, /^UPLOAD_EXPIRY_SECONDS/],
    [{ DEDUPE: 'yes' }, /^DEDUPE must be "on" or "off"/],
    // More than 9,999 proofs per 30 days would let one identity sweep a 4-digit secret within them.
    [{ DEDUPE_PROOF_BUDGET: '10000' }, /^DEDUPE_PROOF_BUDGET must be at most 9999/],
    [{ DEDUPE_PROOF_BUDGET: '0' }, /^DEDUPE_PROOF_BUDGET must be at least 1/],
    [{ DEDUPE_PROOF_FLOOR_MS: '-5' }, /^DEDUPE_PROOF_FLOOR_MS/],
    [{ REQUEST_IDLE_TIMEOUT_SECONDS: '0' }, /^REQUEST_IDLE_TIMEOUT_SECONDS must be at least 1/],
    [{ PUBLIC_URL: 'uploads.example.com' }, /^PUBLIC_URL must be a URL starting with http:/],
    [{ PUBLIC_URL: 'https://example.com/?a=1' }, /^PUBLIC_URL must have no query/],
    [{ TRUST_PROXY: 'yes' }, /^TRUST_PROXY must be "on" or "off"/],
    [{ AUTH_REQUIRE_EXP: 'yes' }, /^AUTH_REQUIRE_EXP must be "on" or "off"/],
    [{ HOOKS_HTTP_URL: 'hooks.example.com' }, /^HOOKS_HTTP_URL must be a URL starting with http:/],
    [
      { HOOKS_ENABLED_EVENTS: 'pre-create,post-upload' },
      /^HOOKS_ENABLED_EVENTS must be a comma-separated list of pre-create/,
    ],
    [{ HOOKS_HTTP_RETRY: '-1' }, /^HOOKS_HTTP_RETRY/],
    [
      { HOOKS_HTTP_BACKOFF_SECONDS: '1s' },
      /^HOOKS_HTTP_BACKOFF_SECONDS must be a number of seconds/,
    ],
    [
      { HOOKS_HTTP_FORWARD_HEADERS: 'X-Ok, Bad Header' },
      /^HOOKS_HTTP_FORWARD_HEADERS must be a comma-separated list/,
    ],
    [{ METRICS: 'true' }, /^METRICS must be "on" or "off"/],
    [
      { S3_ACCESS_KEY_ID: 'only-half' },
      /S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY must be set together/,
    ],
  ])('%p is rejected with a message naming the variable', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  test('dedupe proofs: off by default; 300 per identity per 30 days, answered 100 ms at the earliest', () => {
    expect(loadConfig({})).toMatchObject({
      dedupeProof: false,
      dedupeProofBudget: 300,
      dedupeProofFloorMs: 100,
    });
    expect(
      loadConfig({ DEDUPE_PROOF: 'on', DEDUPE_PROOF_BUDGET: '5', DEDUPE_PROOF_FLOOR_MS: '0' }),
    ).toMatchObject({ dedupeProof: true, dedupeProofBudget: 5, dedupeProofFloorMs: 0 });
  });

  test('PUBLIC_URL loses its trailing slash; TRUST_PROXY and the idle timeout default off and 60 s', () => {
    expect(loadConfig({ PUBLIC_URL: 'https://u.example.com/base/' }).publicUrl).toBe(
      'https://u.example.com/base',
    );
    expect(loadConfig({})).toMatchObject({ trustProxy: false, requestIdleTimeoutSeconds: 60 });
  });

  test.each([
    [{}, true],
    [{ AUTH_REQUIRE_EXP: 'on' }, true],
    [{ AUTH_REQUIRE_EXP: 'off' }, false],
  ])('AUTH_REQUIRE_EXP %p -> auth.requireExp %p', (env, requireExp) => {
    expect(loadConfig({ AUTH_JWT_SECRET: 's'.repeat(32), ...env }).auth.requireExp).toBe(
      requireExp,
    );
  });

  test("hooks: off without HOOKS_HTTP_URL; with it, tusd's defaults", () => {
    expect(loadConfig({}).hooks).toBeUndefined();
    expect(loadConfig({ HOOKS_HTTP_URL: 'http://app:3000/hooks' }).hooks).toEqual({
      url: 'http://app:3000/hooks',
      events: ['pre-create', 'post-create', 'post-receive', 'post-terminate', 'post-finish'],
      retries: 3,
      backoffMs: 1000,
      timeoutMs: 15000,
      forwardHeaders: [],
    });
    const chosen = loadConfig({
      HOOKS_HTTP_URL: 'https://app/hooks',
      HOOKS_ENABLED_EVENTS: 'pre-finish, post-finish,pre-finish',
      HOOKS_HTTP_BACKOFF_SECONDS: '0.5',
      HOOKS_HTTP_FORWARD_HEADERS: 'Authorization, X-Request-Id',
      METRICS: 'off',
    });
    expect(chosen.hooks).toMatchObject({
      events: ['pre-finish', 'post-finish'],
      backoffMs: 500,
      forwardHeaders: ['Authorization', 'X-Request-Id'],
    });
    expect(chosen.metrics).toBeUndefined();
  });

  const TOKEN = 'm'.repeat(32);
  test.each([
    [{}, { listener: { host: '127.0.0.1', port: 9464 }, token: undefined }],
    [{ METRICS_PORT: '0' }, { listener: { host: '127.0.0.1', port: 0 }, token: undefined }],
    [
      { METRICS_HOST: '0.0.0.0', METRICS_PORT: '9100' },
      { listener: { host: '0.0.0.0', port: 9100 }, token: undefined },
    ],
    // With a token the public port serves them; their own listener only when asked for.
    [{ METRICS_TOKEN: TOKEN }, { listener: undefined, token: TOKEN }],
    [
      { METRICS_TOKEN: TOKEN, METRICS_PORT: '9100' },
      { listener: { host: '127.0.0.1', port: 9100 }, token: TOKEN },
    ],
    [{ METRICS: 'off', METRICS_TOKEN: TOKEN }, undefined],
  ])('metrics exposure of %p', (env, expected) => {
    expect(loadConfig(env).metrics).toEqual(expected);
  });

  test.each([
    [{ METRICS_PORT: '8080' }, 'METRICS_PORT must differ from PORT (both are 8080)'],
    [{ PORT: '9464' }, 'METRICS_PORT must differ from PORT (both are 9464)'],
    [{ METRICS_PORT: '70000' }, 'METRICS_PORT must be at most 65535 (got "70000")'],
    [{ METRICS_TOKEN: 'short-secret' }, 'METRICS_TOKEN must be at least 32'],
  ])('metrics: %p is refused', (env, message) => {
    expect(() => loadConfig(env)).toThrow(message);
    // The token is never echoed.
    expect(() => loadConfig(env)).not.toThrow(/short-secret/);
  });

  test('a bad secret is reported without its value', () => {
    const env = { REDIS_URL: 'ftp://user:hunter2@host' };
    expect(() => loadConfig(env)).toThrow(/REDIS_URL/);
    expect(() => loadConfig(env)).not.toThrow(/hunter2/);
  });
});
