/** A dedupe challenge: a nonce and byte ranges of the file (`Upload-Dedupe-Challenge`). */
type Challenge = { nonce: string; ranges: Array<[number, number]> };

function parseChallenge(value: string | null): Challenge | undefined {
  const match = /^nonce=([A-Za-z0-9_-]+); ranges=(\d+-\d+(?:,\d+-\d+)*)$/.exec(value ?? '');
  if (!match?.[1] || !match[2]) return undefined;
  const ranges = match[2].split(',').map((pair) => {
    const [start = 0, end = -1] = pair.split('-').map(Number);
    return [start, end] as [number, number];
  });
  return { nonce: match[1], ranges };
}

function bytesOfBase64url(value: string): Uint8Array<ArrayBuffer> {
  const binary = atob(value.replace(/-/g, '+').replace(/_/g, '/'));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/**
 * The answer to a challenge: HMAC-SHA256 keyed with the nonce over the challenged ranges of the
 * file, in order. Only these few KiB are read; the server compares them with the stored bytes.
 */
async function answerOf(file: Blob, challenge: Challenge): Promise<string> {
  const parts = challenge.ranges.map(([start, end]) => file.slice(start, end + 1));
  const message = await new Blob(parts).arrayBuffer();
  const key = await crypto.subtle.importKey(
    'raw',
    bytesOfBase64url(challenge.nonce),
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign'],
  );
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, message));
  return Array.from(mac, (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Answers the challenge a creation came back with, at `<upload URL>/proof`. True when the
 * server accepted it: the upload is finished without sending the file.
 */
export async function proveOwnership(
  uploadUrl: string,
  challengeHeader: string | null,
  file: Blob,
  headers: Record<string, string>,
): Promise<boolean> {
  const challenge = parseChallenge(challengeHeader);
  if (!challenge) return false;
  const response = await fetch(`${uploadUrl}/proof`, {
    method: 'POST',
    headers: { ...headers, 'Content-Type': 'application/json' },
    body: JSON.stringify({ answer: await answerOf(file, challenge) }),
  });
  return response.status === 204;
}
