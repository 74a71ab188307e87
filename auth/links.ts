import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';

/** Longest lifetime a signed download link may ask for. */
export const MAX_LINK_SECONDS = 7 * 24 * 3600;

export type LinkCheck = 'valid' | 'expired' | 'invalid';

/**
 * Stateless signed download links: `?expires=<unix seconds>&signature=<HMAC-SHA256 of
 * "<id>.<expires>">`, valid on every instance that has the same key.
 */
export class LinkSigner {
  constructor(private readonly key: Buffer) {}

  /** The key: LINK_SIGNING_KEY, or one derived from the JWT secret, or random (one instance). */
  static fromSecrets(
    linkKey?: string,
    jwtSecret?: string,
  ): { signer: LinkSigner; stable: boolean } {
    if (linkKey) return { signer: new LinkSigner(Buffer.from(linkKey)), stable: true };
    if (jwtSecret) {
      const derived = hkdfSync('sha256', jwtSecret, 'tus-minio-server', 'download links', 32);
      return { signer: new LinkSigner(Buffer.from(derived)), stable: true };
    }
    return { signer: new LinkSigner(randomBytes(32)), stable: false };
  }

  sign(id: string, expires: number): string {
    return createHmac('sha256', this.key).update(`${id}.${expires}`).digest('base64url');
  }

  check(id: string, expires: string, signature: string, now = Date.now()): LinkCheck {
    if (!/^\d{1,12}$/.test(expires)) return 'invalid';
    const expected = Buffer.from(this.sign(id, Number(expires)));
    const given = Buffer.from(signature);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'invalid';
    return Number(expires) * 1000 <= now ? 'expired' : 'valid';
  }
}
