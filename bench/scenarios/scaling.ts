import { randomFiles } from '../content.ts';
import { type Row, resultOf, type Scenario } from '../scenario.ts';
import { MIB } from '../stats.ts';
import { uploadAllAtOnce } from './concurrent.ts';
import { uploadContenders } from './fixtures.ts';

/**
 * How cost grows with concurrency: the concurrent scenario at several counts, each count in
 * fresh server processes (so VmHWM is that count's peak), ours with dedupe on and off and tusd.
 */
export const scalingScenario: Scenario = {
  id: 'scaling',
  async run({ options, stack, log }) {
    const levels = options.scalingLevels;
    const size = options.concurrentSizeMiB * MIB;
    const chunkSize = options.chunkMiB * MIB;
    const pool = randomFiles(Math.max(...levels), size);
    const start = uploadContenders(stack, 'scaling');
    const notes: string[] = [];
    const run: Record<string, number> = {};
    for (const level of levels) {
      const files = pool.slice(0, level);
      for (const contender of ['ours', 'ours_nodedupe', 'tusd'] as const) {
        const server = await start[contender]();
        try {
          const result = await uploadAllAtOnce(server, files, chunkSize);
          const key = (name: string) => `${contender}_${level}_${name}`;
          run[key('mbps')] = result.mbps;
          run[key('cpu')] = result.cpuPerGiB;
          run[key('cpu_ms_per_upload')] = result.cpuMsPerUpload;
          run[key('rss')] = result.rssMiB;
          run[key('p99')] = result.p99Ms;
          run[key('errors')] = result.failures.length;
          if (result.failures[0])
            notes.push(
              `${server.name} at ${level}: ${result.failures.length} failed, e.g. ${result.failures[0]}`,
            );
        } finally {
          await server.stop();
        }
      }
      log(
        `  scaling ${level}: ours ${run[`ours_${level}_mbps`]?.toFixed(0)}, dedupe off ${run[`ours_nodedupe_${level}_mbps`]?.toFixed(0)}, tusd ${run[`tusd_${level}_mbps`]?.toFixed(0)} MB/s`,
      );
    }
    const rows: Row[] = levels.flatMap((level): Row[] => {
      const tusd = (name: string) => ({ name: 'tusd', key: `tusd_${level}_${name}` });
      const ours = (name: string) => `ours_${level}_${name}`;
      const off = (name: string) => `ours_nodedupe_${level}_${name}`;
      return [
        { metric: `${level} at once: MB/s`, ours: ours('mbps'), baseline: tusd('mbps') },
        { metric: `${level} at once: MB/s, dedupe off`, ours: off('mbps'), baseline: tusd('mbps') },
        { metric: `${level} at once: CPU s per GiB`, ours: ours('cpu'), baseline: tusd('cpu') },
        {
          metric: `${level} at once: CPU ms per upload, dedupe off`,
          ours: off('cpu_ms_per_upload'),
          baseline: tusd('cpu_ms_per_upload'),
        },
        { metric: `${level} at once: peak RSS MiB`, ours: ours('rss'), baseline: tusd('rss') },
        { metric: `${level} at once: p99 ms`, ours: ours('p99'), baseline: tusd('p99') },
        {
          metric: `${level} at once: errors`,
          ours: ours('errors'),
          baseline: tusd('errors'),
          aggregate: 'sum',
          target: { on: 'ours', op: '<=', value: 0 },
        },
      ];
    });
    return [
      resultOf(
        {
          id: 'scaling',
          title: `uploads of ${options.concurrentSizeMiB} MiB, ${levels.join(', ')} at once`,
          method:
            'as the concurrent scenario, once per count, each count in fresh server processes; one run; CPU ms per upload = utime + stime of the server over the uploads / successful uploads',
          rows,
          notes,
        },
        [run],
      ),
    ];
  },
};
