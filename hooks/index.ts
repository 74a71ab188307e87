import type { ServerOptions } from '@tus/server';
import { checkUploadMetadata } from './validateMetadata.ts';

/** The tus lifecycle callbacks, composed once and handed to the tus server. */
export function createHooks(): Pick<ServerOptions, 'onUploadCreate'> {
  return {
    async onUploadCreate(_req, upload) {
      const rejection = checkUploadMetadata(upload);
      if (rejection) throw rejection;
      return { metadata: upload.metadata };
    },
  };
}
