import { AsyncLocalStorage } from 'node:async_hooks';
import { Readable } from 'node:stream';
import type { Part } from '@aws-sdk/client-s3';
import { type MetadataValue, S3Store } from '@tus/s3-store';
import { TUS_RESUMABLE, Upload } from '@tus/utils';
import { currentContext, type RequestContext } from '../../request/context.ts';
import { Spool } from '../spool.ts';
import {
  type ContentSource,
  FINISHED_KEY,
  finishedNow,
  linkedOwner,
  stampFinished,
} from '../types.ts';
import { type PartOrder, planConcatenation } from './concatPlan.ts';
import { instrument, isNotFound, notFoundAsTus, type S3Observer } from './outages.ts';
import { checksumEveryPart } from './partChecksums.ts';
import { gathered, planPieces, ShortBody, StreamSlicer } from './partPlan.ts';
import type { S3Http } from './S3Http.ts';

/** What one write() knows while it runs: where it starts and ends, and the upload's parts. */
type WriteState = {
  start: number;
  /** Where the request body ends, when it declared its length. */
  end?: number;
  /** Every part of the multipart upload, kept current by this write; undefined: ask S3. */
  parts?: Part[];
};

const bytesIn = (parts: Part[]) => parts.reduce((sum, part) => sum + (part.Size ?? 0), 0);

/** `chunks` as they pass, each kept in `spool` before it goes on. */
async function* spooled(chunks: AsyncIterable<Buffer>, spool: Spool): AsyncGenerator<Buffer> {
  for await (const chunk of chunks) {
    await spool.append(chunk);
    yield chunk;
  }
}

/**
 * Whether the record says the upload is finished: stamped when it finished, or with every byte
 * of its length (a 0-byte upload, finished at creation).
 */
const recordedFinished = (file: Upload) =>
  file.metadata?.[FINISHED_KEY] !== undefined ||
  (file.size !== undefined && file.offset === file.size);

/**
 * @tus/s3-store with linked (deduplicated) uploads; empty uploads and the incomplete tail on
 * termination handled; parts streamed from the request (see uploadParts); and the small requests
 * of every upload (`.info`, the tail's HEAD) sent through S3Http instead of the SDK.
 */
export class TusS3Store extends S3Store {
  private readonly writing = new AsyncLocalStorage<WriteState>();
  /** Parts listed earlier in a request, by upload id (a request's scope ends with it). */
  private readonly listed = new WeakMap<RequestContext, Map<string, Part[]>>();

  private listedIn(scope: RequestContext): Map<string, Part[]> {
    let parts = this.listed.get(scope);
    if (!parts) {
      parts = new Map();
      this.listed.set(scope, parts);
    }
    return parts;
  }

  constructor(
    options: ConstructorParameters<typeof S3Store>[0],
    /** The small objects (`.info`) and the tail's HEAD, outside the SDK. */
    private readonly http: S3Http,
    observe?: S3Observer,
  ) {
    super(options);
    instrument(this.client, observe);
    checksumEveryPart(this.client);
  }

  /** What S3Store sends with `<id>.info`: its tag (when expiring by tags) and metadata. */
  private infoHeaders(uploadId: string, complete: 'true' | 'false'): Record<string, string> {
    const headers: Record<string, string> = {
      'x-amz-meta-upload-id': uploadId,
      'x-amz-meta-tus-version': TUS_RESUMABLE,
    };
    const tag = this.useCompleteTag(complete);
    if (tag) headers['x-amz-tagging'] = tag;
    return headers;
  }

  /** As S3Store's (a HEAD of the tail: does it exist, how long is it), sent through S3Http. */
  protected override getIncompletePartSize(id: string): Promise<number | undefined> {
    return this.http.size(this.partKey(id, true));
  }

  /** As S3Store's (the record again, tagged complete), sent through S3Http. */
  protected override async completeMetadata(upload: Upload): Promise<void> {
    if (!this.shouldUseExpirationTags()) return;
    const { 'upload-id': uploadId } = await this.getMetadata(upload.id);
    await this.http.put(
      this.infoKey(upload.id),
      JSON.stringify(upload),
      this.infoHeaders(uploadId ?? '', 'true'),
    );
  }

