import { directGet, httpRequest, keepAliveAgent } from '../clients.ts';
import { type BenchContext, inRunOrder, resultOf, type Scenario } from '../scenario.ts';
import type { BenchServer } from '../servers.ts';
import { BUCKETS } from '../stack.ts';
import { cpuSecondsPerGiB, megabytesPerSecond } from '../stats.ts';
import { ensureFixtures } from './fixtures.ts';

type Contender = 'ours' | 'direct' | 'tusd';

/** One full GET through a server process started for it, so VmHWM is this download's peak. */
async function downloadThroughFresh(
  start: () => Promise<BenchServer>,
  id: string,
  context: BenchContext,
): Promise<{ mbps: number; rssMiB: number; idleMiB: number; cpuPerGiB: number }> {
  const server = await start();
  const agent = keepAliveAgent(1);
  try {
    const idleMiB = server.peakRssMiB();
    const cpuBefore = server.cpuSeconds();
    const response = await httpRequest(`${server.filesUrl}${id}`, agent);
    if (response.status !== 200 || response.bytes !== context.data.length)
      throw new Error(`${server.name} download: ${response.status}, ${response.bytes} bytes`);
    return {
      mbps: megabytesPerSecond(response.bytes, response.ms),
      rssMiB: server.peakRssMiB(),
      idleMiB,
      cpuPerGiB: cpuSecondsPerGiB(server.cpuSeconds() - cpuBefore, response.bytes),
    };
  } finally {
    agent.destroy();
    await server.stop();
  }
}

/** Scenario 4 and the download half of 7: one full GET of the same bytes, three ways. */
export const downloadScenario: Scenario = {
  id: 'download',
  async run(context) {
    const { options, stack, log } = context;
    const { oursUploadId, tusdUploadId } = await ensureFixtures(context);
    const measure: Record<Contender, (run: Record<string, number>) => Promise<void>> = {
      async ours(run) {
        const result = await downloadThroughFresh(
          () => stack.startOurs({ dedupe: true, label: 'download' }),
          oursUploadId,
          context,
        );
        run.ours_mbps = result.mbps;
        run.ours_rss_mib = result.rssMiB;
        run.ours_idle_rss_mib = result.idleMiB;
        run.ours_cpu_s_per_gib = result.cpuPerGiB;
      },
      async direct(run) {
        // Our upload's bytes are the object named by its id.
        const { bytes, ms } = await directGet(stack.s3, BUCKETS.ours, oursUploadId);
        if (bytes !== context.data.length) throw new Error(`direct download: ${bytes} bytes`);
        run.direct_mbps = megabytesPerSecond(bytes, ms);
      },
      async tusd(run) {
        const result = await downloadThroughFresh(() => stack.startTusd(), tusdUploadId, context);
        run.tusd_mbps = result.mbps;
        run.tusd_rss_mib = result.rssMiB;
        run.tusd_idle_rss_mib = result.idleMiB;
        run.tusd_cpu_s_per_gib = result.cpuPerGiB;
      },
    };

    const runs: Array<Record<string, number>> = [];
    for (let index = 0; index < options.runs; index++) {
      const run: Record<string, number> = {};
      for (const contender of inRunOrder<Contender>(['ours', 'direct', 'tusd'], index))
        await measure[contender](run);
      runs.push(run);
      log(
        `  download run ${index + 1}: ours ${run.ours_mbps?.toFixed(0)}, direct ${run.direct_mbps?.toFixed(0)}, tusd ${run.tusd_mbps?.toFixed(0)} MB/s`,
      );
    }

    const size = `${options.sizeMiB} MiB`;
    return [
      resultOf(
        {
          id: 'download',
          title: `download ${size}, full GET`,
          method:
            'GET /files/<id> on a keep-alive connection, body streamed and discarded; direct: GetObject of the same object, streamed and discarded; each server a fresh process; CPU per GiB = utime + stime of the server over the GET / GiB sent',
          rows: [
            {
              metric: 'MB/s',
              ours: 'ours_mbps',
              baseline: { name: 'tusd', key: 'tusd_mbps' },
              target: { on: 'ratio', op: '>=', value: 0.9 },
            },
            {
              metric: 'MB/s',
              ours: 'ours_mbps',
              baseline: { name: 'direct GetObject', key: 'direct_mbps' },
            },
            {
              metric: 'server CPU s per GiB',
              ours: 'ours_cpu_s_per_gib',
              baseline: { name: 'tusd', key: 'tusd_cpu_s_per_gib' },
            },
          ],
        },
        runs,
      ),
      resultOf(
        {
          id: 'rss-download',
          title: `server peak RSS, ${size} download`,
          method:
            'VmHWM from /proc/<pid>/status of a server process started for that one download, read when it has finished; "before": VmHWM once it listens',
          rows: [
            {
              metric: 'MiB',
              ours: 'ours_rss_mib',
              baseline: { name: 'tusd', key: 'tusd_rss_mib' },
              target: { on: 'ours', op: '<', value: 150 },
            },
            {
              metric: 'MiB before the download',
              ours: 'ours_idle_rss_mib',
              baseline: { name: 'tusd', key: 'tusd_idle_rss_mib' },
            },
          ],
        },
        runs,
      ),
    ];
  },
};
