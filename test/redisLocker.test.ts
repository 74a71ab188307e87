import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, test } from '@jest/globals';
import { Redis } from 'ioredis';
import { ERRORS } from '../errors/catalogue.ts';
import { RedisLocker, type RedisLockerOptions } from '../lockers/RedisLocker.ts';
import { startDedicatedRedis, waitFor } from './harness/services.ts';
import { testServices } from './harness/stack.ts';

const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

// ioredis keeps a timer of disconnectTimeout (2 s) for a dead stream, which would hold jest open.
const CLIENT = { lazyConnect: true, maxRetriesPerRequest: 1, disconnectTimeout: 100 };

async function connect(url: string): Promise<Redis> {
  const redis = new Redis(url, CLIENT);
  redis.on('error', () => {});
  await redis.connect();
  cleanups.push(async () => redis.disconnect());
  return redis;
}

/** One locker as one server instance would have it: its own Redis connections. */
async function instance(
  options: Partial<RedisLockerOptions> = {},
  url = testServices().redisUrl,
): Promise<RedisLocker> {
  const locker = new RedisLocker({ redis: await connect(url), ...options });
  cleanups.push(() => locker.close());
  return locker;
}

/** A key no other test uses. */
const uniqueId = () => `upload-${Math.random().toString(36).slice(2)}`;
const never = () => new AbortController().signal;
const noop = () => {};

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => error,
  );
}

