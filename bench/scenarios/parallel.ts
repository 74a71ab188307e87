import { httpFirstDifference, httpRequest, keepAliveAgent, tusUpload } from '../clients.ts';
import { freshen } from '../content.ts';
import { type BenchContext, inRunOrder, resultOf, type Scenario } from '../scenario.ts';
import type { BenchServer } from '../servers.ts';
import { cpuSecondsPerGiB, MIB, megabytesPerSecond } from '../stats.ts';

/** ours: parallel with dedupe on (the default); ours_single: the same server, one stream. */
type Contender = 'ours' | 'ours_single' | 'ours_nodedupe' | 'tusd';

/** Why the upload at `url` is not `data`, or undefined when it is. */
async function wrongness(url: string, data: Buffer, compareBytes: boolean) {
  const agent = keepAliveAgent(1);
  try {
    const head = await httpRequest(url, agent, {
      method: 'HEAD',
      headers: { 'Tus-Resumable': '1.0.0' },
    });
    const length = head.headers['upload-length'];
    const offset = head.headers['upload-offset'];
    if (head.status !== 200 || length !== String(data.length) || offset !== String(data.length))
      return `HEAD ${head.status}, Upload-Length ${length}, Upload-Offset ${offset}; expected ${data.length}`;
  } finally {
    agent.destroy();
  }
  if (!compareBytes) return undefined;
  const { status, difference } = await httpFirstDifference(url, data);
  if (status !== 200) return `GET ${status}`;
  if (difference !== undefined) return `GET differs from the file from byte ${difference} on`;
  return undefined;
}

/**
 * One file split over parallel tus uploads joined by concatenation, beside the same file in one
 * stream and beside tusd doing the same. A failure is an error row, not the end of the bench.
 * Its own run count (1 by default): four 1 GiB uploads a run would add minutes to the bench.
 */
