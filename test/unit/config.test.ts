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
    [{ REQUEST_IDLE_TIMEOUT_SECONDS: '0' }, /^REQUEST_IDLE_TIMEOUT_SECONDS must be at least 1/],
    [{ PUBLIC_URL: 'uploads.example.com' }, /^PUBLIC_URL must be a URL starting with http:/],
    [{ PUBLIC_URL: 'https://example.com/?a=1' }, /^PUBLIC_URL must have no query/],
    [{ TRUST_PROXY: 'yes' }, /^TRUST_PROXY must be "on" or "off"/],
    [
      { S3_ACCESS_KEY_ID: 'only-half' },
      /S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY must be set together/,
    ],
  ])('%p is rejected with a message naming the variable', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  test('PUBLIC_URL loses its trailing slash; TRUST_PROXY and the idle timeout default off and 60 s', () => {
    expect(loadConfig({ PUBLIC_URL: 'https://u.example.com/base/' }).publicUrl).toBe(
      'https://u.example.com/base',
    );
    expect(loadConfig({})).toMatchObject({ trustProxy: false, requestIdleTimeoutSeconds: 60 });
  });

  test('a bad secret is reported without its value', () => {
    const env = { REDIS_URL: 'ftp://user:hunter2@host' };
    expect(() => loadConfig(env)).toThrow(/REDIS_URL/);
    expect(() => loadConfig(env)).not.toThrow(/hunter2/);
  });
});
