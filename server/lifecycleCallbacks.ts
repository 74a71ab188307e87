import type { Upload } from '@tus/utils';
import { checkUploadMetadata } from '../dedupe/claims.ts';
import type { Dedupe } from '../dedupe/Dedupe.ts';
import type { UploadHooks } from '../hooks/UploadHooks.ts';
import { concatOf, stampMetadata } from '../request/metadata.ts';

/** What onUploadFinish may put into the finishing answer (a pre-finish hook's HTTPResponse). */
type FinishAnswer = { status_code?: number; body?: string; headers?: Record<string, string> };

/**
 * The tus lifecycle callbacks, composed once and handed to the tus server (and to the
 * concatenation, whose final uploads tus does not create). `req` is tus's web Request or the
 * Node request; only its context is read (request/context.ts).
 */
export function createHooks(dedupe?: Dedupe, hooks?: UploadHooks) {
  return {
    async onUploadCreate(req: object, upload: Upload): Promise<{ metadata: Upload['metadata'] }> {
      const rejection = checkUploadMetadata(upload);
      if (rejection) throw rejection;
      // The owner (token `sub`), a dedupe challenge and the concatenation role are kept with
      // the upload; clients cannot set those keys themselves (nor can a pre-create hook).
      const metadata = stampMetadata(upload.metadata, req);
      // A partial's bytes are hashed as part of its final upload, not on their own.
      if (concatOf(metadata)?.kind === 'partial') dedupe?.skipHashing(upload.id);
      else dedupe?.expect({ ...upload, metadata } as Upload);
      return { metadata };
    },
    async onUploadFinish(req: object, upload: Upload): Promise<FinishAnswer> {
      if (concatOf(upload.metadata)?.kind === 'partial') {
        dedupe?.forget(upload.id);
      } else {
        const rejection = await dedupe?.finish(upload);
        if (rejection) throw rejection;
      }
      // pre-finish: the upload is whole and verified; the hook may add to the answer.
      const answer = await hooks?.preFinish(req, upload);
      if (!answer) return {};
      return {
        status_code: answer.StatusCode || undefined,
        body: answer.Body || undefined,
        headers: answer.Header,
      };
    },
  };
}
