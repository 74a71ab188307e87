import { randomBytes } from 'node:crypto';
import type { Lock, Locker, RequestRelease } from '@tus/utils';
import type { Redis } from 'ioredis';
import { ERRORS } from '../errors/catalogue.ts';
import { currentContext, type RequestContext } from '../request/context.ts';
import { HeldByAnotherOwner, mayAskRelease, ownerTagOf } from './owners.ts';

export type RedisLockerOptions = {
  /** Connection for commands; the caller owns it (connects and quits it). */
  redis: Redis;
  /** Connection for pub/sub, which needs its own; default: a duplicate of `redis` that close() quits. */
  subscriber?: Redis;
  /** Keys are `<prefix>{<upload id>}`; the hash tag keeps each lock in one Redis Cluster slot. */
  keyPrefix?: string;
  /** Lease length, renewed every third of it; default DEFAULT_TTL_MS. */
  ttlMs?: number;
  /** How long lock() waits for a held lock before 423; default DEFAULT_ACQUIRE_TIMEOUT_MS. */
  acquireTimeoutMs?: number;
  /** Longest a single Redis command may take before the lock counts as unavailable (503). */
  commandTimeoutMs?: number;
};

// A holder whose instance died is found at once by its Redis connection (see isGone); the lease
// is the backstop for what that cannot see (a host lost without closing its connections, a
// Redis that does not allow CLIENT LIST). A live holder outlasts two missed renewals.
const DEFAULT_TTL_MS = 10_000;
// Longer than the TTL: a request that meets a crashed holder's lock waits it out, not bounces.
const DEFAULT_ACQUIRE_TIMEOUT_MS = 15_000;
// Well inside the 1–2 s in which a request must learn that Redis is gone (503).
const DEFAULT_COMMAND_TIMEOUT_MS = 1000;
// Acquirers wake on the holder's "released" message; polling only covers lost messages and crashes.
const FIRST_RETRY_MS = 50;
const MAX_RETRY_MS = 250;

// Returns whoever holds the lock after the call: our own token when we got it.
const ACQUIRE = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return ARGV[1] end
return redis.call('GET', KEYS[1])`;

// Extends the lease only while it is still ours; 0 means it expired and may belong to someone else.
const RENEW = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])`;

// Takes the lock from a holder whose connection is gone, unless someone else got there first.
const TAKE_OVER = `
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return holder end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return ARGV[2]`;

