import type { Lock, Locker, RequestRelease } from '@tus/utils';
import { currentContext, type EdgeLock } from '../request/context.ts';

/** The lock of a creation without a body: there is nothing to exclude. */
const UNLOCKED: Lock = { lock: async () => undefined, unlock: async () => undefined };

/**
 * The edge's lock, as tus's handler takes it again: tus's way of asking its request to stop is
 * kept (and used at once if another request asked already); tus's unlock ends the lock.
 */
function reentered(edge: EdgeLock): Lock {
  return {
    async lock(_signal, requestRelease) {
      edge.onRelease = requestRelease;
      if (edge.releaseAsked) await requestRelease();
    },
    unlock: () => edge.unlock(),
  };
}

/**
 * Wraps any Locker and remembers the locks it currently holds, so that shutdown can ask
 * every in-flight request to stop reading, persist what it received and unlock. Once a request
 * holds an upload's lock, it forgets the record it may have read before (another request may
 * have changed it meanwhile): what it reads from then on is current. A request that took its
 * upload's lock at the edge (server/uploadLock.ts) re-enters it when tus takes it.
 */
export class DrainableLocker implements Locker {
  private readonly held = new Map<Lock, RequestRelease>();

  constructor(
    private readonly inner: Locker,
    /** Told how long each acquisition waited, and of each request to let go (metrics). */
    private readonly observer?: { waited(seconds: number): void; releaseRequested(): void },
  ) {}

  newLock(id: string): Lock {
    // Nobody knows the id of an upload being created before its answer; without a body the
    // creation writes nothing another request could race. Any other lock it takes (dedupe's
    // content lock, when a 0-byte upload finishes at creation) is a lock.
    const context = currentContext();
    if (context?.creationWithoutBody && context.createdId === id) return UNLOCKED;
    const edge = context?.uploadLock;
    if (edge?.id === id && edge.state === 'held') return reentered(edge);
    const lock = this.inner.newLock(id);
    const { held, observer } = this;
    const tracked: Lock = {
      async lock(signal, requestRelease) {
        const started = performance.now();
        const release: RequestRelease = observer
          ? () => {
              observer.releaseRequested();
              return requestRelease();
            }
          : requestRelease;
        await lock.lock(signal, release);
        // Read before the lock, the record may have changed while the request waited.
        currentContext()?.records.delete(id);
        observer?.waited((performance.now() - started) / 1000);
        held.set(tracked, release);
      },
      async unlock() {
        held.delete(tracked);
        await lock.unlock();
      },
    };
    return tracked;
  }

  /** Asks every holder to release; resolves once all held locks are unlocked or the time is up. */
  async drain(timeoutMs: number): Promise<boolean> {
    await Promise.all([...this.held.values()].map((release) => release()));
    const deadline = Date.now() + timeoutMs;
    while (this.held.size > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return this.held.size === 0;
  }
}
