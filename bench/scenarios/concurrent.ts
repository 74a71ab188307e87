import { now, tusUpload } from '../clients.ts';
import { freshen, randomFiles } from '../content.ts';
import { inRunOrder, resultOf, type Scenario } from '../scenario.ts';
import type { BenchServer } from '../servers.ts';
import { cpuSecondsPerGiB, MIB, megabytesPerSecond, percentile } from '../stats.ts';
import { type UploadContender, uploadContenders } from './fixtures.ts';

type Outcome = { ok: true; ms: number } | { ok: false; error: string };
type Contender = UploadContender;

/** What one server did with `files` uploaded all at once (fresh content each time). */
export async function uploadAllAtOnce(server: BenchServer, files: Buffer[], chunkSize: number) {
  for (const file of files) freshen(file);
  const idleRssMiB = server.peakRssMiB();
  const cpuBefore = server.cpuSeconds();
  const started = now();
  const outcomes = await Promise.all(
    files.map((file) =>
      tusUpload(server.filesUrl, file, chunkSize).then(
        ({ ms }): Outcome => ({ ok: true, ms }),
        (error: Error): Outcome => ({ ok: false, error: error.message }),
      ),
    ),
  );
  const wallMs = now() - started;
  const cpuSeconds = server.cpuSeconds() - cpuBefore;
  const latencies = outcomes.flatMap((o) => (o.ok ? [o.ms] : []));
  const failures = outcomes.flatMap((o) => (o.ok ? [] : [o.error]));
  // The files are of one size.
  const bytes = latencies.length * (files[0]?.length ?? 0);
  return {
    idleRssMiB,
    failures,
    mbps: megabytesPerSecond(bytes, wallMs),
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    cpuPerGiB: cpuSecondsPerGiB(cpuSeconds, bytes),
    cpuMsPerUpload: latencies.length ? (cpuSeconds * 1000) / latencies.length : Number.NaN,
    rssMiB: server.peakRssMiB(),
  };
}

/**
 * Scenario 3: many small uploads at once, all started together. Each contender runs in a server
 * process started for that run, so VmHWM is the peak of those uploads.
 */
export const concurrentScenario: Scenario = {
  id: 'concurrent',
  async run({ options, stack, log }) {
    const count = options.concurrentUploads;
    const size = options.concurrentSizeMiB * MIB;
    const chunkSize = options.chunkMiB * MIB;
    const files = randomFiles(count, size);
    const notes: string[] = [];
    const loggedErrors = new Map<string, number>();

    const start = uploadContenders(stack, 'concurrent');

    const measure = async (contender: Contender, run: Record<string, number>) => {
      const server = await start[contender]();
      try {
        const result = await uploadAllAtOnce(server, files, chunkSize);
        if (result.failures[0])
          notes.push(
            `${server.name}: ${result.failures.length} failed, e.g. ${result.failures[0]}`,
          );
        run[`${contender}_idle_rss_mib`] = result.idleRssMiB;
        run[`${contender}_mbps`] = result.mbps;
        run[`${contender}_p50_ms`] = result.p50Ms;
        run[`${contender}_p99_ms`] = result.p99Ms;
        run[`${contender}_errors`] = result.failures.length;
        run[`${contender}_cpu_s_per_gib`] = result.cpuPerGiB;
        run[`${contender}_rss_mib`] = result.rssMiB;
        const logged = server.errorLines();
        if (logged > 0)
          loggedErrors.set(server.name, (loggedErrors.get(server.name) ?? 0) + logged);
      } finally {
        await server.stop();
      }
    };

    const runs: Array<Record<string, number>> = [];
    for (let index = 0; index < options.runs; index++) {
      const run: Record<string, number> = {};
      for (const contender of inRunOrder<Contender>(['ours', 'ours_nodedupe', 'tusd'], index))
        await measure(contender, run);
      runs.push(run);
      log(
        `  concurrent run ${index + 1}: ours ${run.ours_mbps?.toFixed(0)} MB/s p99 ${run.ours_p99_ms?.toFixed(0)} ms (${run.ours_errors} errors, peak ${run.ours_rss_mib?.toFixed(0)} MiB), dedupe off ${run.ours_nodedupe_mbps?.toFixed(0)} MB/s (${run.ours_nodedupe_errors} errors, peak ${run.ours_nodedupe_rss_mib?.toFixed(0)} MiB), tusd ${run.tusd_mbps?.toFixed(0)} MB/s p99 ${run.tusd_p99_ms?.toFixed(0)} ms (${run.tusd_errors} errors)`,
      );
    }
    for (const [name, logged] of loggedErrors)
      notes.push(`${name} logged ${logged} error lines (all runs)`);

    const tusd = (key: string) => ({ name: 'tusd', key: `tusd_${key}` });
    const uploads = `${count} concurrent uploads of ${options.concurrentSizeMiB} MiB`;
    return [
      resultOf(
        {
          id: 'concurrent',
          title: uploads,
          method: `tus-js-client, all ${count} started at once from one Node process (POST then one PATCH each), no retries; each server a fresh process per run; MB/s = bytes of successful uploads / wall time; latency per upload from start to success; CPU per GiB = utime + stime of the server over the uploads / GiB of successful uploads`,
          rows: [
            {
              metric: 'total MB/s',
              ours: 'ours_mbps',
              baseline: tusd('mbps'),
              target: { on: 'ratio', op: '>=', value: 0.8 },
            },
            {
              metric: 'total MB/s, dedupe off',
              ours: 'ours_nodedupe_mbps',
              baseline: tusd('mbps'),
              target: { on: 'ratio', op: '>=', value: 1.0 },
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
            { metric: 'p50 ms', ours: 'ours_p50_ms', baseline: tusd('p50_ms') },
            { metric: 'p99 ms', ours: 'ours_p99_ms', baseline: tusd('p99_ms') },
            {
              metric: 'errors (all runs)',
              ours: 'ours_errors',
              baseline: tusd('errors'),
              aggregate: 'sum',
              target: { on: 'ours', op: '<=', value: 0 },
            },
            {
              metric: 'errors (all runs), dedupe off',
              ours: 'ours_nodedupe_errors',
              baseline: tusd('errors'),
              aggregate: 'sum',
              target: { on: 'ours', op: '<=', value: 0 },
            },
          ],
          notes,
        },
        runs,
      ),
      resultOf(
        {
          id: 'rss-concurrent',
          title: `server peak RSS, ${uploads}`,
          method:
            'VmHWM from /proc/<pid>/status of a server process started for that run, read when the uploads have finished; "before": VmHWM once it listens',
          rows: [
            {
              metric: 'MiB',
              ours: 'ours_rss_mib',
              baseline: tusd('rss_mib'),
              target: { on: 'ours', op: '<', value: 150 },
            },
            {
              metric: 'MiB before the uploads',
              ours: 'ours_idle_rss_mib',
              baseline: tusd('idle_rss_mib'),
            },
            {
              metric: 'MiB (dedupe off)',
              ours: 'ours_nodedupe_rss_mib',
              baseline: tusd('rss_mib'),
            },
            {
              metric: 'MiB before the uploads (dedupe off)',
              ours: 'ours_nodedupe_idle_rss_mib',
              baseline: tusd('idle_rss_mib'),
            },
          ],
        },
        runs,
      ),
    ];
  },
};
