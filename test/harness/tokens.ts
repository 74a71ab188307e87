import { createServer, type Server } from 'node:http';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';

/** The HS256 secret the suites run their servers with (at least 32 characters). */
export const JWT_SECRET = 'test-secret-0123456789-abcdefghijklmnop';
const secretKey = new TextEncoder().encode(JWT_SECRET);

/**
 * An HS256 token for `sub`, signed the way an application would sign it (with jose);
 * `expiresIn: null` leaves `exp` out.
 */
export function tokenFor(
  sub: string,
  options: { expiresIn?: string | number | null; secret?: Uint8Array; claims?: object } = {},
): Promise<string> {
  const jwt = new SignJWT({ ...options.claims })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuedAt();
  if (options.expiresIn !== null) jwt.setExpirationTime(options.expiresIn ?? '10m');
  return jwt.sign(options.secret ?? secretKey);
}

/** An unsigned token (`alg: none`) claiming to be `sub`. */
export function unsignedTokenFor(sub: string): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  return `${part({ alg: 'none', typ: 'JWT' })}.${part({ sub, iat: now, exp: now + 600 })}.`;
}

export function bearer(token: string): Record<string, string> {
  return { Authorization: `Bearer ${token}` };
}

/** A JWKS endpoint on loopback serving one RS256 public key; `sign` makes tokens with its key. */
export async function startJwks(): Promise<{
  url: string;
  sign(sub: string, claims?: { issuer?: string; audience?: string }): Promise<string>;
  close(): Promise<void>;
}> {
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'test-key', alg: 'RS256', use: 'sig' };
  const server: Server = createServer((_req, res) => {
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    sign: (sub, claims = {}) => {
      const jwt = new SignJWT({})
        .setProtectedHeader({ alg: 'RS256', kid: 'test-key' })
        .setSubject(sub)
        .setExpirationTime('10m');
      if (claims.issuer) jwt.setIssuer(claims.issuer);
      if (claims.audience) jwt.setAudience(claims.audience);
      return jwt.sign(privateKey);
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
