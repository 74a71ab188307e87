import {
  CompleteMultipartUploadCommand,
  type Part,
  type S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import type { DataStore, Upload } from '@tus/utils';
import type { ContentSource } from '../types.ts';
import { type PartOrder, planConcatenation } from './concatPlan.ts';
import type { S3Http } from './S3Http.ts';
import type { S3Records } from './S3Records.ts';

/** S3's smallest part but the last: sources shorter than this are read and sent, not copied. */
const MIN_PART_SIZE = 5 * 1024 * 1024;

/**
 * A finished upload made of stored objects (the concatenation extension), beside the tus store:
 * it creates the upload through the store (a multipart upload and its record), copies each
 * source inside S3 where it is long enough, reads and sends the rest (see planConcatenation),
 * completes the multipart upload and tags the record complete. Crashed half-way, it is an
 * unfinished upload that expires; failed, it is removed.
 */
export class S3Concatenation {
  constructor(
    private readonly parts: {
      client: S3Client;
      bucket: string;
      http: S3Http;
      records: S3Records;
      /** The tus store: creates the upload, and removes it when the concatenation fails. */
      store: Pick<DataStore, 'create' | 'remove'>;
      /** Whether records carry the `Tus-Completed` tag (unfinished uploads expire). */
      tagged: boolean;
    },
  ) {}

  async concatenate(upload: Upload, sources: ContentSource[]): Promise<void> {
    const { client, bucket, records, store, tagged } = this.parts;
    // Nothing to copy: an empty upload, finished at creation.
    if (sources.every(({ size }) => size === 0)) {
      await store.create(upload);
      return;
    }
    await store.create(upload);
    try {
      const { 'upload-id': uploadId } = await records.read(upload.id);
      const orders = planConcatenation(sources, MIN_PART_SIZE);
      const done: Part[] = [];
      let next = 0;
      // A few parts at once: copies are MinIO's work, gathered parts the server's.
      const worker = async () => {
        while (next < orders.length) {
          const index = next++;
          const order = orders[index] as PartOrder;
          const PartNumber = index + 1;
          done.push({
            PartNumber,
            ETag: await this.orderPart(upload.id, uploadId, PartNumber, order),
          });
        }
      };
      await Promise.all(Array.from({ length: Math.min(4, orders.length) }, worker));
      done.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
      await client.send(
        new CompleteMultipartUploadCommand({
          Bucket: bucket,
          Key: upload.id,
          UploadId: uploadId,
          MultipartUpload: {
            Parts: done.map(({ ETag, PartNumber }) => ({ ETag, PartNumber })),
          },
        }),
      );
      // As @tus/s3-store's own completion: the record tagged complete, where tags are used.
      if (tagged) await records.write(upload, uploadId, true, false);
    } catch (error) {
      await store.remove(upload.id).catch(() => undefined);
      throw error;
    }
  }

  private async orderPart(
    key: string,
    UploadId: string,
    PartNumber: number,
    order: PartOrder,
  ): Promise<string | undefined> {
    const { client, bucket, http } = this.parts;
    if (order.kind === 'copy') {
      const { key: source, start, end } = order.range;
      const { CopyPartResult } = await client.send(
        new UploadPartCopyCommand({
          Bucket: bucket,
          Key: key,
          UploadId,
          PartNumber,
          CopySource: `${bucket}/${source}`,
          CopySourceRange: `bytes=${start}-${end - 1}`,
        }),
      );
      return CopyPartResult?.ETag;
    }
    const chunks: Buffer[] = [];
    for (const { key: source, start, end } of order.ranges) {
      for await (const chunk of await http.get(source, `bytes=${start}-${end - 1}`)) {
        chunks.push(chunk as Buffer);
      }
    }
    const body = Buffer.concat(chunks);
    if (body.length !== order.length) {
      throw new Error(`concatenation read ${body.length} of ${order.length} bytes`);
    }
    const { ETag } = await client.send(
      new UploadPartCommand({
        Bucket: bucket,
        Key: key,
        UploadId,
        PartNumber,
        Body: body,
        ContentLength: body.length,
      }),
    );
    return ETag;
  }
}
