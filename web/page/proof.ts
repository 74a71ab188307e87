import { hmacSha256OfBlob } from './sha256.ts';

/** A dedupe challenge: the nonce of `Upload-Dedupe-Challenge: nonce=<base64url>`. */
type Challenge = { nonce: string };

function parseChallenge(value: string | null): Challenge | undefined {
  const match = /^nonce=([A-Za-z0-9_-]+)$/.exec(value ?? '');
  return match?.[1] ? { nonce: match[1] } : undefined;
}

function bytesOfBase64url(value: string): Uint8Array {
  const binary = atob(value.replace(/-/g, '+').replace(/_/g, '/'));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/**
 * Answers the challenge a creation came back with, at `<upload URL>/proof`: HMAC-SHA256 keyed
 * with the nonce over the whole file, read as a stream. True when the server accepted it: the
 * upload is finished without sending the file.
 */
export async function proveOwnership(
  uploadUrl: string,
  challengeHeader: string | null,
  file: Blob,
  headers: Record<string, string>,
  onProgress: (bytesHashed: number) => void = () => undefined,
): Promise<boolean> {
  const challenge = parseChallenge(challengeHeader);
  if (!challenge) return false;
  const answer = await hmacSha256OfBlob(bytesOfBase64url(challenge.nonce), file, onProgress);
  const response = await fetch(`${uploadUrl}/proof`, {
    method: 'POST',
    headers: { ...headers, 'Content-Type': 'application/json' },
    body: JSON.stringify({ answer }),
  });
  return response.status === 204;
}
