import type { ServerOptions } from '@tus/server';
import { stampMetadata } from '../auth/context.ts';
import { checkUploadMetadata } from '../dedupe/claims.ts';
import type { Dedupe } from '../dedupe/Dedupe.ts';

/** The tus lifecycle callbacks, composed once and handed to the tus server. */
export function createHooks(
  dedupe?: Dedupe,
): Pick<ServerOptions, 'onUploadCreate' | 'onUploadFinish'> {
  return {
    async onUploadCreate(req, upload) {
      const rejection = checkUploadMetadata(upload);
      if (rejection) throw rejection;
      dedupe?.expect(upload);
      // The owner (token `sub`) and a dedupe challenge are kept with the upload; clients cannot
      // set those keys themselves.
      return { metadata: stampMetadata(upload.metadata, req) };
    },
    async onUploadFinish(_req, upload) {
      const rejection = await dedupe?.finish(upload);
      if (rejection) throw rejection;
      return {};
    },
  };
}