describe('RedisLocker', () => {
  test('twenty requests on two instances take turns: never two inside at once, all finish', async () => {
    const lockers = [await instance(), await instance()];
    const id = uniqueId();
    let counter = 0;
    let inside = 0;
    let overlaps = 0;
    await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const lock = (lockers[i % 2] as RedisLocker).newLock(id);
        await lock.lock(never(), noop);
        inside += 1;
        if (inside > 1) overlaps += 1;
        const read = counter;
        // Time inside the lock for another holder to slip in: what the test looks for.
        await sleep(5);
        counter = read + 1;
        inside -= 1;
        await lock.unlock();
      }),
    );
    expect(overlaps).toBe(0);
    expect(counter).toBe(20);
  });

  test('the key is <prefix>{<id>} so each lock stays in one Redis Cluster slot', async () => {
    const locker = await instance({ keyPrefix: 'test:lock:' });
    const raw = await connect(testServices().redisUrl);
    const id = uniqueId();
    const lock = locker.newLock(id);
    await lock.lock(never(), noop);
    expect(await raw.exists(`test:lock:{${id}}`)).toBe(1);
    await lock.unlock();
    expect(await raw.exists(`test:lock:{${id}}`)).toBe(0);
  });

  test('a holder whose lease expired cannot unlock the new holder, and is asked to stop', async () => {
    const [a, b] = [await instance({ ttlMs: 150 }), await instance({ ttlMs: 150 })];
    const raw = await connect(testServices().redisUrl);
    const id = uniqueId();
    const key = `tus:lock:{${id}}`;
    let aAskedToStop = false;
    const lockA = a.newLock(id);
    await lockA.lock(never(), () => {
      aAskedToStop = true;
    });
    // A stalled process: no timer of A's runs, so its lease expires in Redis.
    const until = Date.now() + 400;
    while (Date.now() < until);
    expect(await raw.exists(key)).toBe(0);

    const lockB = b.newLock(id);
    await lockB.lock(never(), noop);
    const tokenB = await raw.get(key);
    await waitFor(async () => aAskedToStop, 'A notices it lost the lock', 2000);
    await lockA.unlock();
    expect(await raw.get(key)).toBe(tokenB);
    await lockB.unlock();
    expect(await raw.exists(key)).toBe(0);
  });

  test('the holder renews its lease: held for 3× the TTL, nobody else gets it', async () => {
    const ttlMs = 300;
    const [a, b] = [await instance({ ttlMs }), await instance({ ttlMs, acquireTimeoutMs: 1000 })];
    const id = uniqueId();
    const lockA = a.newLock(id);
    await lockA.lock(never(), noop);
    const started = Date.now();
    expect(await rejection(b.newLock(id).lock(never(), noop))).toEqual(ERRORS.UPLOAD_LOCKED);
    expect(Date.now() - started).toBeGreaterThan(3 * ttlMs);
    await lockA.unlock();
    const lockB = b.newLock(id);
    await lockB.lock(never(), noop);
    await lockB.unlock();
  });

  test('a request on another instance asks the holder to release and gets the lock in well under 1 s', async () => {
    const [a, b] = [await instance(), await instance()];
    const id = uniqueId();
    const lockA = a.newLock(id);
    let released = 0;
    await lockA.lock(never(), async () => {
      released += 1;
      await lockA.unlock();
    });
    const started = performance.now();
    const lockB = b.newLock(id);
    await lockB.lock(never(), noop);
    const elapsed = performance.now() - started;
    expect(released).toBe(1);
    expect(elapsed).toBeLessThan(300);
    await lockB.unlock();
  });

  test('a holder whose instance died (its connection closed) is overtaken at once, not after the lease', async () => {
    const a = await instance({ ttlMs: 10_000 });
    const b = await instance({ ttlMs: 10_000, acquireTimeoutMs: 15_000 });
    const raw = await connect(testServices().redisUrl);
    const id = uniqueId();
    const key = `tus:lock:{${id}}`;
    let aAskedToStop = 0;
    await a.newLock(id).lock(never(), () => {
      aAskedToStop += 1;
    });
    const tokenA = String(await raw.get(key));
    const [clientA] = tokenA.split('.');
    // As kill -9 does: the kernel closes the dead process's connection and Redis drops the client.
    expect(await raw.client('KILL', 'ID', String(clientA))).toBe(1);

    const started = performance.now();
    const lockB = b.newLock(id);
    await lockB.lock(never(), noop);
    const waitedMs = performance.now() - started;
    expect(waitedMs).toBeLessThan(1000);
    expect(await raw.get(key)).not.toBe(tokenA);
    // A, had it survived, is told its lock is gone: its request stops early.
    expect(aAskedToStop).toBeGreaterThan(0);
    await lockB.unlock();
    expect(await raw.exists(key)).toBe(0);
  });

  test('a holder that is alive but stalled is never overtaken by its connection check', async () => {
    const a = await instance({ ttlMs: 10_000 });
    const b = await instance({ acquireTimeoutMs: 600 });
    const id = uniqueId();
    const lockA = a.newLock(id);
    await lockA.lock(never(), noop);
    // A ignores the release request, as a request stuck in its storage write would.
    expect(await rejection(b.newLock(id).lock(never(), noop))).toEqual(ERRORS.UPLOAD_LOCKED);
    await lockA.unlock();
  });

  test('a Redis user without CLIENT LIST: a dead holder is overtaken when its lease runs out', async () => {
    const admin = await connect(testServices().redisUrl);
    const user = `locker-${Math.random().toString(36).slice(2)}`;
    await admin.call(
      'ACL',
      'SETUSER',
      user,
      'on',
      '>secret-pass',
      '~*',
      '&*',
      '+@all',
      '-client|list',
    );
    cleanups.push(() => admin.call('ACL', 'DELUSER', user));
    const url = new URL(testServices().redisUrl);
    url.username = user;
    url.password = 'secret-pass';
    const ttlMs = 600;
    const a = await instance({ ttlMs }, url.toString());
    const b = await instance({ ttlMs, acquireTimeoutMs: 5000 }, url.toString());
    const id = uniqueId();
    await a.newLock(id).lock(never(), noop);
    const [clientA] = String(await admin.get(`tus:lock:{${id}}`)).split('.');
    await admin.client('KILL', 'ID', String(clientA));

    const started = performance.now();
    const lockB = b.newLock(id);
    await lockB.lock(never(), noop);
    expect(performance.now() - started).toBeGreaterThan(ttlMs / 3);
    await lockB.unlock();
  });

  test('a holder that ignores release requests makes the acquirer give up with 423 after the bound', async () => {
    const [a, b] = [await instance(), await instance({ acquireTimeoutMs: 500 })];
    const id = uniqueId();
    const lockA = a.newLock(id);
    let asked = 0;
    await lockA.lock(never(), () => {
      asked += 1;
    });
    const started = Date.now();
    const error = await rejection(b.newLock(id).lock(never(), noop));
    const elapsed = Date.now() - started;
    expect(error).toEqual({ status_code: 423, body: expect.any(String) });
    expect(elapsed).toBeGreaterThanOrEqual(500);
    expect(elapsed).toBeLessThan(1500);
    expect(asked).toBeGreaterThan(0);
    await lockA.unlock();
  });

  test('a request that stops while waiting rejects at once and never takes the lock', async () => {
    const [a, b] = [await instance(), await instance()];
    const raw = await connect(testServices().redisUrl);
    const id = uniqueId();
    const lockA = a.newLock(id);
    let aAsked = false;
    await lockA.lock(never(), () => {
      aAsked = true;
    });
    const stop = new AbortController();
    const waiting = rejection(b.newLock(id).lock(stop.signal, noop));
    // B is waiting once it has asked the holder to release.
    await waitFor(async () => aAsked, 'B asking A to release', 2000);
    const started = Date.now();
    stop.abort();
    const error = await waiting;
    expect(Date.now() - started).toBeLessThan(200);
    expect(error).toMatchObject({ status_code: expect.any(Number) });
    expect(error).not.toMatchObject({ status_code: 500 });
    await lockA.unlock();
    // A while after the release, in which a waiter that had not really stopped would take the
    // lock: that none does is what is tested.
    await sleep(300);
    expect(await raw.exists(`tus:lock:{${id}}`)).toBe(0);

    expect(await rejection(b.newLock(id).lock(AbortSignal.abort(), noop))).toMatchObject({
      status_code: expect.any(Number),
    });
  });

  test('Redis down: lock() fails fast with 503, the holder is asked to stop, unlock still resolves', async () => {
    const redis = await startDedicatedRedis();
    cleanups.push(() => redis.stop());
    const locker = await instance({ ttlMs: 600 }, redis.url);
    const held = locker.newLock(uniqueId());
    let holderAskedToStop = false;
    await held.lock(never(), () => {
      holderAskedToStop = true;
    });

    await redis.stop();
    const started = Date.now();
    const error = await rejection(locker.newLock(uniqueId()).lock(never(), noop));
    expect(Date.now() - started).toBeLessThan(2000);
    expect(error).toEqual(ERRORS.REDIS_UNAVAILABLE);
    await waitFor(async () => holderAskedToStop, 'the holder is asked to stop', 2000);
    await held.unlock();
  });

  test('Redis that stops answering: lock() fails with 503 within the command timeout', async () => {
    const redis = await startDedicatedRedis();
    cleanups.push(() => redis.stop());
    const locker = await instance({ commandTimeoutMs: 1000 }, redis.url);
    await locker.newLock(uniqueId()).lock(never(), noop);
    const admin = await connect(redis.url);
    await admin.call('CLIENT', 'PAUSE', '3000', 'ALL');
    const started = Date.now();
    const error = await rejection(locker.newLock(uniqueId()).lock(never(), noop));
    const elapsed = Date.now() - started;
    expect(error).toEqual(ERRORS.REDIS_UNAVAILABLE);
    expect(elapsed).toBeGreaterThanOrEqual(900);
    expect(elapsed).toBeLessThan(2000);
  });

  test('Redis never reached: lock() fails fast with 503 and never proceeds', async () => {
    const redis = new Redis({ ...CLIENT, port: 1 });
    redis.on('error', () => {});
    cleanups.push(async () => redis.disconnect());
    const locker = new RedisLocker({ redis });
    cleanups.push(() => locker.close());
    const started = Date.now();
    expect(await rejection(locker.newLock(uniqueId()).lock(never(), noop))).toEqual(
      ERRORS.REDIS_UNAVAILABLE,
    );
    expect(Date.now() - started).toBeLessThan(2000);
  });

  test('close() unsubscribes and quits the subscriber it created', async () => {
    const locker = await instance();
    const raw = await connect(testServices().redisUrl);
    const lock = locker.newLock(uniqueId());
    await lock.lock(never(), noop);
    await lock.unlock();
    const subscribers = async () => (await raw.pubsub('NUMSUB', locker.channel))[1];
    const before = Number(await subscribers());
    await locker.close();
    await waitFor(async () => Number(await subscribers()) === before - 1, 'unsubscribed', 2000);
  });
});
