import { seededRandom } from '../../test/harness/seededRandom.ts';
import { directGet, httpRequest, keepAliveAgent, now, withConcurrency } from '../clients.ts';
import { inRunOrder, resultOf, type Scenario } from '../scenario.ts';
import { BUCKETS } from '../stack.ts';
import { percentile } from '../stats.ts';
import { ensureFixtures } from './fixtures.ts';

type Range = { start: number; end: number };
type Contender = 'ours' | 'direct';

/** Scenario 5: many ranged reads at random offsets, a bounded number in flight. */
export const rangesScenario: Scenario = {
  id: 'ranges',
  async run(context) {
    const { options, stack, log, data } = context;
    const { oursUploadId } = await ensureFixtures(context);
    const length = options.rangeKiB * 1024;
    const count = options.rangeRequests;
    const concurrency = options.rangeConcurrency;

    const ours = await stack.startOurs({ dedupe: true, label: 'ranges' });
    const agent = keepAliveAgent(concurrency);
    const read: Record<Contender, (range: Range) => Promise<{ ok: boolean; ms: number }>> = {
      async ours(range) {
        const response = await httpRequest(`${ours.filesUrl}${oursUploadId}`, agent, {
          headers: { Range: `bytes=${range.start}-${range.end}` },
        });
        return { ok: response.status === 206 && response.bytes === length, ms: response.ms };
      },
      async direct(range) {
        const { bytes, ms } = await directGet(stack.s3, BUCKETS.ours, oursUploadId, range);
        return { ok: bytes === length, ms };
      },
    };

    const runs: Array<Record<string, number>> = [];
    try {
      // Warm-up, not measured: connections opened and code compiled on both sides.
      for (const contender of ['ours', 'direct'] as const)
        await withConcurrency(concurrency * 2, concurrency, () =>
          read[contender]({ start: 0, end: length - 1 }),
        );
      for (let index = 0; index < options.runs; index++) {
        const random = seededRandom(index + 1);
        const ranges = Array.from({ length: count }, (): Range => {
          const start = Math.floor(random() * (data.length - length + 1));
          return { start, end: start + length - 1 };
        });
        const run: Record<string, number> = {};
        for (const contender of inRunOrder<Contender>(['ours', 'direct'], index)) {
          const cpuBefore = ours.cpuSeconds();
          const started = now();
          const results = await withConcurrency(count, concurrency, (i) =>
            read[contender](ranges[i] as Range).catch(() => ({ ok: false, ms: 0 })),
          );
          const wallMs = now() - started;
          const latencies = results.filter((r) => r.ok).map((r) => r.ms);
          run[`${contender}_rps`] = latencies.length / (wallMs / 1000);
          run[`${contender}_p50_ms`] = percentile(latencies, 50);
          run[`${contender}_p99_ms`] = percentile(latencies, 99);
          run[`${contender}_errors`] = count - latencies.length;
          // Our server's CPU per request; during the direct reads it only idles.
          if (contender === 'ours')
            run.ours_cpu_ms_per_request = ((ours.cpuSeconds() - cpuBefore) * 1000) / count;
        }
        runs.push(run);
        log(
          `  ranges run ${index + 1}: ours ${run.ours_rps?.toFixed(0)} req/s p99 ${run.ours_p99_ms?.toFixed(1)} ms, direct ${run.direct_rps?.toFixed(0)} req/s p99 ${run.direct_p99_ms?.toFixed(1)} ms`,
        );
      }
    } finally {
      agent.destroy();
      await ours.stop();
    }

    const baseline = (key: string) => ({ name: 'direct ranged GetObject', key: `direct_${key}` });
    return [
      resultOf(
        {
          id: 'ranges',
          title: `${count} ranged GETs of ${options.rangeKiB} KiB`,
          method: `random offsets in the ${options.sizeMiB} MiB upload (same seeded offsets for both), ${concurrency} in flight on keep-alive connections, bodies drained; req/s = successful requests / wall time`,
          rows: [
            {
              metric: 'req/s',
              ours: 'ours_rps',
              baseline: baseline('rps'),
              target: { on: 'ratio', op: '>=', value: 0.8 },
            },
            { metric: 'p50 ms', ours: 'ours_p50_ms', baseline: baseline('p50_ms') },
            { metric: 'p99 ms', ours: 'ours_p99_ms', baseline: baseline('p99_ms') },
            { metric: 'server CPU ms per request', ours: 'ours_cpu_ms_per_request' },
            {
              metric: 'errors (all runs)',
              ours: 'ours_errors',
              baseline: baseline('errors'),
              aggregate: 'sum',
            },
          ],
        },
        runs,
      ),
    ];
  },
};
