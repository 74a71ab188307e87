import { createServer } from 'node:http';
import { StorageError } from '../storage/types.ts';
import { compose } from './compose.ts';
import { ConfigError, loadConfig } from './config.ts';
import { createLogger } from './logger.ts';
import { applyIdleTimeouts } from './timeouts.ts';

/** Whole shutdown budget; orchestrators commonly send SIGKILL 10 s after SIGTERM. */
const SHUTDOWN_MS = 9000;

function fail(message: string, code = 1): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

async function main(): Promise<void> {
  // The AWS SDK's multi-line notice about future Node versions would break one-line start-up errors.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) fail(`configuration error: ${error.message}`, 2);
    throw error;
  }
  const logger = createLogger(config.logLevel);
  const parts = compose(config, logger);
  logger.info(parts.summary);

  try {
    await parts.storage.init();
  } catch (error) {
    if (error instanceof StorageError) fail(`start-up failed: ${error.message}`);
    throw error;
  }

  await parts.start();
  // Metrics first: once the server says it is listening, everything it serves is up.
  const metrics = await parts.serveMetrics().catch((error: NodeJS.ErrnoException) => {
    const { host, port } = config.metrics?.listener ?? {};
    fail(
      `start-up failed: cannot listen on ${host}:${port} for metrics (${error.code}); set METRICS_PORT`,
    );
  });
  if (metrics) {
    logger.info(metrics, `metrics served at http://${metrics.host}:${metrics.port}/metrics`);
  }
  // Header and idle limits are checked every second rather than Node's default 30.
  const server = createServer({ connectionsCheckingInterval: 1000 }, parts.app);
  applyIdleTimeouts(server, config.requestIdleTimeoutSeconds, logger);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, resolve);
  }).catch((error: NodeJS.ErrnoException) =>
    fail(`start-up failed: cannot listen on ${config.host}:${config.port} (${error.code})`),
  );
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  logger.info({ port, host: config.host }, `listening on http://${config.host}:${port}`);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: no new connections, draining uploads in flight');
    const deadline = setTimeout(() => {
      logger.warn('shutdown deadline reached; closing remaining connections');
      server.closeAllConnections();
    }, SHUTDOWN_MS);
    deadline.unref();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    // In-flight PATCHes stop reading, persist what they received and unlock.
    const drained = await parts.locker.drain(SHUTDOWN_MS - 1000);
    server.closeIdleConnections();
    await closed;
    await parts.close();
    logger.info({ drained }, 'stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

process.on('unhandledRejection', (reason) => {
  process.stderr.write(
    `${JSON.stringify({ level: 50, msg: 'unhandled rejection', reason: String(reason) })}\n`,
  );
});

main().catch((error: Error) => fail(`start-up failed: ${error.message}`));
