import { StorageError } from '../storage/types.ts';
import { compose } from './compose.ts';
import { ConfigError, loadConfig } from './config.ts';
import { createLogger } from './logger.ts';

/** `npm run reindex`: rebuilds the dedupe index in Redis from the references storage holds. */
async function reindex(): Promise<number> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const config = loadConfig();
  const logger = createLogger(config.logLevel);
  const parts = compose(config, logger);
  try {
    await parts.storage.init();
    if (!parts.redis) {
      logger.info(
        'REDIS_URL is not set: the in-process index is rebuilt at every start; nothing to do',
      );
      return 0;
    }
    await parts.redis.connect();
    const entries = await parts.dedupe.reindex();
    logger.info({ entries }, `dedupe index rebuilt from ${parts.storage.description}`);
    return 0;
  } finally {
    await parts.close();
  }
}

reindex().then(
  (code) => process.exit(code),
  (error: Error) => {
    const known = error instanceof ConfigError || error instanceof StorageError;
    process.stderr.write(`reindex failed: ${known ? error.message : String(error.message)}\n`);
    process.exit(1);
  },
);
