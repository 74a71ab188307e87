import { buildServer } from './serverProcess.ts';
import { startServices, startVersity } from './services.ts';

/**
 * Builds the server from the current sources (the suites run what `npm start` runs), then
 * starts one MinIO, one Redis and one VersityGW (the second S3) for the whole run; tests find
 * them through TEST_* variables.
 */
export default async function globalSetup(): Promise<void> {
  buildServer();
  const [services, versity] = await Promise.all([startServices(), startVersity()]);
  process.env.TEST_S3_ENDPOINT = services.s3Endpoint;
  process.env.TEST_S3_ACCESS_KEY_ID = services.s3AccessKeyId;
  process.env.TEST_S3_SECRET_ACCESS_KEY = services.s3SecretAccessKey;
  process.env.TEST_REDIS_URL = services.redisUrl;
  process.env.TEST_S3_COMPAT_ENDPOINT = versity.endpoint;
  process.env.TEST_S3_COMPAT_ACCESS_KEY_ID = versity.accessKeyId;
  process.env.TEST_S3_COMPAT_SECRET_ACCESS_KEY = versity.secretAccessKey;
  Object.assign(globalThis, { __services: services, __versity: versity });
}
