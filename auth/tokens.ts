import { createRemoteJWKSet, errors, type JWTVerifyGetKey, jwtVerify } from 'jose';

export type TokenOptions = {
  /** HS256 shared secret. */
  secret?: string;
  /** JWKS document with the RS256/ES256 public keys (cached, refreshed on unknown key ids). */
  jwksUrl?: string;
  issuer?: string;
  audience?: string;
  /** Refuse tokens without `exp` (AUTH_REQUIRE_EXP, on by default): they never expire. */
  requireExp?: boolean;
};

/** Why a request is not authenticated; `reason` goes into WWW-Authenticate (RFC 6750 §3). */
export class AuthFailure extends Error {
  override name = 'AuthFailure';
  constructor(
    readonly error: 'missing_token' | 'invalid_token',
    readonly reason: string,
  ) {
    super(reason);
  }
}

/** The JWKS could not be fetched: the token may be fine, the server cannot tell now (503). */
export class KeysUnavailable extends Error {
  override name = 'KeysUnavailable';
}

/** Longest `sub` accepted: it is stored with every upload and used in index keys. */
const MAX_SUBJECT_LENGTH = 256;
// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" (RFC 6750 §2.1)
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

/** Verifies `Authorization: Bearer <JWT>`; resolves with the token's subject, the upload owner. */
export type TokenVerifier = (authorization: string | undefined) => Promise<string>;

/** The verifier for the configured keys, or undefined when auth is off (anonymous). */
export function createTokenVerifier(options: TokenOptions): TokenVerifier | undefined {
  const { secret, jwksUrl, issuer, audience, requireExp = true } = options;
  const requiredClaims = requireExp ? ['sub', 'exp'] : ['sub'];
  let key: Uint8Array | JWTVerifyGetKey;
  let algorithms: string[];
  if (secret) {
    key = new TextEncoder().encode(secret);
    algorithms = ['HS256'];
  } else if (jwksUrl) {
    key = createRemoteJWKSet(new URL(jwksUrl), {
      timeoutDuration: 5000,
      cooldownDuration: 30_000,
      cacheMaxAge: 10 * 60_000,
    });
    algorithms = ['RS256', 'ES256'];
  } else {
    return undefined;
  }
  return async (authorization) => {
    const token = authorization === undefined ? undefined : BEARER.exec(authorization)?.[1];
    if (!token) throw new AuthFailure('missing_token', 'a Bearer token is required');
    try {
      // Only the configured algorithms: `alg: none` and HS256-signed-with-a-public-key never pass.
      const { payload } = await jwtVerify(token, key, {
        algorithms,
        issuer,
        audience,
        requiredClaims,
      });
      const sub = payload.sub;
      if (typeof sub !== 'string' || sub === '' || sub.length > MAX_SUBJECT_LENGTH) {
        throw new AuthFailure('invalid_token', 'the token has no usable sub claim');
      }
      return sub;
    } catch (error) {
      if (error instanceof AuthFailure) throw error;
      if (error instanceof errors.JWKSTimeout || isFetchFailure(error)) {
        throw new KeysUnavailable('the JWKS could not be fetched');
      }
      if (error instanceof errors.JWTExpired) {
        throw new AuthFailure('invalid_token', 'the token has expired');
      }
      if (error instanceof errors.JWTClaimValidationFailed && error.claim === 'exp') {
        throw new AuthFailure('invalid_token', 'the token has no exp claim');
      }
      throw new AuthFailure('invalid_token', 'the token is invalid');
    }
  };
}

function isFetchFailure(error: unknown): boolean {
  // createRemoteJWKSet's fetch rejects with a TypeError ("fetch failed") when the host is away,
  // and jose answers a non-200 JWKS response with JOSEError.
  return (
    (error instanceof TypeError && /fetch/i.test(error.message)) ||
    (error instanceof errors.JOSEError && error.code === 'ERR_JOSE_GENERIC')
  );
}
