import type { Upload } from '@tus/utils';
import { stampMetadata } from '../auth/context.ts';
import { concatOf } from '../concat/header.ts';
import { checkUploadMetadata } from '../dedupe/claims.ts';
import type { Dedupe } from '../dedupe/Dedupe.ts';

/**
 * The tus lifecycle callbacks, composed once and handed to the tus server (and to the
 * concatenation, whose final uploads tus does not create). `req` is tus's web Request or the
 * Node request; only its facts are read (auth/context).
 */
export function createHooks(dedupe?: Dedupe) {
  return {
    async onUploadCreate(req: object, upload: Upload): Promise<{ metadata: Upload['metadata'] }> {
      const rejection = checkUploadMetadata(upload);
      if (rejection) throw rejection;
      // The owner (token `sub`), a dedupe challenge and the concatenation role are kept with
      // the upload; clients cannot set those keys themselves.
      const metadata = stampMetadata(upload.metadata, req);
      // A partial's bytes are hashed as part of its final upload, not on their own.
      if (concatOf(metadata)?.kind === 'partial') dedupe?.skipHashing(upload.id);
      else dedupe?.expect(upload);
      return { metadata };
    },
    async onUploadFinish(_req: object, upload: Upload): Promise<object> {
      if (concatOf(upload.metadata)?.kind === 'partial') {
        dedupe?.forget(upload.id);
        return {};
      }
      const rejection = await dedupe?.finish(upload);
      if (rejection) throw rejection;
      return {};
    },
  };
}
