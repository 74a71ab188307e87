import { directUpload, tusUpload } from '../clients.ts';
import { freshen } from '../content.ts';
import { type BenchContext, inRunOrder, resultOf, type Scenario } from '../scenario.ts';
import type { BenchServer } from '../servers.ts';
import { BUCKETS } from '../stack.ts';
import { cpuSecondsPerGiB, MIB, megabytesPerSecond } from '../stats.ts';
import { uploadIdOf } from './fixtures.ts';

/** lib-storage's default queue: 4 parts in flight. */
const DIRECT_QUEUE_SIZE = 4;

type Contender = 'ours' | 'ours_nodedupe' | 'direct' | 'tusd';

/** One tus upload through a server process started for it, so VmHWM is this upload's peak. */
async function uploadThroughFresh(
  start: () => Promise<BenchServer>,
  context: BenchContext,
): Promise<{ id: string; mbps: number; rssMiB: number; idleMiB: number; cpuPerGiB: number }> {
  const server = await start();
  try {
    const idleMiB = server.peakRssMiB();
    const cpuBefore = server.cpuSeconds();
    const data = freshen(context.data);
    const { url, ms } = await tusUpload(server.filesUrl, data, context.options.chunkMiB * MIB);
    return {
      id: uploadIdOf(url),
      mbps: megabytesPerSecond(data.length, ms),
      rssMiB: server.peakRssMiB(),
      idleMiB,
      cpuPerGiB: cpuSecondsPerGiB(server.cpuSeconds() - cpuBefore, data.length),
    };
  } finally {
    await server.stop();
  }
}

/** Scenarios 1, 2 and the upload half of 7: one file, four ways, paired in every run. */
export const uploadScenario: Scenario = {
  id: 'upload',
  async run(context) {
    const { options, stack, log } = context;
    const partSize = options.partMiB * MIB;
    const measure: Record<
      Contender,
      (run: Record<string, number>, index: number) => Promise<void>
    > = {
      async ours(run) {
        const result = await uploadThroughFresh(
          () => stack.startOurs({ dedupe: true, label: 'upload' }),
          context,
        );
        run.ours_mbps = result.mbps;
        run.ours_rss_mib = result.rssMiB;
        run.ours_idle_rss_mib = result.idleMiB;
        run.ours_cpu_s_per_gib = result.cpuPerGiB;
        context.fixtures.oursUploadId = result.id;
      },
      async ours_nodedupe(run) {
        const result = await uploadThroughFresh(
          () => stack.startOurs({ dedupe: false, label: 'upload-nodedupe' }),
          context,
        );
        run.ours_nodedupe_mbps = result.mbps;
        run.ours_nodedupe_rss_mib = result.rssMiB;
        run.ours_nodedupe_cpu_s_per_gib = result.cpuPerGiB;
      },
      async direct(run, index) {
        const data = freshen(context.data);
        const { ms } = await directUpload(
          stack.s3,
          BUCKETS.direct,
          `direct-${index}`,
          data,
          partSize,
          DIRECT_QUEUE_SIZE,
        );
        run.direct_mbps = megabytesPerSecond(data.length, ms);
      },
      async tusd(run) {
        const result = await uploadThroughFresh(() => stack.startTusd(), context);
        run.tusd_mbps = result.mbps;
        run.tusd_rss_mib = result.rssMiB;
        run.tusd_idle_rss_mib = result.idleMiB;
        run.tusd_cpu_s_per_gib = result.cpuPerGiB;
        context.fixtures.tusdUploadId = result.id;
      },
    };

    const runs: Array<Record<string, number>> = [];
    for (let index = 0; index < options.runs; index++) {
      const run: Record<string, number> = {};
      const order = inRunOrder<Contender>(['ours', 'ours_nodedupe', 'direct', 'tusd'], index);
      for (const contender of order) await measure[contender](run, index);
      runs.push(run);
      log(
        `  upload run ${index + 1}: ours ${run.ours_mbps?.toFixed(0)}, dedupe off ${run.ours_nodedupe_mbps?.toFixed(0)}, direct ${run.direct_mbps?.toFixed(0)}, tusd ${run.tusd_mbps?.toFixed(0)} MB/s`,
      );
    }

    const size = `${options.sizeMiB} MiB`;
    const client = `tus-js-client, ${options.chunkMiB} MiB chunks, S3 parts ${options.partMiB} MiB`;
    const tusd = (key: string) => ({ name: 'tusd', key: `tusd_${key}` });
    return [
      resultOf(
        {
          id: 'upload',
          title: `upload one ${size} file`,
          method: `${client}; tusd: its defaults plus -s3-part-size (so it hashes each part, MD5 and SHA-256, to sign it); each server a fresh process; new random content per upload, so dedupe never hits; CPU per GiB = utime + stime of the server over the upload / GiB uploaded`,
          rows: [
            {
              metric: 'MB/s',
              ours: 'ours_mbps',
              baseline: tusd('mbps'),
              target: { on: 'ratio', op: '>=', value: 0.85 },
            },
            {
              metric: 'MB/s',
              ours: 'ours_mbps',
              baseline: { name: 'ours, dedupe off', key: 'ours_nodedupe_mbps' },
            },
            {
              metric: 'server CPU s per GiB',
              ours: 'ours_cpu_s_per_gib',
              baseline: tusd('cpu_s_per_gib'),
            },
          ],
        },
        runs,
      ),
      resultOf(
        {
          id: 'upload-nodedupe',
          title: `upload one ${size} file, dedupe off`,
          method: `the same upload through an instance with DEDUPE=off on its own bucket; direct: lib-storage Upload, partSize ${options.partMiB} MiB, queueSize ${DIRECT_QUEUE_SIZE}`,
          rows: [
            {
              metric: 'MB/s',
              ours: 'ours_nodedupe_mbps',
              baseline: tusd('mbps'),
              target: { on: 'ratio', op: '>=', value: 1.0 },
            },
            {
              metric: 'MB/s',
              ours: 'ours_nodedupe_mbps',
              baseline: { name: 'direct lib-storage', key: 'direct_mbps' },
              target: { on: 'ratio', op: '>=', value: 0.8 },
            },
            {
              metric: 'server CPU s per GiB',
              ours: 'ours_nodedupe_cpu_s_per_gib',
              baseline: tusd('cpu_s_per_gib'),
            },
          ],
        },
        runs,
      ),
      resultOf(
        {
          id: 'rss-upload',
          title: `server peak RSS, ${size} upload`,
          method:
            'VmHWM from /proc/<pid>/status of a server process started for that one upload, read when it has finished; "before": VmHWM once it listens',
          rows: [
            {
              metric: 'MiB',
              ours: 'ours_rss_mib',
              baseline: tusd('rss_mib'),
              target: { on: 'ours', op: '<', value: 150 },
            },
            {
              metric: 'MiB before the upload',
              ours: 'ours_idle_rss_mib',
              baseline: tusd('idle_rss_mib'),
              target: { on: 'ours', op: '<', value: 90 },
            },
            {
              metric: 'MiB (dedupe off)',
              ours: 'ours_nodedupe_rss_mib',
              baseline: tusd('rss_mib'),
            },
          ],
        },
        runs,
      ),
    ];
  },
};
