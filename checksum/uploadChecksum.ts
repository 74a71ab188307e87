import { createHash, type Hash } from 'node:crypto';
import { ERRORS, type ErrorEntry } from '../errors/catalogue.ts';

/** The algorithms of the checksum extension this server verifies, as Tus-Checksum-Algorithm says. */
export const CHECKSUM_ALGORITHMS = ['sha1', 'md5', 'sha256', 'sha512'] as const;
type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];

/** What an Upload-Checksum header (or trailer) says the request body hashes to. */
export type UploadChecksum = { algorithm: ChecksumAlgorithm; digest: Buffer };

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * Parses `Upload-Checksum: <algorithm> <Base64 digest>`. An algorithm the server does not
 * support is a 400 (tus: "the Server MUST respond with the 400 Bad Request status"); so is a
 * digest that is not Base64 at all. A Base64 digest of another length is well-formed and can
 * never match: the body is read and answered 460 Checksum Mismatch, as any other mismatch.
 */
export function parseUploadChecksum(value: string): UploadChecksum | ErrorEntry {
  const match = /^\s*(\S+) +(\S+)\s*$/.exec(value);
  if (!match) return ERRORS.INVALID_UPLOAD_CHECKSUM;
  const [, name = '', encoded = ''] = match;
  const algorithm = CHECKSUM_ALGORITHMS.find((known) => known === name.toLowerCase());
  if (!algorithm) return ERRORS.CHECKSUM_ALGORITHM_UNSUPPORTED;
  if (!BASE64.test(encoded) || encoded.length % 4 !== 0) return ERRORS.INVALID_UPLOAD_CHECKSUM;
  return { algorithm, digest: Buffer.from(encoded, 'base64') };
}

/**
 * Hashes of the request body in the algorithms it may be checked with: the header's one, or all
 * of them when the checksum comes as a trailer (known only once the body has ended).
 */
export class ChecksumVerifier {
  private readonly hashes: Map<ChecksumAlgorithm, Hash>;

  constructor(algorithms: readonly ChecksumAlgorithm[]) {
    this.hashes = new Map(algorithms.map((algorithm) => [algorithm, createHash(algorithm)]));
  }

  update(chunk: Uint8Array): void {
    for (const hash of this.hashes.values()) hash.update(chunk);
  }

  /** Whether the body hashes to `expected`; call once, after the body has ended. */
  matches(expected: UploadChecksum): boolean {
    const hash = this.hashes.get(expected.algorithm);
    return hash?.digest().equals(expected.digest) ?? false;
  }
}
