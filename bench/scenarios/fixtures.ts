import { tusUpload } from '../clients.ts';
import { freshen } from '../content.ts';
import type { BenchContext } from '../scenario.ts';
import type { BenchServer } from '../servers.ts';
import type { Stack } from '../stack.ts';
import { MIB } from '../stats.ts';

/** The upload id at the end of a tus upload URL. */
export function uploadIdOf(url: string): string {
  return url.slice(url.lastIndexOf('/') + 1);
}

/** A finished `sizeMiB` upload in our bucket and in tusd's, uploaded here unless one exists. */
export async function ensureFixtures(context: BenchContext) {
  const { stack, data, fixtures, options, log } = context;
  const chunkSize = options.chunkMiB * MIB;
  if (!fixtures.oursUploadId) {
    log('  (setup) uploading the download fixture through our server');
    const ours = await stack.startOurs({ dedupe: true, label: 'fixture' });
    fixtures.oursUploadId = uploadIdOf(
      (await tusUpload(ours.filesUrl, freshen(data), chunkSize)).url,
    );
    await ours.stop();
  }
  if (!fixtures.tusdUploadId) {
    log('  (setup) uploading the download fixture through tusd');
    const tusd = await stack.startTusd();
    fixtures.tusdUploadId = uploadIdOf(
      (await tusUpload(tusd.filesUrl, freshen(data), chunkSize)).url,
    );
    await tusd.stop();
  }
  return { oursUploadId: fixtures.oursUploadId, tusdUploadId: fixtures.tusdUploadId };
}

/** The three upload contenders: ours with dedupe on and off, and tusd, each a fresh process. */
export type UploadContender = 'ours' | 'ours_nodedupe' | 'tusd';
export function uploadContenders(
  stack: Stack,
  label: string,
): Record<UploadContender, () => Promise<BenchServer>> {
  return {
    ours: () => stack.startOurs({ dedupe: true, label }),
    // Dedupe off too: how much of the gap to tusd is hashing.
    ours_nodedupe: () => stack.startOurs({ dedupe: false, label: `${label}-nodedupe` }),
    tusd: () => stack.startTusd(),
  };
}