  /**
   * A linked upload is finished and has no multipart upload to list. An upload this request
   * created or wrote has the offset it was left at (the creation answer asks for it again).
   */
  override async getUpload(id: string): Promise<Upload> {
    const { file } = await this.getMetadata(id).catch(notFoundAsTus);
    if (linkedOwner(file, id)) return new Upload({ ...file, offset: file.size ?? 0 });
    const known = currentContext()?.offsets.get(id);
    if (known !== undefined) return new Upload({ ...file, offset: known });
    return super.getUpload(id);
  }

  /** The record goes to the cache as it is written, so the next read needs no S3 request. */
  protected override async saveMetadata(upload: Upload, uploadId: string): Promise<void> {
    await this.http.put(
      this.infoKey(upload.id),
      JSON.stringify(upload),
      this.infoHeaders(uploadId, 'false'),
    );
    const value: MetadataValue = {
      'tus-version': TUS_RESUMABLE,
      'upload-id': uploadId,
      file: new Upload({ ...upload }),
    };
    await this.cache.set(upload.id, value);
  }

  /** The upload's record as stored in `<id>.info` (cached), without asking S3 for its parts. */
  async recordOf(id: string): Promise<Upload> {
    return (await this.getMetadata(id)).file;
  }

  async contentKeyOf(id: string): Promise<string> {
    return linkedOwner(await this.recordOf(id), id) ?? id;
  }

  /** Writes `<id>.info` of an upload with bytes of its own again, finished now (its validators). */
  async saveFinished(upload: Upload): Promise<Upload> {
    const at = new Date();
    const { 'upload-id': uploadId, file } = await this.getMetadata(upload.id);
    const record = new Upload({ ...stampFinished(file, at), offset: upload.offset });
    await this.http.put(
      this.infoKey(upload.id),
      JSON.stringify(record),
      this.infoHeaders(uploadId ?? '', 'true'),
    );
    await this.cache.set(upload.id, {
      'tus-version': TUS_RESUMABLE,
      'upload-id': uploadId ?? '',
      file: record,
    });
    return stampFinished(upload, at);
  }

  /** Writes `<id>.info` in S3Store's own format, finished, with the owner as storage path. */
  async saveLinked(upload: Upload, owner: string): Promise<void> {
    const record = new Upload({
      ...finishedNow(upload),
      offset: upload.size ?? 0,
      creation_date: upload.creation_date ?? new Date().toISOString(),
      storage: { type: 's3', path: owner, bucket: this.bucket },
    });
    await this.http.put(
      this.infoKey(upload.id),
      JSON.stringify(record),
      this.infoHeaders('', 'true'),
    );
    await this.clearCache(upload.id);
  }

  async removeRecord(id: string): Promise<void> {
    await this.client.deleteObject({ Bucket: this.bucket, Key: this.infoKey(id) });
    await this.clearCache(id);
  }

  /** A 0-byte upload is finished at creation, but nothing would complete its multipart upload. */
  override async create(upload: Upload): Promise<Upload> {
    const created = await super.create(upload);
    if (created.size === 0) await super.write(Readable.from([]), created.id, 0);
    currentContext()?.offsets.set(created.id, 0);
    return created;
  }

  /** A 0-byte upload was completed by create(); a creation-with-upload body adds nothing. */
  override async write(src: Readable, id: string, offset: number): Promise<number> {
    const record = await this.getMetadata(id);
    if (offset === 0 && record.file.size === 0) return 0;
    const scope = currentContext();
    const length = scope?.bodyLength;
    const state: WriteState = {
      start: offset,
      end: length === undefined ? undefined : offset + length,
    };
    const newOffset = await this.writing.run(state, () => super.write(src, id, offset));
    scope?.offsets.set(id, newOffset);
    // S3Store forgets the record of an upload it finished (clearCache); its `.info` says what it
    // said before, and this request, holding the lock, goes on to finish it (saveFinished).
    if (newOffset === record.file.size) scope?.records.set(id, record);
    return newOffset;
  }

