import type { Upload } from '@tus/utils';

/** Who wants to know when uploads are created, finished or terminated (post-* hooks, metrics). */
export type LifecycleListener = {
  created?(req: object, upload: Upload): void;
  finished?(req: object, upload: Upload): void;
  terminated?(req: object, upload: Upload): void;
};

/**
 * One place every creation, finish and termination is reported, whichever route did it: tus
 * itself, a dedupe hit or proof, a final upload, a stopped upload. Listeners must not throw.
 */
export class UploadLifecycle {
  private readonly listeners: LifecycleListener[] = [];

  listen(listener: LifecycleListener): void {
    this.listeners.push(listener);
  }

  created(req: object, upload: Upload): void {
    for (const listener of this.listeners) listener.created?.(req, upload);
  }

  finished(req: object, upload: Upload): void {
    for (const listener of this.listeners) listener.finished?.(req, upload);
  }

  terminated(req: object, upload: Upload): void {
    for (const listener of this.listeners) listener.terminated?.(req, upload);
  }
}
