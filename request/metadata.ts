import { contextOf } from './context.ts';

/** Metadata keys the server keeps with an upload for itself; never taken from, or shown to, clients. */
export const OWNER_KEY = 'tus-owner';
export const CHALLENGE_KEY = 'tus-challenge';
const CONCAT_KEY = 'tus-concat';
const RESERVED_PREFIX = 'tus-';

export function isReservedKey(key: string): boolean {
  return key.startsWith(RESERVED_PREFIX);
}

/** A creation's metadata as stored: the client's keys but reserved ones, and the server's own. */
export function stampMetadata(
  metadata: Record<string, string | null> | undefined,
  req: object,
): Record<string, string | null> {
  const { owner, challenge, concat, hookChanges } = contextOf(req);
  // The pre-create hook may replace the client's metadata, never the server's own keys.
  if (hookChanges?.metadata) metadata = hookChanges.metadata;
  const stamped = Object.fromEntries(
    Object.entries(metadata ?? {}).filter(([key]) => !isReservedKey(key)),
  );
  if (owner) stamped[OWNER_KEY] = owner;
  if (challenge) stamped[CHALLENGE_KEY] = challenge;
  if (concat) stamped[CONCAT_KEY] = concat;
  return stamped;
}

/** An Upload-Metadata header value without the server's own keys, for clients to read. */
export function publicMetadataHeader(value: string): string {
  return value
    .split(',')
    .filter((pair) => !isReservedKey(pair.trim().split(' ')[0] ?? ''))
    .join(',');
}

/** What an upload is in a concatenation: a partial, or the final of the partials named. */
export type ConcatRequest = { kind: 'partial' } | { kind: 'final'; ids: string[] };

/** The value kept under CONCAT_KEY: `partial`, or `final;` and the partials' ids. */
export function storedConcat(request: ConcatRequest): string {
  return request.kind === 'partial' ? 'partial' : `final;${request.ids.join(' ')}`;
}

/** What an upload's stored metadata says it is in a concatenation, if anything. */
export function concatOf(
  metadata: Record<string, string | null> | undefined,
): ConcatRequest | undefined {
  const value = metadata?.[CONCAT_KEY];
  if (value === 'partial') return { kind: 'partial' };
  if (value?.startsWith('final;')) return { kind: 'final', ids: value.slice(6).split(' ') };
  return undefined;
}
