import { isIPv4, isIPv6 } from 'node:net';
import { TUS_RESUMABLE } from '@tus/utils';
import type { Request, RequestHandler } from 'express';
import type { Redis } from 'ioredis';
import ipaddr from 'ipaddr.js';
import type { Logger } from 'pino';
import {
  type RateLimiterAbstract,
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
} from 'rate-limiter-flexible';
import { answerError } from '../errors/answer.ts';
import { ERRORS, outageOf, sendJsonError, unavailableEntry } from '../errors/catalogue.ts';
import { contextOf } from '../request/context.ts';

/**
 * The rate-limit key of an anonymous client's address: an IPv4 address as it is (also when it
 * arrives IPv4-mapped, `::ffff:1.2.3.4`), an IPv6 address by its /64 prefix — one subscriber
 * usually holds a whole /64 and could otherwise pick a fresh address per creation. Anything that
 * is no IP address (a zone id is dropped first) is kept as it is.
 */
export function clientKeyOf(address: string): string {
  const bare = address.split('%', 1)[0] ?? address;
  if (isIPv4(bare)) return bare;
  if (!isIPv6(bare)) return address;
  // The URL parser writes an embedded dotted IPv4 (`64:ff9b::1.2.3.4`) as hex groups, which
  // ipaddr.js 1.x reads only in the mapped form.
  const parsed = ipaddr.IPv6.parse(new URL(`http://[${bare}]`).hostname.slice(1, -1));
  if (parsed.isIPv4MappedAddress()) return parsed.toIPv4Address().toString();
  return `${parsed.parts
    .slice(0, 4)
    .map((group) => group.toString(16))
    .join(':')}::/64`;
}

/**
 * Whom a request counts against, for creation rates and proof budgets: its token's subject, or
 * the client's address key when it is anonymous.
 */
export function identityOf(req: Request): string {
  const owner = contextOf(req).owner;
  return owner
    ? `sub:${owner}`
    : `ip:${clientKeyOf(req.ip ?? req.socket.remoteAddress ?? 'unknown')}`;
}

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
  return async (req, res, next) => {
    if (req.method !== 'POST') return next();
    try {
      await limiter.consume(identityOf(req));
      next();
    } catch (rejection) {
      if (rejection instanceof RateLimiterRes) {
        const seconds = Math.max(1, Math.ceil(rejection.msBeforeNext / 1000));
        return sendJsonError(res, ERRORS.RATE_LIMITED, {
          'Retry-After': String(seconds),
          'Tus-Resumable': TUS_RESUMABLE,
        });
      }
      // Whatever failed, the limit could not be asked: Redis is away for this request.
      answerError(req, res, outageOf(rejection) ?? unavailableEntry('redis'), {
        headers: { 'Tus-Resumable': TUS_RESUMABLE },
        failed: () => logger.error({ err: rejection }, 'rate limit: redis unavailable'),
      });
    }
  };
}
