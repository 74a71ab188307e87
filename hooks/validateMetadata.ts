import type { Upload } from '@tus/utils';

/** A tus hook rejection: @tus/server answers with this status and body. */
export type HookRejection = { status_code: number; body: string };

const HASH_FORMATS: Record<string, RegExp> = {
  sha256: /^[0-9a-f]{64}$/i,
  md5: /^[0-9a-f]{32}$/i,
};

/**
 * onUploadCreate: rejects metadata the server would later misread. Returns the reason, or
 * undefined when the metadata is acceptable. Hash values are normalised to lower case.
 */
export function checkUploadMetadata(upload: Upload): HookRejection | undefined {
  const metadata = upload.metadata ?? {};
  for (const [key, format] of Object.entries(HASH_FORMATS)) {
    const value = metadata[key];
    if (value === undefined) continue;
    if (value === null || !format.test(value)) {
      return {
        status_code: 400,
        body: `Upload-Metadata ${key} must be ${format === HASH_FORMATS.sha256 ? 64 : 32} hex characters\n`,
      };
    }
    metadata[key] = value.toLowerCase();
  }
  return undefined;
}
