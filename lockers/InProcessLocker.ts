import { MemoryLocker } from '@tus/server';
import type { Lock, Locker } from '@tus/utils';
import { currentContext } from '../request/context.ts';
import { HeldByAnotherOwner, mayAskRelease, ownerTagOf } from './owners.ts';

/**
 * @tus/server's MemoryLocker (one process, no Redis), whose holders are asked to release only
 * as lockers/owners.ts allows. MemoryLocker asks a holder by calling the callback the holder
 * gave, in the asking request's async context: that is where the owners are compared.
 */
export class InProcessLocker implements Locker {
  private readonly inner = new MemoryLocker();

  newLock(id: string): Lock {
    const lock = this.inner.newLock(id);
    return {
      lock(signal, requestRelease) {
        const holderTag = ownerTagOf(currentContext(), id);
        return lock.lock(signal, () => {
          if (!mayAskRelease(currentContext(), id, holderTag)) throw new HeldByAnotherOwner();
          return requestRelease();
        });
      },
      unlock: () => lock.unlock(),
    };
  }
}
