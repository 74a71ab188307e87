import type { MetadataValue } from '@tus/s3-store';
import type { KvStore } from '@tus/utils';
import { currentContext } from '../../request/context.ts';
import { ServiceUnavailable } from '../types.ts';

/**
 * The shared metadata cache (Redis) in front of `<id>.info`. A read that fails is a miss, so
 * the record comes from S3 itself; a failed delete must not leave a stale record behind.
 *
 * Within a request, a record read or written once is kept in the request's context
 * (`records`), so the request reads it from Redis at most once before and once after it takes
 * the upload's lock (lockers/DrainableLocker forgets it when the lock is taken).
 */
export class MetadataCache implements KvStore<MetadataValue> {
  constructor(private readonly inner: KvStore<MetadataValue>) {}

  async get(key: string): Promise<MetadataValue | undefined> {
    const records = currentContext()?.records;
    const known = records?.get(key);
    if (known) return known;
    const value = await this.inner.get(key).catch(() => undefined);
    if (value) records?.set(key, value);
    return value;
  }

  async set(key: string, value: MetadataValue): Promise<void> {
    currentContext()?.records.set(key, value);
    await this.inner.set(key, value).catch(() => undefined);
  }

  async delete(key: string): Promise<void> {
    currentContext()?.records.delete(key);
    await this.inner.delete(key).catch((error: unknown) => {
      throw new ServiceUnavailable('redis', error);
    });
  }
}
