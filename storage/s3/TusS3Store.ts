import { AsyncLocalStorage } from 'node:async_hooks';
import { Readable } from 'node:stream';
import type { Part } from '@aws-sdk/client-s3';
import { type MetadataValue, S3Store } from '@tus/s3-store';
import type { Upload } from '@tus/utils';
import { ERRORS } from '../../errors/catalogue.ts';
import { currentContext } from '../../request/context.ts';
import { Spool } from '../spool.ts';
import { FINISHED_KEY } from '../types.ts';
import { instrument, isNotFound, notFoundAsTus, type S3Observer } from './outages.ts';
import { checksumEveryPart } from './partChecksums.ts';
import {
  fitsParts,
  gathered,
  type PartLimits,
  pieceKind,
  planPieces,
  ShortBody,
  StreamSlicer,
  s3Limits,
} from './partPlan.ts';
import type { S3Http } from './S3Http.ts';
import type { S3Records } from './S3Records.ts';

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
 * @tus/s3-store, extended only where it offers no other way in: parts streamed from the request
 * (uploadParts, with retrieveParts and downloadIncompletePart keeping one listing per write),
 * records read and written through S3Records (getMetadata, saveMetadata, completeMetadata), the
 * tail's HEAD through S3Http, empty uploads finished, termination and expiry that leave nothing
 * behind on any S3. Each override names the upstream contract it relies on ("Upstream:"), checked
 * against the pinned version by test/storage.contract.test.ts. What is not about writing an
 * upload lives beside it: linked uploads and finished-upload expiry in storage/UploadStore.ts,
 * records in S3Records, concatenation in S3Concatenation.
 */
export class TusS3Store extends S3Store {
  private readonly writing = new AsyncLocalStorage<WriteState>();
  constructor(
    options: ConstructorParameters<typeof S3Store>[0],
    /** The tail's HEAD, outside the SDK. */
    private readonly http: S3Http,
    /** Every record read and write (`<id>.info`). */
    private readonly records: S3Records,
    observe?: S3Observer,
  ) {
    super(options);
    instrument(this.client, observe);
    checksumEveryPart(this.client);
  }

  /** Upstream: a HEAD of the tail (`<id>.part`): its length, undefined when there is none. */
  protected override getIncompletePartSize(id: string): Promise<number | undefined> {
    return this.http.size(this.partKey(id, true));
  }

  /**
   * Upstream: called by write() once the multipart upload is completed, to write the record
   * again tagged complete (only where unfinished uploads expire by tags). Here: through S3Records.
   */
  protected override async completeMetadata(upload: Upload): Promise<void> {
    if (!this.shouldUseExpirationTags()) return;
    const { 'upload-id': uploadId } = await this.getMetadata(upload.id);
    await this.records.write(upload, uploadId ?? '', true, false);
  }

  /**
   * Upstream: every read of a record (write, getUpload, declareUploadLength, remove) goes
   * through here, first to the cache, then to `<id>.info`. Here: S3Records, the one reader.
   */
  protected override getMetadata(id: string): Promise<MetadataValue> {
    return this.records.read(id);
  }

  /**
   * Upstream: create() writes the new upload's record with this (untagged: unfinished). Here:
   * through S3Records, which caches it as it is written, so the next read needs no S3 request.
   */
  protected override async saveMetadata(upload: Upload, uploadId: string): Promise<void> {
    await this.records.write(upload, uploadId, false);
  }

  /**
   * Upstream: creates the multipart upload and its record (saveMetadata). Here besides: a 0-byte
   * upload is finished at creation, which nothing upstream would complete.
   */
  override async create(upload: Upload): Promise<Upload> {
    const created = await super.create(upload);
    if (created.size === 0) await super.write(Readable.from([]), created.id, 0);
    return created;
  }

