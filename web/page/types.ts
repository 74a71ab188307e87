import type { Body, Meta } from '@uppy/core';

/** A file's metadata in Uppy; Tus sends it as Upload-Metadata. */
export type FileMeta = Meta & { sha256?: string };

/** What a finished upload's response carries: Tus's XMLHttpRequest, or a dedupe hit's verdict. */
export type UploadBody = Body & { deduplicated?: boolean };
