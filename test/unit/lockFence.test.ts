import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { describe, expect, test } from '@jest/globals';
import { ERRORS } from '../../errors/catalogue.ts';
import { currentContext, inContext } from '../../request/context.ts';
import { instrument } from '../../storage/s3/outages.ts';
import { S3Http } from '../../storage/s3/S3Http.ts';
import { ServiceUnavailable } from '../../storage/types.ts';

// Port 9 on loopback (discard) is closed here: a request that leaves is refused at once, so
// "refused" shows it left and "the lock was lost" shows it never did.
const NOWHERE = 'http://127.0.0.1:9';
const credentials = { accessKeyId: 'k', secretAccessKey: 's' };

/** Runs `send` in a request scope whose upload lock is lost (or not) before it starts. */
async function outcome(lost: boolean, send: () => Promise<unknown>): Promise<unknown> {
  return inContext(async () => {
    if (lost) currentContext()?.lockLost.abort(ERRORS.LOCK_LOST);
    return send().then(
      () => 'sent',
      (error: unknown) => error,
    );
  });
}

describe('a request that lost its upload lock sends nothing more to S3', () => {
  test('through the S3 client: the command fails with the loss before it leaves', async () => {
    const client = new S3Client({
      endpoint: NOWHERE,
      region: 'us-east-1',
      credentials,
      forcePathStyle: true,
      maxAttempts: 1,
    });
    instrument(client, undefined);
    const put = () =>
      client.send(new PutObjectCommand({ Bucket: 'b', Key: 'id.info', Body: 'record' }));
    expect(await outcome(true, put)).toBe(ERRORS.LOCK_LOST);
    // The same command with the lock held leaves, and is refused.
    expect(String(await outcome(false, put))).toContain('ECONNREFUSED');
    client.destroy();
  });

  test('through S3Http (records, tails): the PUT fails with the loss before it leaves', async () => {
    const s3http = new S3Http({
      endpoint: NOWHERE,
      bucket: 'b',
      region: 'us-east-1',
      credentials: async () => credentials,
    });
    const put = () => s3http.put('id.info', 'record');
    expect(await outcome(true, put)).toBe(ERRORS.LOCK_LOST);
    expect(await outcome(false, put)).toBeInstanceOf(ServiceUnavailable);
    s3http.close();
  });
});
