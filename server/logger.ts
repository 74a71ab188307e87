import pino from 'pino';
import { currentContext } from '../request/context.ts';

/**
 * JSON logs on stdout; credentials and cookies are redacted wherever they might appear. A line
 * logged while a request is served carries its id (`requestId`), whichever logger wrote it:
 * the request's own (pino-http binds the id to it) or the server's, through the request context.
 */
export function createLogger(level: pino.LevelWithSilent = 'info'): pino.Logger {
  return pino({
    level,
    base: undefined,
    mixin(_line, _level, logger) {
      const context = currentContext();
      if (!context || logger.bindings().requestId !== undefined) return {};
      return { requestId: context.requestId };
    },
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers.cookie',
        'res.headers["set-cookie"]',
        '*.secretAccessKey',
        '*.S3_SECRET_ACCESS_KEY',
      ],
      censor: '[redacted]',
    },
  });
}

export type Logger = pino.Logger;
