import type { IncomingMessage } from 'node:http';

/** What the server learned about a request before tus handles it. */
type RequestFacts = {
  /** The token's `sub`: who creates, and who may touch, the uploads of this request. */
  owner?: string;
  /** A creation answered with a dedupe challenge carries it in its record and its answer. */
  challenge?: string;
  /** What the upload is in a concatenation (`partial`, `final;<ids>`), kept with its record. */
  concat?: string;
  /** The request came with a valid signed download link instead of a token. */
  viaLink?: boolean;
  /** What the pre-create hook changed: the new upload's id and client metadata. */
  hookChanges?: { id?: string; metadata?: Record<string, string> };
  /** Headers a hook asked to add to this request's answer. */
  hookHeaders?: Record<string, string>;
  /** The method came from X-HTTP-Method-Override on a POST (server/methodOverride.ts). */
  methodOverridden?: boolean;
  /** An X-HTTP-Method-Override the edge refused: answered once the request is authenticated. */
  methodRefusal?: { readonly status_code: number; readonly body: string };
  /** Body bytes read from the client so far (post-receive tells them). */
  bodyBytes?: number;
};

const facts = new WeakMap<object, RequestFacts>();

/** @tus/server hands hooks a web Request that carries the Node request it came from. */
type WrappedRequest = { runtime?: { node?: { req?: object } } };

export function nodeRequestOf(req: object): object {
  return (req as WrappedRequest).runtime?.node?.req ?? req;
}

/** The facts of a Node request, or of the Node request behind a tus hook's web Request. */
export function factsOf(req: IncomingMessage | object): RequestFacts {
  const key = nodeRequestOf(req);
  let found = facts.get(key);
  if (!found) {
    found = {};
    facts.set(key, found);
  }
  return found;
}

/** Metadata keys the server keeps with an upload for itself; never taken from, or shown to, clients. */
export const OWNER_KEY = 'tus-owner';
export const CHALLENGE_KEY = 'tus-challenge';
export const CONCAT_KEY = 'tus-concat';
const RESERVED_PREFIX = 'tus-';

export function isReservedKey(key: string): boolean {
  return key.startsWith(RESERVED_PREFIX);
}

/** A creation's metadata as stored: the client's keys but reserved ones, and the server's own. */
export function stampMetadata(
  metadata: Record<string, string | null> | undefined,
  req: object,
): Record<string, string | null> {
  const { owner, challenge, concat, hookChanges } = factsOf(req);
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