export const parallelScenario: Scenario = {
  id: 'parallel',
  async run(context: BenchContext) {
    const { options, stack, log } = context;
    const streams = options.parallelUploads;
    const chunkSize = options.chunkMiB * MIB;
    const notes = new Map<string, number>();
    const note = (text: string) => notes.set(text, (notes.get(text) ?? 0) + 1);

    const contenders: Record<Contender, { start: () => Promise<BenchServer>; streams: number }> = {
      ours: { start: () => stack.startOurs({ dedupe: true, label: 'parallel' }), streams },
      ours_single: {
        start: () => stack.startOurs({ dedupe: true, label: 'parallel-single' }),
        streams: 1,
      },
      ours_nodedupe: {
        start: () => stack.startOurs({ dedupe: false, label: 'parallel-nodedupe' }),
        streams,
      },
      tusd: { start: () => stack.startTusd(), streams },
    };

    const measure = async (contender: Contender, run: Record<string, number>, first: boolean) => {
      const { start, streams } = contenders[contender];
      const server = await start();
      const name = `${server.name}, ${streams === 1 ? 'one stream' : `${streams} streams`}`;
      run[`${contender}_errors`] = 1;
      try {
        const idleMiB = server.peakRssMiB();
        const cpuBefore = server.cpuSeconds();
        const data = freshen(context.data);
        const upload = await tusUpload(server.filesUrl, data, chunkSize, {
          parallelUploads: streams,
        }).catch((error: Error) => {
          note(`${name}: ${error.message.slice(0, 300)}`);
        });
        if (!upload) return;
        const cpuSeconds = server.cpuSeconds() - cpuBefore;
        const rssMiB = server.peakRssMiB();
        // The bytes are compared once per contender that joins parts: the single stream is the
        // upload row's own path.
        const wrong = await wrongness(upload.url, data, first && streams > 1);
        if (wrong) {
          note(`${name}: ${wrong}`);
          return;
        }
        run[`${contender}_errors`] = 0;
        run[`${contender}_mbps`] = megabytesPerSecond(data.length, upload.ms);
        run[`${contender}_cpu_s_per_gib`] = cpuSecondsPerGiB(cpuSeconds, data.length);
        run[`${contender}_rss_mib`] = rssMiB;
        run[`${contender}_idle_rss_mib`] = idleMiB;
      } finally {
        if (server.errorLines() > 0) note(`${name}: logged ${server.errorLines()} error lines`);
        await server.stop();
      }
    };

    const shown = (value: number | undefined) =>
      value === undefined ? 'failed' : value.toFixed(0);
    const runs: Array<Record<string, number>> = [];
    for (let index = 0; index < options.parallelRuns; index++) {
      const run: Record<string, number> = {};
      const order = inRunOrder<Contender>(['ours', 'ours_single', 'ours_nodedupe', 'tusd'], index);
      for (const contender of order) await measure(contender, run, index === 0);
      runs.push(run);
      log(
        `  parallel run ${index + 1}: ours ${shown(run.ours_mbps)}, one stream ${shown(run.ours_single_mbps)}, dedupe off ${shown(run.ours_nodedupe_mbps)}, tusd ${shown(run.tusd_mbps)} MB/s`,
      );
    }

    const size = `${options.sizeMiB} MiB`;
    const tusd = (key: string) => ({ name: `tusd, ${streams} streams`, key: `tusd_${key}` });
    const single = (key: string) => ({ name: 'ours, one stream', key: `ours_single_${key}` });
    const notesOf = () =>
      [...notes].map(([text, count]) => (count > 1 ? `${text} (${count} times)` : text));
    return [
      resultOf(
        {
          id: 'parallel',
          title: `upload one ${size} file in ${streams} parallel streams`,
          method: `tus-js-client parallelUploads ${streams}: ${streams} uploads with "Upload-Concat: partial", a slice each, all at once, then the POST with "Upload-Concat: final;…", timed until its answer; ${options.chunkMiB} MiB chunks, S3 parts ${options.partMiB} MiB; one stream: parallelUploads 1 on the same server; each server a fresh process; every upload's HEAD must give Upload-Offset = Upload-Length = the size, and in the first run each parallel upload is downloaded through its server and compared byte for byte; an upload that fails or is wrong counts as an error and has no figures; ${options.parallelRuns} run(s) (--parallel-runs); no target, printed for information`,
          rows: [
            { metric: 'MB/s', ours: 'ours_mbps', baseline: single('mbps') },
            { metric: 'MB/s', ours: 'ours_mbps', baseline: tusd('mbps') },
            { metric: 'MB/s, dedupe off', ours: 'ours_nodedupe_mbps', baseline: tusd('mbps') },
            {
              metric: 'server CPU s per GiB',
              ours: 'ours_cpu_s_per_gib',
              baseline: single('cpu_s_per_gib'),
            },
            {
              metric: 'server CPU s per GiB',
              ours: 'ours_cpu_s_per_gib',
              baseline: tusd('cpu_s_per_gib'),
            },
            {
              metric: 'server CPU s per GiB, dedupe off',
              ours: 'ours_nodedupe_cpu_s_per_gib',
              baseline: tusd('cpu_s_per_gib'),
            },
            {
              metric: 'errors (all runs)',
              ours: 'ours_errors',
              baseline: tusd('errors'),
              aggregate: 'sum',
            },
            {
              metric: 'errors (all runs), one stream',
              ours: 'ours_single_errors',
              baseline: tusd('errors'),
              aggregate: 'sum',
            },
            {
              metric: 'errors (all runs), dedupe off',
              ours: 'ours_nodedupe_errors',
              baseline: tusd('errors'),
              aggregate: 'sum',
            },
          ],
          notes: notesOf(),
        },
        runs,
      ),
      resultOf(
        {
          id: 'rss-parallel',
          title: `server peak RSS, ${size} upload in ${streams} parallel streams`,
          method:
            'VmHWM from /proc/<pid>/status of a server process started for that one upload, read when it has finished (before the check); "before": VmHWM once it listens',
          rows: [
            { metric: 'MiB', ours: 'ours_rss_mib', baseline: single('rss_mib') },
            { metric: 'MiB', ours: 'ours_rss_mib', baseline: tusd('rss_mib') },
            {
              metric: 'MiB before the upload',
              ours: 'ours_idle_rss_mib',
              baseline: tusd('idle_rss_mib'),
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
