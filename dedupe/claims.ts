import type { Upload } from '@tus/utils';
import { ERRORS, type ErrorEntry } from '../errors/catalogue.ts';

export type HashAlgorithm = 'sha256' | 'md5';

/** The digests a client says its bytes have, from Upload-Metadata (already checked). */
export type Claims = Partial<Record<HashAlgorithm, string>>;

const HASH_FORMATS: Record<HashAlgorithm, { format: RegExp; error: ErrorEntry }> = {
  sha256: { format: /^[0-9a-f]{64}$/i, error: ERRORS.INVALID_SHA256 },
  md5: { format: /^[0-9a-f]{32}$/i, error: ERRORS.INVALID_MD5 },
};

export function claimsOf(metadata: Upload['metadata']): Claims {
  const claims: Claims = {};
  if (metadata?.sha256) claims.sha256 = metadata.sha256;
  if (metadata?.md5) claims.md5 = metadata.md5;
  return claims;
}

/**
 * onUploadCreate: rejects metadata the server would later misread. Returns the reason, or
 * undefined when the metadata is acceptable. Hash values are normalised to lower case.
 */
export function checkUploadMetadata(upload: Upload): ErrorEntry | undefined {
  const metadata = upload.metadata ?? {};
  for (const [key, { format, error }] of Object.entries(HASH_FORMATS)) {
    const value = metadata[key];
    if (value === undefined) continue;
    if (value === null || !format.test(value)) return error;
    metadata[key] = value.toLowerCase();
  }
  return undefined;
}
