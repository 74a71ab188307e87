import { buildServer } from './serverProcess.ts';
import { startServices } from './services.ts';

/**
 * Builds the server from the current sources (the suites run what `npm start` runs), then
 * starts one MinIO and one Redis for the whole run; tests find them through TEST_* variables.
 */
export default async function globalSetup(): Promise<void> {
  buildServer();
  const services = await startServices();
  process.env.TEST_S3_ENDPOINT = services.s3Endpoint;
  process.env.TEST_S3_ACCESS_KEY_ID = services.s3AccessKeyId;
  process.env.TEST_S3_SECRET_ACCESS_KEY = services.s3SecretAccessKey;
  process.env.TEST_REDIS_URL = services.redisUrl;
  (globalThis as { __services?: typeof services }).__services = services;
}
