import { parseArgs } from 'node:util';

const SCENARIO_IDS = [
  'upload',
  'nginx',
  'parallel',
  'concurrent',
  'download',
  'ranges',
  'dedupe-hit',
  'proof-timing',
  'flags',
  'scaling',
  'big',
] as const;
/** Scenarios run only when asked for (`--scenarios`): they take minutes of their own. */
const OPT_IN: ScenarioId[] = ['big'];
export type ScenarioId = (typeof SCENARIO_IDS)[number];

export type BenchOptions = {
  sizeMiB: number;
  runs: number;
  parallelRuns: number;
  chunkMiB: number;
  partMiB: number;
  parallelUploads: number;
  concurrentUploads: number;
  concurrentSizeMiB: number;
  scalingLevels: number[];
  bigGiB: number;
  rangeRequests: number;
  rangeKiB: number;
  rangeConcurrency: number;
  dedupeRequests: number;
  scenarios: ScenarioId[];
  cpuProf: boolean;
  out?: string;
  note?: string;
};

/** flag, env variable, default: every size is a parameter, the defaults fit 10 minutes on 2 cores. */
const NUMBERS = {
  'size-mib': ['BENCH_SIZE_MIB', 1024, 'size of the one-file upload and download'],
  runs: ['BENCH_RUNS', 3, 'runs per scenario; figures are medians over runs'],
  'chunk-mib': ['BENCH_CHUNK_MIB', 64, 'tus-js-client chunkSize'],
  'part-mib': ['BENCH_PART_MIB', 8, 'S3 part size: ours, tusd and lib-storage alike'],
  'parallel-uploads': ['BENCH_PARALLEL_UPLOADS', 4, 'tus-js-client parallelUploads (parallel)'],
  'parallel-runs': ['BENCH_PARALLEL_RUNS', 1, 'runs of parallel (4 uploads of size-mib each)'],
  concurrent: ['BENCH_CONCURRENT', 40, 'simultaneous uploads'],
  'concurrent-size-mib': ['BENCH_CONCURRENT_SIZE_MIB', 8, 'size of each simultaneous upload'],
  ranges: ['BENCH_RANGES', 1000, 'ranged GETs per run'],
  'range-kib': ['BENCH_RANGE_KIB', 1024, 'length of each ranged GET'],
  'range-concurrency': ['BENCH_RANGE_CONCURRENCY', 8, 'ranged GETs in flight'],
  'dedupe-requests': ['BENCH_DEDUPE_REQUESTS', 200, 'creation POSTs per kind per run'],
  'big-gib': ['BENCH_BIG_GIB', 10, 'size of the one upload of the big scenario (opt-in)'],
} as const;

export const USAGE = `npm run bench -- [flags]   (each flag also reads from the env variable shown)
${Object.entries(NUMBERS)
  .map(([flag, [env, value, what]]) => `  --${flag.padEnd(22)}${what} (${env}, default ${value})`)
  .join('\n')}
  --scenarios LIST        comma-separated subset of ${SCENARIO_IDS.join(',')} (BENCH_SCENARIOS)
  --scaling-levels LIST   upload counts of the scaling scenario (BENCH_SCALING_LEVELS, default 1,10,100,400)
  --cpu-prof              run our server under node --cpu-prof and print its hottest functions
  --out FILE              results file (default bench/results/<timestamp>.json)
  --note TEXT             kept in the results, e.g. "machine busy with browser tests"`;

function positive(name: string, raw: string): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0)
    throw new Error(`--${name} must be a positive integer`);
  return value;
}

export function parseOptions(argv: string[], env = process.env): BenchOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...Object.fromEntries(Object.keys(NUMBERS).map((flag) => [flag, { type: 'string' }])),
      scenarios: { type: 'string' },
      'scaling-levels': { type: 'string' },
      'cpu-prof': { type: 'boolean' },
      out: { type: 'string' },
      note: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    } as const,
    strict: true,
  });
  if (values.help) return 'help';
  const number = (flag: keyof typeof NUMBERS): number => {
    const [envName, fallback] = NUMBERS[flag];
    const raw = (values as Record<string, unknown>)[flag] ?? env[envName];
    return typeof raw === 'string' ? positive(flag, raw) : fallback;
  };
  const scenarioList = (values.scenarios as string | undefined) ?? env.BENCH_SCENARIOS;
  const scenarios = scenarioList
    ? scenarioList.split(',').map((name) => {
        const id = name.trim() as ScenarioId;
        if (!SCENARIO_IDS.includes(id)) throw new Error(`unknown scenario "${name}"`);
        return id;
      })
    : SCENARIO_IDS.filter((id) => !OPT_IN.includes(id));
  const options: BenchOptions = {
    sizeMiB: number('size-mib'),
    runs: number('runs'),
    chunkMiB: number('chunk-mib'),
    partMiB: number('part-mib'),
    parallelUploads: number('parallel-uploads'),
    parallelRuns: number('parallel-runs'),
    concurrentUploads: number('concurrent'),
    concurrentSizeMiB: number('concurrent-size-mib'),
    scalingLevels: (
      (values['scaling-levels'] as string | undefined) ??
      env.BENCH_SCALING_LEVELS ??
      '1,10,100,400'
    )
      .split(',')
      .map((level) => positive('scaling-levels', level.trim())),
    rangeRequests: number('ranges'),
    rangeKiB: number('range-kib'),
    rangeConcurrency: number('range-concurrency'),
    dedupeRequests: number('dedupe-requests'),
    bigGiB: number('big-gib'),
    scenarios,
    cpuProf: Boolean(values['cpu-prof']),
    out: values.out as string | undefined,
    note: (values.note as string | undefined) ?? env.BENCH_NOTE,
  };
  if (options.partMiB < 5) throw new Error('--part-mib must be at least 5 (the S3 minimum)');
  if (options.rangeKiB * 1024 > options.sizeMiB * 1024 * 1024)
    throw new Error('--range-kib must not exceed --size-mib');
  return options;
}
