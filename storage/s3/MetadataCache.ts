import type { MetadataValue } from '@tus/s3-store';
import type { KvStore } from '@tus/utils';
import { ServiceUnavailable } from '../types.ts';

/**
 * The shared metadata cache (Redis) in front of `<id>.info`. A read that fails is a miss, so
 * the record comes from S3 itself; a failed delete must not leave a stale record behind.
 */
export class MetadataCache implements KvStore<MetadataValue> {
  constructor(private readonly inner: KvStore<MetadataValue>) {}

  async get(key: string): Promise<MetadataValue | undefined> {
    return this.inner.get(key).catch(() => undefined);
  }

  async set(key: string, value: MetadataValue): Promise<void> {
    await this.inner.set(key, value).catch(() => undefined);
  }

  async delete(key: string): Promise<void> {
    await this.inner.delete(key).catch((error: unknown) => {
      throw new ServiceUnavailable('redis', error);
    });
  }
}