  /**
   * A write lists the parts once and keeps the list current itself; S3Store would list them again
   * before completing the upload.
   */
  protected override async retrieveParts(id: string, partNumberMarker?: string): Promise<Part[]> {
    if (partNumberMarker !== undefined) return super.retrieveParts(id, partNumberMarker);
    const state = this.writing.getStore();
    const scope = currentContext();
    if (!state) {
      // A PATCH lists the parts for its offset check, under the upload's lock, right before it
      // writes: the write starts from that list.
      const parts = await super.retrieveParts(id);
      if (scope) this.listedIn(scope).set(id, parts);
      return parts;
    }
    state.parts ??= (scope && this.listedIn(scope).get(id)) ?? (await super.retrieveParts(id));
    if (scope) this.listedIn(scope).delete(id);
    // Parts finish in any order; S3 completes an upload only from a list in part order.
    return [...state.parts].sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
  }

  /** When the parts hold every byte of the upload's offset, there is no tail to fetch. */
  protected override async downloadIncompletePart(id: string) {
    const state = this.writing.getStore();
    if (state?.parts && bytesIn(state.parts) === state.start) return undefined;
    return super.downloadIncompletePart(id);
  }

  /**
   * With the body's length declared, each part streams from the request straight to S3 (its
   * length is known before its first byte), while a spool keeps its bytes: the part never waits
   * for a temporary file and is never read back. A body that ends early loses nothing: the
   * request in flight is stopped, and what came of it is sent again from the spool, as a part or
   * as the tail. Without a declared length, or when an earlier tail is prepended, S3Store's way
   * (each part written to a temporary file, then sent) applies.
   */
  protected override async uploadParts(
    metadata: MetadataValue,
    readStream: Readable,
    currentPartNumber: number,
    offset: number,
  ): Promise<number> {
    const state = this.writing.getStore();
    if (!state || state.end === undefined || offset !== state.start) {
      // Parts uploaded from S3Store's own callbacks are not tracked: ask S3 again afterwards.
      if (state) state.parts = undefined;
      return super.uploadParts(metadata, readStream, currentPartNumber, offset);
    }
    const { file } = metadata;
    const end = file.size === undefined ? state.end : Math.min(state.end, file.size);
    const pieces = planPieces(
      offset,
      end,
      file.size,
      this.calcOptimalPartSize(file.size),
      this.minPartSize,
    );
    const slicer = new StreamSlicer(readStream);
    const uploadId = metadata['upload-id'];
    // The upload's lock lost: every part in flight is aborted (S3 keeps none of it), none resent.
    const lockLost = currentContext()?.lockLost.signal;
    const inFlight: Array<Promise<void>> = [];
    let uploaded = 0;
    let partNumber = currentPartNumber;
    let cut: { sent: Promise<void>; number: number; spool: Spool } | undefined;
    let failure: unknown;
    // Reading the request (or the spool) failed for another reason than a short body.
    let bodyFailure: unknown;
    for (const piece of pieces) {
      let permit: Awaited<ReturnType<typeof this.partUploadSemaphore.acquire>> | undefined;
      let spool: Spool;
      try {
        permit = await this.partUploadSemaphore.acquire();
        spool = await Spool.open();
      } catch (error) {
        // No temporary file (a full disk): stop here, once the pieces in flight have settled.
        void permit?.release();
        failure = error;
        break;
      }
      const acquired = permit;
      const abort = new AbortController();
      const fence = () => abort.abort(lockLost?.reason);
      lockLost?.addEventListener('abort', fence, { once: true });
      let sliced!: () => void;
      const slicedAll = new Promise<void>((resolve) => {
        sliced = resolve;
      });
      const body = Readable.from(
        (async function* () {
          try {
            yield* gathered(spooled(slicer.next(piece.length), spool));
          } catch (error) {
            // The HTTP request would wait for the missing bytes: stop it. The body then just
            // ends: the SDK's aws-chunked wrapper (part checksums) would rethrow an error
            // where nothing listens, and the aborted request sends nothing more either way.
            abort.abort(error);
            if (!(error instanceof ShortBody)) bodyFailure ??= error;
          } finally {
            sliced();
          }
        })(),
        { objectMode: false },
      );
      // Its failure is the request's (aborted above): the stream's own error event is no news.
      body.on('error', () => undefined);
      const number = partNumber++;
      const sent = this.sendPiece(
        file.id,
        uploadId,
        piece.kind,
        number,
        body,
        piece.length,
        abort.signal,
      )
        .then((etag) => {
          uploaded += piece.length;
          if (piece.kind === 'part')
            state.parts?.push({ PartNumber: number, ETag: etag, Size: piece.length });
        })
        .finally(() => {
          lockLost?.removeEventListener('abort', fence);
          void acquired.release();
          // A cut piece keeps its spool: its bytes are sent again below.
          if (!abort.signal.aborted) void spool.discard();
        });
      inFlight.push(sent);
      // The next piece reads on from where this one stops; a failed request stops the write.
      const stopped = await Promise.race([slicedAll, sent]).then(
        () => false,
        () => true,
      );
      if (abort.signal.aborted) cut = { sent, number, spool };
      if (stopped || cut) break;
    }
    const results = await Promise.allSettled(inFlight);
    try {
      lockLost?.throwIfAborted();
      if (failure) throw failure;
      if (bodyFailure) throw bodyFailure;
      for (const [index, result] of results.entries()) {
        if (result.status === 'rejected' && inFlight[index] !== cut?.sent) throw result.reason;
      }
      // The body ended early: what came of the piece in flight is a part of its own, or the tail.
      if (cut && cut.spool.length > 0) {
        const { number, spool } = cut;
        const kind = spool.length >= this.minPartSize ? 'part' : 'tail';
        const etag = await this.sendPiece(
          file.id,
          uploadId,
          kind,
          number,
          await spool.reader(),
          spool.length,
        );
        if (kind === 'part')
          state.parts?.push({ PartNumber: number, ETag: etag, Size: spool.length });
        uploaded += spool.length;
      }
    } finally {
      await cut?.spool.discard();
    }
    return uploaded;
  }