// Deletes only our own token, and tells waiters when one of them asked for the lock.
const RELEASE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
if ARGV[2] ~= '' then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
return 1`;

/** One lock() call waiting for a key: set by a "released" message, read before each pause. */
type Waiter = { released: boolean; wake?: () => void };

/**
 * Distributed locks in Redis for @tus/server, shared by every instance that uses the same Redis.
 * One pub/sub channel carries `release <holder token>` (asks a holder to give the lock up) and
 * `released <key>` (wakes the acquirers waiting for that key).
 *
 * A token starts with the Redis client id of the connection that took the lock
 * (`<client id>.<random>`, then `.<owner tag>` for a lock taken at the edge with auth on: see
 * lockers/owners.ts). When an instance dies, even by kill -9, the kernel closes its
 * connections and Redis forgets its client id at once; an acquirer that finds the holder's id
 * gone from `CLIENT LIST` takes the lock over instead of waiting out the lease. A live instance
 * keeps its connection however long its event loop stalls, so it is never overtaken this way.
 * When an instance's own connection closes, it treats every lock it holds as lost.
 */
export class RedisLocker implements Locker {
  readonly keyPrefix: string;
  readonly channel: string;
  readonly ttlMs: number;
  readonly acquireTimeoutMs: number;
  readonly commandTimeoutMs: number;
  private readonly redis: Redis;
  private readonly subscriber: Redis;
  private readonly ownsSubscriber: boolean;
  /** Locks of this locker by token, from the first acquisition attempt until unlock. */
  private readonly byToken = new Map<string, RedisLock>();
  private readonly waiters = new Map<string, Set<Waiter>>();
  private subscribed?: Promise<void>;
  private closed = false;
  /** The command connection's client id, asked once per connection; undefined after it closes. */
  private identity?: Promise<string>;
  /** Counts the command connection's closes: a lock taken across one may carry a dead id. */
  private connectionEpoch = 0;
  /** False once Redis refused CLIENT LIST (ACLs, proxies): holders then only expire. */
  private canSeeClients = true;

  constructor(options: RedisLockerOptions) {
    this.redis = options.redis;
    this.ownsSubscriber = options.subscriber === undefined;
    this.subscriber = options.subscriber ?? options.redis.duplicate({ lazyConnect: true });
    this.keyPrefix = options.keyPrefix ?? 'tus:lock:';
    this.channel = `${this.keyPrefix}events`;
    this.ttlMs = options.ttlMs ?? DEFAULT_TTL_MS;
    this.acquireTimeoutMs = options.acquireTimeoutMs ?? DEFAULT_ACQUIRE_TIMEOUT_MS;
    this.commandTimeoutMs = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    // Errors surface as 503s from lock(); without a listener ioredis would print each one.
    if (this.ownsSubscriber) this.subscriber.on('error', () => {});
    this.subscriber.on('message', this.onMessage);
    this.redis.on('close', this.onConnectionClosed);
  }

  newLock(id: string): Lock {
    return new RedisLock(this, id, `${this.keyPrefix}{${id}}`);
  }

  /** Stops listening, quits the subscriber it created and fails the acquisitions still waiting. */
  async close(): Promise<void> {
    this.closed = true;
    for (const lock of this.byToken.values()) lock.stopRenewing();
    for (const waiters of this.waiters.values()) for (const waiter of waiters) waiter.wake?.();
    this.subscriber.off('message', this.onMessage);
    this.redis.off('close', this.onConnectionClosed);
    if (!this.ownsSubscriber) {
      await this.withinTimeout(this.subscriber.unsubscribe(this.channel)).catch(() => undefined);
    } else if (this.subscriber.status === 'ready') {
      await this.subscriber.quit().catch(() => this.subscriber.disconnect());
    } else {
      this.subscriber.disconnect();
    }
  }

  // The methods below serve RedisLock.

  /** Runs one script within commandTimeoutMs; any failure means locks cannot be guaranteed. */
  async run(script: string, key: string, ...args: Array<string | number>): Promise<unknown> {
    if (this.closed || this.redis.status !== 'ready') throw ERRORS.REDIS_UNAVAILABLE;
    return this.withinTimeout(this.redis.eval(script, 1, key, ...args));
  }

  /** The connection's client id, the first part of every token this locker makes. */
  async clientId(): Promise<string> {
    if (this.closed || this.redis.status !== 'ready') throw ERRORS.REDIS_UNAVAILABLE;
    this.identity ??= this.redis.client('ID').then(String);
    try {
      return await this.withinTimeout(this.identity);
    } catch (error) {
      this.identity = undefined;
      throw error;
    }
  }

  get epoch(): number {
    return this.connectionEpoch;
  }

  /**
   * Whether the holder's instance is gone: its connection is no longer among Redis's clients.
   * Client ids are never reused by a Redis server, so a gone id stays gone. Unknown → alive.
   */
  async isGone(holder: string): Promise<boolean> {
    const id = holder.slice(0, holder.indexOf('.'));
    if (!this.canSeeClients || !/^\d+$/.test(id)) return false;
    let refused = false;
    const listed = this.redis.client('LIST', 'ID', id).catch((error: unknown) => {
      refused = (error as Error | undefined)?.name === 'ReplyError';
      throw error;
    });
    try {
      return String(await this.withinTimeout(listed)).trim() === '';
    } catch {
      // Refused (NOPERM, a proxy without CLIENT): the lease decides from now on. A slow or
      // lost reply only counts as "alive" this time.
      if (refused) this.canSeeClients = false;
      return false;
    }
  }

  async takeOver(key: string, holder: string, token: string): Promise<unknown> {
    return this.run(TAKE_OVER, key, holder, token, this.ttlMs);
  }

  async publish(message: string): Promise<void> {
    if (this.closed || this.redis.status !== 'ready') throw ERRORS.REDIS_UNAVAILABLE;
    await this.withinTimeout(this.redis.publish(this.channel, message));
  }

  /** Subscribes once; a holder that is not listening could not be asked to release. */
  async listen(): Promise<void> {
    this.subscribed ??= (async () => {
      if (this.subscriber.status === 'wait') await this.subscriber.connect();
      await this.subscriber.subscribe(this.channel);
    })();
    try {
      await this.withinTimeout(this.subscribed);
    } catch (error) {
      this.subscribed = undefined;
      throw error;
    }
  }

  track(token: string, lock: RedisLock | undefined): void {
    if (lock) this.byToken.set(token, lock);
    else this.byToken.delete(token);
  }

  addWaiter(key: string, waiter: Waiter): () => void {
    const waiters = this.waiters.get(key) ?? new Set<Waiter>();
    this.waiters.set(key, waiters.add(waiter));
    return () => {
      waiters.delete(waiter);
      if (waiters.size === 0) this.waiters.delete(key);
    };
  }

  get isClosed(): boolean {
    return this.closed;
  }

  // Another instance may take our locks over as soon as Redis has dropped the connection.
  private readonly onConnectionClosed = (): void => {
    this.identity = undefined;
    this.connectionEpoch += 1;
    for (const lock of this.byToken.values()) lock.connectionLost();
  };

  private readonly onMessage = (channel: string, message: string): void => {
    if (channel !== this.channel) return;
    const space = message.indexOf(' ');
    const [type, subject] = [message.slice(0, space), message.slice(space + 1)];
    if (type === 'release') this.byToken.get(subject)?.releaseRequested();
    if (type === 'released') {
      for (const waiter of this.waiters.get(subject) ?? []) {
        waiter.released = true;
        waiter.wake?.();
      }
    }
  };

  private async withinTimeout<T>(promise: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(ERRORS.REDIS_UNAVAILABLE), this.commandTimeoutMs);
    });
    try {
      return await Promise.race([promise, timeout]);
    } catch {
      throw ERRORS.REDIS_UNAVAILABLE;
    } finally {
      clearTimeout(timer);
    }
  }
}

class RedisLock implements Lock {
  private token = '';
  private held = false;
  private asked = false;
  private requestRelease?: RequestRelease;
  private renewal?: NodeJS.Timeout;
  /** The request that holds the lock: its storage writes stop when the lock is lost. */
  private scope?: RequestContext;
  private ownerTag?: string;

  constructor(
    private readonly locker: RedisLocker,
    private readonly id: string,
    readonly key: string,
  ) {}

  async lock(stopSignal: AbortSignal, requestRelease: RequestRelease): Promise<void> {
    const locker = this.locker;
    const deadline = Date.now() + locker.acquireTimeoutMs;
    await locker.listen();
    this.requestRelease = requestRelease;
    this.scope = currentContext();
    this.ownerTag = ownerTagOf(this.scope, this.id);
    this.asked = false;
    const waiter: Waiter = { released: false };
    const stopWaiting = locker.addWaiter(this.key, waiter);
    let epoch = -1;
    try {
      for (let delay = FIRST_RETRY_MS; ; delay = Math.min(2 * delay, MAX_RETRY_MS)) {
        if (stopSignal.aborted) throw ERRORS.ABORTED;
        if (locker.isClosed) throw ERRORS.REDIS_UNAVAILABLE;
        if (epoch !== locker.epoch) {
          // A new connection, a new client id: tokens name the connection that holds them.
          epoch = locker.epoch;
          await this.newToken();
        }
        waiter.released = false;
        let holder = await this.attempt();
        if (holder !== this.token && (await locker.isGone(holder))) {
          holder = String(await locker.takeOver(this.key, holder, this.token));
        }
        if (holder === this.token) {
          if (epoch === locker.epoch) return this.hold();
          // The connection closed while we took it: the token may name a dead client id.
          await this.deleteIfOurs(false);
          continue;
        }
        // "If the lock is already held by another request, the 'cancelReq' callback is provided
        // to signal the current lock holder to release the lock" — the holder may be elsewhere.
        if (!mayAskRelease(this.scope, this.id, holder.split('.')[2])) {
          throw new HeldByAnotherOwner();
        }
        await locker.publish(`release ${holder}`);
        const left = deadline - Date.now();
        if (left <= 0) throw ERRORS.UPLOAD_LOCKED;
        await pause(Math.min(delay, left), stopSignal, waiter);
      }
    } catch (error) {
      locker.track(this.token, undefined);
      // A SET that timed out on our side may still have succeeded in Redis.
      if (error === ERRORS.REDIS_UNAVAILABLE) void this.deleteIfOurs(false);
      throw error;
    } finally {
      stopWaiting();
    }
  }

  async unlock(): Promise<void> {
    if (!this.held) return;
    this.held = false;
    this.stopRenewing();
    this.locker.track(this.token, undefined);
    await this.deleteIfOurs(this.asked);
  }

  // "The 'cancelReq' callback should be invoked when there's an attempt by another request to
  // acquire a previously locked resource."

  releaseRequested(): void {
    this.asked = true;
    if (this.held) void this.callRequestRelease();
  }

  /** Our connection closed: another instance may already have taken the lock over. */
  connectionLost(): void {
    if (!this.held) return;
    this.stopRenewing();
    this.lost();
  }

  stopRenewing(): void {
    clearTimeout(this.renewal);
    this.renewal = undefined;
  }

  /** When Redis is unreachable the lease simply expires: renewal has stopped. */
  private async deleteIfOurs(notifyWaiters: boolean): Promise<void> {
    const [channel, message] = notifyWaiters
      ? [this.locker.channel, `released ${this.key}`]
      : ['', ''];
    await this.locker.run(RELEASE, this.key, this.token, channel, message).catch(() => undefined);
  }

  /** Tracked before the first attempt: a release request can arrive before the SET's reply. */
  private async newToken(): Promise<void> {
    if (this.token) this.locker.track(this.token, undefined);
    const tag = this.ownerTag === undefined ? '' : `.${this.ownerTag}`;
    this.token = `${await this.locker.clientId()}.${randomBytes(16).toString('hex')}${tag}`;
    this.locker.track(this.token, this);
  }

  private async attempt(): Promise<string> {
    const holder = await this.locker.run(ACQUIRE, this.key, this.token, this.locker.ttlMs);
    if (typeof holder !== 'string') throw ERRORS.REDIS_UNAVAILABLE;
    return holder;
  }

  private hold(): void {
    this.held = true;
    this.scheduleRenewal();
    if (this.asked) void this.callRequestRelease();
  }

  // A third of the TTL: two renewals may fail before the lease runs out.
  private scheduleRenewal(): void {
    this.renewal = setTimeout(() => void this.renew(), this.locker.ttlMs / 3);
    this.renewal.unref();
  }

  private async renew(): Promise<void> {
    const renewed = await this.locker
      .run(RENEW, this.key, this.token, this.locker.ttlMs)
      .catch(() => undefined);
    if (!this.held || this.locker.isClosed) return;
    if (renewed !== 0) this.scheduleRenewal();
    // Lost (0): someone else may hold it; stop writing at once.
    if (renewed === 0) this.lost();
    // Unknown (Redis unreachable, so unreachable to others too): stop early, persist, unlock.
    else if (renewed !== 1) await this.callRequestRelease();
  }

  /** Fences the holding request off storage, then asks it to end. */
  private lost(): void {
    this.scope?.lockLost.abort(ERRORS.LOCK_LOST);
    void this.callRequestRelease();
  }

  private async callRequestRelease(): Promise<void> {
    try {
      await this.requestRelease?.();
    } catch {
      // The holder's own cancellation failing must not break the locker's bookkeeping.
    }
  }
}

/** Resolves after `ms`, on a "released" message for the key, or when the request stops. */
function pause(ms: number, signal: AbortSignal, waiter: Waiter): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      waiter.wake = undefined;
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    waiter.wake = done;
    if (waiter.released) done();
  });
}