  /**
   * Upstream: reads the record, lists the parts (retrieveParts), fetches the tail
   * (downloadIncompletePart), sends the body (uploadParts) and, once the upload has every byte,
   * lists the parts again, completes the multipart upload, tags the record (completeMetadata)
   * and drops it from the cache. Here: the write runs with its WriteState, which those helpers
   * read; a 0-byte upload was completed by create() (a creation-with-upload body adds nothing).
   */
  override async write(src: Readable, id: string, offset: number): Promise<number> {
    const record = await this.getMetadata(id);
    if (offset === 0 && record.file.size === 0) return 0;
    const scope = currentContext();
    const length = scope?.bodyLength;
    const state: WriteState = {
      start: offset,
      end: length === undefined ? undefined : offset + length,
    };
    const newOffset = await this.writing.run(state, async () => {
      await this.refuseWhatCannotFit(id, record.file, state);
      return super.write(src, id, offset);
    });
    // S3Store forgets the record of an upload it finished (clearCache); its `.info` says what it
    // said before, and this request, holding the lock, goes on to finish it (saveFinished).
    if (newOffset === record.file.size) scope?.records.set(id, record);
    return newOffset;
  }

  /** S3's part limits, with S3_PART_SIZE preferred (upstream: preferredPartSize). */
  private get limits(): PartLimits {
    return { ...s3Limits(this.preferredPartSize), minPartSize: this.minPartSize };
  }

  /**
   * "Maximum number of parts per upload: 10,000" (S3): a write that cannot fit in the parts left
   * (fitsParts) gets 413 before write() reads or moves anything, the tail included, so the bytes
   * stored so far stay and HEAD still reports them. The listing is the one write() then uses
   * (retrieveParts keeps it in the WriteState).
   */
  private async refuseWhatCannotFit(id: string, file: Upload, state: WriteState) {
    const parts = await this.retrieveParts(id);
    const next = (parts.at(-1)?.PartNumber ?? 0) + 1;
    const at = bytesIn(parts);
    const end = state.end ?? Number.POSITIVE_INFINITY;
    if (!fitsParts(at, state.start, end, file.size, next, this.limits)) {
      throw ERRORS.PART_LIMIT_EXCEEDED;
    }
  }

  /**
   * Upstream: sends one part of S3Store's own uploadParts (a body without Content-Length), which
   * makes a part of every piece of at least 5 MiB, so its parts can pass 10,000. Here: part
   * 10,001 gets 413 before it is sent, where S3 would refuse it (a 500): the parts before it
   * stay, its own bytes are lost as they would be then.
   */
  protected override async uploadPart(
    metadata: MetadataValue,
    readStream: Parameters<S3Store['uploadPart']>[1],
    partNumber: number,
  ): Promise<string> {
    if (partNumber > this.maxMultipartParts) throw ERRORS.PART_LIMIT_EXCEEDED;
    return super.uploadPart(metadata, readStream, partNumber);
  }

  /**
   * Upstream: every part of the multipart upload, in pages from `partNumberMarker`, asked by
   * getUpload (the offset) and twice by write(). Here: a write lists the parts once (or takes
   * the listing the PATCH's offset check just made) and keeps the list current itself.
   */
  protected override async retrieveParts(id: string, partNumberMarker?: string): Promise<Part[]> {
    if (partNumberMarker !== undefined) return super.retrieveParts(id, partNumberMarker);
    const state = this.writing.getStore();
    const scope = currentContext();
    if (!state) {
      // A PATCH lists the parts for its offset check, under the upload's lock, right before it
      // writes: the write starts from that list.
      const parts = await super.retrieveParts(id);
      scope?.listedParts.set(id, parts);
      return parts;
    }
    state.parts ??= scope?.listedParts.get(id) ?? (await super.retrieveParts(id));
    scope?.listedParts.delete(id);
    // Parts finish in any order; S3 completes an upload only from a list in part order.
    return [...state.parts].sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
  }

  /**
   * Upstream: the tail (`<id>.part`) as a temporary file, undefined when there is none. Here:
   * when the parts hold every byte up to the offset there is no tail, and S3 is not asked.
   */
  protected override async downloadIncompletePart(id: string) {
    const state = this.writing.getStore();
    if (state?.parts && bytesIn(state.parts) === state.start) return undefined;
    return super.downloadIncompletePart(id);
  }

