import { isIPv4, isIPv6 } from 'node:net';
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

/** The eight 16-bit groups of an IPv6 address (a trailing dotted IPv4 counts as two), or undefined. */
function ipv6Groups(address: string): number[] | undefined {
  let text = address;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)?.[1];
  if (dotted) {
    const [a = 0, b = 0, c = 0, d = 0] = dotted.split('.').map(Number);
    text = `${text.slice(0, -dotted.length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const parse = (part: string | undefined) => (part ? part.split(':') : []);
  const head = parse(halves[0]);
  const tail = parse(halves[1]);
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...head, ...Array<string>(halves.length === 1 ? 0 : missing).fill('0'), ...tail];
  const numbers = groups.map((group) =>
    /^[0-9a-f]{1,4}$/i.test(group) ? Number.parseInt(group, 16) : Number.NaN,
  );
  return numbers.some(Number.isNaN) ? undefined : numbers;
}

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
  const groups = ipv6Groups(bare);
  if (!groups) return address;
  const mapped = groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff;
  if (mapped) {
    const [high = 0, low = 0] = groups.slice(6);
    return [high >> 8, high & 0xff, low >> 8, low & 0xff].join('.');
  }
  return `${groups
    .slice(0, 4)
    .map((group) => group.toString(16))
    .join(':')}::/64`;
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
  const keyOf = (req: Request) => {
    const owner = factsOf(req).owner;
    return owner
      ? `sub:${owner}`
      : `ip:${clientKeyOf(req.ip ?? req.socket.remoteAddress ?? 'unknown')}`;
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
