import type { ServerOptions } from '@tus/server';
import { checkUploadMetadata } from '../dedupe/claims.ts';
import type { Dedupe } from '../dedupe/Dedupe.ts';

/** The tus lifecycle callbacks, composed once and handed to the tus server. */
export function createHooks(
  dedupe?: Dedupe,
): Pick<ServerOptions, 'onUploadCreate' | 'onUploadFinish'> {
  return {
    async onUploadCreate(_req, upload) {
      const rejection = checkUploadMetadata(upload);
      if (rejection) throw rejection;
      return { metadata: upload.metadata };
    },
    async onUploadFinish(_req, upload) {
      const rejection = await dedupe?.finish(upload);
      if (rejection) throw rejection;
      return {};
    },
  };
}
