import { now, tusUpload } from '../clients.ts';
import { freshen, randomData } from '../content.ts';
import { inRunOrder, resultOf, type Scenario } from '../scenario.ts';
import type { BenchServer } from '../servers.ts';
import { MIB, megabytesPerSecond, percentile } from '../stats.ts';

type Outcome = { ok: true; ms: number } | { ok: false; error: string };

/** Scenario 3: many small uploads at once, all started together, through one server process. */
export const concurrentScenario: Scenario = {
  id: 'concurrent',
  async run({ options, stack, log }) {
    const count = options.concurrentUploads;
    const size = options.concurrentSizeMiB * MIB;
    const chunkSize = options.chunkMiB * MIB;
    const pool = randomData(count * size);
    const files = Array.from({ length: count }, (_, i) => pool.subarray(i * size, (i + 1) * size));
    const notes: string[] = [];

    const measure = async (server: BenchServer, prefix: string, run: Record<string, number>) => {
      for (const file of files) freshen(file);
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
      const latencies = outcomes.flatMap((o) => (o.ok ? [o.ms] : []));
      const failures = outcomes.flatMap((o) => (o.ok ? [] : [o.error]));
      if (failures[0]) notes.push(`${server.name}: ${failures.length} failed, e.g. ${failures[0]}`);
      run[`${prefix}_mbps`] = megabytesPerSecond(latencies.length * size, wallMs);
      run[`${prefix}_p50_ms`] = percentile(latencies, 50);
      run[`${prefix}_p99_ms`] = percentile(latencies, 99);
      run[`${prefix}_errors`] = failures.length;
      run[`${prefix}_cpu_s`] = server.cpuSeconds() - cpuBefore;
    };

    const ours = await stack.startOurs({ dedupe: true, label: 'concurrent' });
    // Dedupe off too: how much of the gap to tusd is hashing.
    const oursNoDedupe = await stack.startOurs({ dedupe: false, label: 'concurrent-nodedupe' });
    const tusd = await stack.startTusd();
    const runs: Array<Record<string, number>> = [];
    try {
      for (let index = 0; index < options.runs; index++) {
        const run: Record<string, number> = {};
        for (const [server, prefix] of inRunOrder<[BenchServer, string]>(
          [
            [ours, 'ours'],
            [oursNoDedupe, 'ours_nodedupe'],
            [tusd, 'tusd'],
          ],
          index,
        )) {
          await measure(server, prefix, run);
        }
        runs.push(run);
        log(
          `  concurrent run ${index + 1}: ours ${run.ours_mbps?.toFixed(0)} MB/s p99 ${run.ours_p99_ms?.toFixed(0)} ms (${run.ours_errors} errors), dedupe off ${run.ours_nodedupe_mbps?.toFixed(0)} MB/s, tusd ${run.tusd_mbps?.toFixed(0)} MB/s p99 ${run.tusd_p99_ms?.toFixed(0)} ms (${run.tusd_errors} errors)`,
        );
      }
      for (const server of [ours, oursNoDedupe, tusd]) {
        const logged = server.errorLines();
        if (logged > 0) notes.push(`${server.name} logged ${logged} error lines`);
      }
    } finally {
      await Promise.all([ours.stop(), oursNoDedupe.stop(), tusd.stop()]);
    }

    return [
      resultOf(
        {
          id: 'concurrent',
          title: `${count} concurrent uploads of ${options.concurrentSizeMiB} MiB`,
          method: `tus-js-client, all ${count} started at once from one Node process (POST then one PATCH each), no retries; MB/s = bytes of successful uploads / wall time; latency per upload from start to success`,
          rows: [
            {
              metric: 'total MB/s',
              ours: 'ours_mbps',
              baseline: { name: 'tusd', key: 'tusd_mbps' },
            },
            {
              metric: 'total MB/s, dedupe off',
              ours: 'ours_nodedupe_mbps',
              baseline: { name: 'tusd', key: 'tusd_mbps' },
            },
            {
              metric: 'server CPU s',
              ours: 'ours_cpu_s',
              baseline: { name: 'tusd', key: 'tusd_cpu_s' },
            },
            {
              metric: 'server CPU s, dedupe off',
              ours: 'ours_nodedupe_cpu_s',
              baseline: { name: 'tusd', key: 'tusd_cpu_s' },
            },
            {
              metric: 'p50 ms',
              ours: 'ours_p50_ms',
              baseline: { name: 'tusd', key: 'tusd_p50_ms' },
            },
            {
              metric: 'p99 ms',
              ours: 'ours_p99_ms',
              baseline: { name: 'tusd', key: 'tusd_p99_ms' },
            },
            {
              metric: 'errors (all runs)',
              ours: 'ours_errors',
              baseline: { name: 'tusd', key: 'tusd_errors' },
              aggregate: 'sum',
              target: { on: 'ours', op: '<=', value: 0 },
            },
          ],
          notes,
        },
        runs,
      ),
    ];
  },
};
