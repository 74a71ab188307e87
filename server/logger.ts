import pino from 'pino';

/** JSON logs on stdout; credentials and cookies are redacted wherever they might appear. */
export function createLogger(level: pino.LevelWithSilent = 'info'): pino.Logger {
  return pino({
    level,
    base: undefined,
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
