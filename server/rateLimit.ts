import { TUS_RESUMABLE } from '@tus/utils';
import type { Request, RequestHandler } from 'express';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import {
  type RateLimiterAbstract,
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
} from 'rate-limiter-flexible';
import { factsOf } from '../auth/context.ts';
import { ERRORS, outageOf, sendJsonError, unavailableEntry } from '../errors/catalogue.ts';

/**
 * CREATE_RATE_LIMIT: upload creations per minute per owner (per client address when
 * anonymous), counted in Redis when configured so that every instance shares the budget. Over
 * it: 429 with Retry-After, nothing created.
 */
export function creationRateLimit(options: {
  perMinute: number;
  redis?: Redis;
  /** Redis key prefix of the counters. */
  keyPrefix: string;
  logger: Logger;
}): RequestHandler {
  const { perMinute, redis, keyPrefix, logger } = options;
  const limiter: RateLimiterAbstract = redis
    ? new RateLimiterRedis({
        storeClient: redis,
        keyPrefix,
        points: perMinute,
        duration: 60,
        // Redis away: the creation would fail at its lock anyway; answer 503 here.
        insuranceLimiter: undefined,
      })
    : new RateLimiterMemory({ points: perMinute, duration: 60 });
  const keyOf = (req: Request) => {
    const owner = factsOf(req).owner;
    return owner ? `sub:${owner}` : `ip:${req.ip ?? req.socket.remoteAddress ?? 'unknown'}`;
  };
  return async (req, res, next) => {
    if (req.method !== 'POST') return next();
    try {
      await limiter.consume(keyOf(req));
      next();
    } catch (rejection) {
      if (rejection instanceof RateLimiterRes) {
        const seconds = Math.max(1, Math.ceil(rejection.msBeforeNext / 1000));
        return sendJsonError(res, ERRORS.RATE_LIMITED, {
          'Retry-After': String(seconds),
          'Tus-Resumable': TUS_RESUMABLE,
        });
      }
      const outage = outageOf(rejection) ?? unavailableEntry('redis');
      logger.error({ err: rejection }, 'rate limit: redis unavailable');
      sendJsonError(res, outage, { 'Tus-Resumable': TUS_RESUMABLE });
    }
  };
}
