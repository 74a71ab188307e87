import { createHash } from 'node:crypto';
import type { RequestContext } from '../request/context.ts';

/**
 * With auth on, a request takes its upload's lock before anything checks that the upload is its
 * owner's (server/uploadLock.ts): the record is read once, under the lock. Taking a held lock asks
 * the holder to let go (tus's resumption: the client's new request replaces its old one), so a
 * stranger who knows an upload's URL must not be able to ask. A lock taken at the edge therefore
 * names its owner (a hash of the token's `sub`), and a request asks a holder to release only when
 * both have the same owner, or when its own ownership was checked first.
 */
export class HeldByAnotherOwner extends Error {
  constructor() {
    super("the upload's lock is held by a request of another owner");
    this.name = 'HeldByAnotherOwner';
  }
}

/** The owner tag of a lock `context` is taking at the edge for upload `id`; none otherwise. */
export function ownerTagOf(context: RequestContext | undefined, id: string): string | undefined {
  if (!isEdgeAcquisition(context, id) || context?.owner === undefined) return undefined;
  return createHash('sha256').update(context.owner).digest('hex').slice(0, 16);
}

/**
 * Whether the request being served (`asker`) may ask the holder of upload `id`'s lock, tagged
 * `holderTag` when it was taken at the edge with auth on, to release it. Locks taken elsewhere
 * (creation, dedupe, expiry) are asked as tus asks them.
 */
export function mayAskRelease(
  asker: RequestContext | undefined,
  id: string,
  holderTag: string | undefined,
): boolean {
  if (holderTag === undefined || asker?.ownerVerified) return true;
  if (!isEdgeAcquisition(asker, id)) return true;
  return ownerTagOf(asker, id) === holderTag;
}

function isEdgeAcquisition(context: RequestContext | undefined, id: string): boolean {
  return context?.uploadLock?.id === id && context.uploadLock.state === 'taking';
}