  /**
   * Upstream: sends `readStream` from `offset` as parts numbered from `currentPartNumber` (the
   * last, short one as the tail) and answers the bytes sent; write() calls it once per write.
   * Here: with the body's length declared, each part streams from the request straight to S3 (its
   * length is known before its first byte), while a spool keeps its bytes: the part never waits
   * for a temporary file and is never read back. A body that ends early loses nothing: the
   * request in flight is stopped, and what came of it is sent again from the spool, as a part or
   * as the tail. An earlier tail prepended by write() (`offset` before the write's start) is
   * planned with the body, so the part plan (planPieces) decides every part of a body with a
   * declared length. Without one, S3Store's way (each part written to a temporary file, then
   * sent) applies.
   */
  protected override async uploadParts(
    metadata: MetadataValue,
    readStream: Readable,
    currentPartNumber: number,
    offset: number,
  ): Promise<number> {
    const state = this.writing.getStore();
    if (!state || state.end === undefined) {
      // Parts uploaded from S3Store's own callbacks are not tracked: ask S3 again afterwards.
      if (state) state.parts = undefined;
      return super.uploadParts(metadata, readStream, currentPartNumber, offset);
    }
    const { file } = metadata;
    const end = file.size === undefined ? state.end : Math.min(state.end, file.size);
    const limits = this.limits;
    const pieces = planPieces(offset, end, file.size, currentPartNumber, limits);
    const slicer = new StreamSlicer(readStream);
    const uploadId = metadata['upload-id'];
    // The upload's lock lost: every part in flight is aborted (S3 keeps none of it), none resent.
    const lockLost = currentContext()?.lockLost.signal;
    const inFlight: Array<Promise<void>> = [];
    let uploaded = 0;
    let partNumber = currentPartNumber;
    // Where the next piece starts: a cut piece is planned again from there.
    let at = offset;
    let cut: { sent: Promise<void>; at: number; number: number; spool: Spool } | undefined;
    let failure: unknown;
    // Reading the request (or the spool) failed for another reason than a short body.
    let bodyFailure: unknown;
    for (const piece of pieces) {
      // No part left for the rest: what came before it stays, the write answers 413.
      if (piece.kind === 'over') {
        failure = ERRORS.PART_LIMIT_EXCEEDED;
        break;
      }
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
      const pieceAt = at;
      at += piece.length;
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
      if (abort.signal.aborted) cut = { sent, at: pieceAt, number, spool };
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
        const kind = pieceKind(cut.at, spool.length, file.size, number, limits);
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
   * Upstream: sets the record's length and writes it again (saveMetadata, which here refreshes
   * the cache too). Here besides: a length of 0 finishes the upload, as a 0-byte creation does.
   */
  override async declareUploadLength(id: string, length: number): Promise<void> {
    await super.declareUploadLength(id, length);
    if (length === 0) await super.write(Readable.from([]), id, 0);
  }

  /**
   * Upstream: lists the multipart uploads older than the period and deletes their objects, but
   * leaves each record in the metadata cache, where HEAD still found it (200 for an upload that
   * is gone). Here: each expired upload loses its record first (S3Records: `.info`, then its
   * cache entry), then its multipart upload and its incomplete tail.
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
        await this.records.remove(Key);
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
   * Upstream: aborts the multipart upload (a 404 when S3 says NoSuchUpload), then deletes the
   * object, the tail and the record. AWS and the stores that answer as it does say NoSuchUpload
   * of a completed multipart upload (MinIO answers 204), so a finished upload would stay. Here:
   * every object of the upload goes, its bytes (`<id>`) and tail (`<id>.part`) first, its record
   * last (so a removal that fails half-way can be asked again), whatever the state of its
   * multipart upload. A missing record is still a 404. Linked uploads never reach here
   * (UploadStore removes their record alone).
   */
  override async remove(id: string): Promise<void> {
    const { file, 'upload-id': uploadId } = await this.getMetadata(id).catch(notFoundAsTus);
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
    await this.records.remove(id);
  }
}