  private async sendPiece(
    id: string,
    uploadId: string,
    kind: 'part' | 'tail',
    partNumber: number,
    body: Readable,
    length: number,
    abortSignal?: AbortSignal,
  ): Promise<string | undefined> {
    if (kind === 'tail') {
      const { ETag } = await this.client.putObject(
        {
          Bucket: this.bucket,
          Key: this.partKey(id, true),
          Body: body,
          ContentLength: length,
          Tagging: this.useCompleteTag('false'),
        },
        { abortSignal },
      );
      return ETag;
    }
    const { ETag } = await this.client.uploadPart(
      {
        Bucket: this.bucket,
        Key: id,
        UploadId: uploadId,
        PartNumber: partNumber,
        Body: body,
        ContentLength: length,
      },
      { abortSignal },
    );
    return ETag;
  }

  /**
   * A finished upload made of stored objects (concatenation): a multipart upload whose parts are
   * copied inside S3 where each source is long enough, the rest read and sent (see
   * planConcatenation). Crashed half-way, it is an unfinished upload that expires; failed, it is
   * removed.
   */
  async concatenate(upload: Upload, sources: ContentSource[]): Promise<void> {
    if (sources.every(({ size }) => size === 0)) {
      await this.create(upload);
      return;
    }
    await super.create(upload);
    try {
      const metadata = await this.getMetadata(upload.id);
      const orders = planConcatenation(sources, this.minPartSize);
      const parts: Part[] = [];
      let next = 0;
      // A few parts at once: copies are MinIO's work, gathered parts the server's.
      const worker = async () => {
        while (next < orders.length) {
          const index = next++;
          const order = orders[index] as PartOrder;
          const PartNumber = index + 1;
          parts.push({
            PartNumber,
            ETag: await this.orderPart(upload.id, metadata, PartNumber, order),
          });
        }
      };
      await Promise.all(Array.from({ length: Math.min(4, orders.length) }, worker));
      parts.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
      await this.finishMultipartUpload(metadata, parts);
      await this.completeMetadata(upload);
    } catch (error) {
      await this.remove(upload.id).catch(() => undefined);
      throw error;
    }
  }

  private async orderPart(
    key: string,
    metadata: MetadataValue,
    PartNumber: number,
    order: PartOrder,
  ): Promise<string | undefined> {
    const UploadId = metadata['upload-id'];
    if (order.kind === 'copy') {
      const { key: source, start, end } = order.range;
      const { CopyPartResult } = await this.client.uploadPartCopy({
        Bucket: this.bucket,
        Key: key,
        UploadId,
        PartNumber,
        CopySource: `${this.bucket}/${source}`,
        CopySourceRange: `bytes=${start}-${end - 1}`,
      });
      return CopyPartResult?.ETag;
    }
    const chunks: Buffer[] = [];
    for (const { key: source, start, end } of order.ranges) {
      for await (const chunk of await this.http.get(source, `bytes=${start}-${end - 1}`)) {
        chunks.push(chunk as Buffer);
      }
    }
    const body = Buffer.concat(chunks);
    if (body.length !== order.length) {
      throw new Error(`concatenation read ${body.length} of ${order.length} bytes`);
    }
    const { ETag } = await this.client.uploadPart({
      Bucket: this.bucket,
      Key: key,
      UploadId,
      PartNumber,
      Body: body,
      ContentLength: body.length,
    });
    return ETag;
  }

  /**
   * S3Store changes the cached record in place and saves `<id>.info`, but never refreshes the
   * cache: an in-process cache shares that object and sees the length, Redis keeps a copy that
   * still has none. A length of 0 finishes the upload, as a 0-byte creation does.
   */
  override async declareUploadLength(id: string, length: number): Promise<void> {
    await super.declareUploadLength(id, length);
    await this.clearCache(id);
    if (length === 0) await super.write(Readable.from([]), id, 0);
  }

  /**
   * S3Store's sweep deletes an expired upload's objects but leaves its record in the metadata
   * cache, where HEAD still found it (200 for an upload that is gone). Each expired upload loses
   * its record first, then its cache entry, its multipart upload and its incomplete tail.
   */
  override async deleteExpired(): Promise<number> {
    const period = this.getExpiration();
    if (period === 0) return 0;
    let deleted = 0;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      const page = await this.client.listMultipartUploads({
        Bucket: this.bucket,
        KeyMarker: keyMarker,
        UploadIdMarker: uploadIdMarker,
      });
      for (const { Key, UploadId, Initiated } of page.Uploads ?? []) {
        if (!Key || !UploadId || !Initiated || Date.now() <= Initiated.getTime() + period) continue;
        await this.client.deleteObject({ Bucket: this.bucket, Key: this.infoKey(Key) });
        await this.clearCache(Key);
        await this.client.abortMultipartUpload({ Bucket: this.bucket, Key, UploadId });
        await this.deleteIncompletePart(Key);
        deleted += 1;
      }
      keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
    } while (keyMarker);
    return deleted;
  }

  /**
   * Removes every object of the upload: its bytes (`<id>`), its tail (`<id>.part`), then its
   * record (`<id>.info`, last, so a removal that fails half-way can be asked again), whatever
   * its multipart upload's state. S3Store aborts the multipart upload first and answers 404 when
   * S3 says NoSuchUpload, which AWS and the stores that answer as it does say of a completed one
   * (MinIO answers 204): a finished upload would stay. A missing record is still a 404.
   */
  override async remove(id: string): Promise<void> {
    const { file, 'upload-id': uploadId } = await this.getMetadata(id).catch(notFoundAsTus);
    // A linked upload has no bytes and no multipart upload of its own.
    if (linkedOwner(file, id)) return this.removeRecord(id);
    // A finished upload's multipart upload is completed: there is nothing to abort.
    if (uploadId && !recordedFinished(file)) {
      await this.client
        .abortMultipartUpload({ Bucket: this.bucket, Key: id, UploadId: uploadId })
        .catch((error: unknown) => {
          // Completed, aborted or expired already: its object (if any) goes below.
          if (!isNotFound(error) && (error as Error).name !== 'NoSuchUpload') throw error;
        });
    }
    const { Errors = [] } = await this.client.deleteObjects({
      Bucket: this.bucket,
      Delete: { Objects: [{ Key: id }, { Key: this.partKey(id, true) }], Quiet: true },
    });
    // DeleteObjects answers 200 and names in its body each key it could not delete.
    if (Errors.length > 0) {
      const kept = Errors.map(({ Key, Code }) => `${Key} (${Code})`).join(', ');
      throw new Error(`S3 did not delete ${kept}`);
    }
    await this.removeRecord(id);
  }
}
