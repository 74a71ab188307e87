import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildServer } from '../test/harness/serverProcess.ts';
import { randomData } from './content.ts';
import { cpuSnapshot, loadAverage, otherCpu } from './machineLoad.ts';
import { type BenchOptions, parseOptions, type ScenarioId, USAGE } from './options.ts';
import { formatProfile, type ProfileSummary, summariseProfiles } from './profile.ts';
import { formatMethods, formatTable, summarise, targetsOf } from './report.ts';
import type { BenchContext, Scenario, ScenarioResult } from './scenario.ts';
import { bigScenario } from './scenarios/big.ts';
import { concurrentScenario } from './scenarios/concurrent.ts';
import { dedupeHitScenario } from './scenarios/dedupeHit.ts';
import { downloadScenario } from './scenarios/download.ts';
import { flagsScenario } from './scenarios/flags.ts';
import { nginxScenario } from './scenarios/nginx.ts';
import { parallelScenario } from './scenarios/parallel.ts';
import { proofTimingScenario } from './scenarios/proofTiming.ts';
import { rangesScenario } from './scenarios/ranges.ts';
import { scalingScenario } from './scenarios/scaling.ts';
import { uploadScenario } from './scenarios/upload.ts';
import { type Stack, startStack } from './stack.ts';
import { MIB } from './stats.ts';
import { checkServices, describeCode, describeMachine, ensureTusd } from './tools.ts';

// The AWS SDK's multi-line notice about future Node versions would break up the bench's output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const RESULTS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');

/** In this order: the upload leaves the fixture that download and ranges then read. */
const SCENARIOS: Record<ScenarioId, Scenario> = {
  upload: uploadScenario,
  nginx: nginxScenario,
  parallel: parallelScenario,
  concurrent: concurrentScenario,
  download: downloadScenario,
  ranges: rangesScenario,
  'dedupe-hit': dedupeHitScenario,
  'proof-timing': proofTimingScenario,
  flags: flagsScenario,
  scaling: scalingScenario,
  big: bigScenario,
};

const log = (message: string) => process.stderr.write(`${message}\n`);

async function main(options: BenchOptions) {
  const started = Date.now();
  const stamp = new Date(started).toISOString().replace(/[:.]/g, '-');
  const loadBefore = loadAverage();
  const cpuBefore = cpuSnapshot();
  checkServices(options.scenarios.includes('nginx'));
  // Our server runs as `npm start` runs it: built from the current sources.
  buildServer();
  const tusdBinary = ensureTusd(log);
  const machine = describeMachine(tusdBinary);
  const profileDir = options.cpuProf ? path.join(RESULTS, `profiles-${stamp}`) : undefined;

  log(`bench: starting MinIO, Redis (load average ${loadBefore.join(' ')})`);
  const stack: Stack = await startStack({
    tusdBinary,
    partSize: options.partMiB * MIB,
    profileDir,
  });
  const stopOnSignal = () => void stack.stop().finally(() => process.exit(130));
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);

  const results: ScenarioResult[] = [];
  try {
    log(`bench: generating ${options.sizeMiB} MiB of random data`);
    const context: BenchContext = {
      options,
      stack,
      data: randomData(options.sizeMiB * MIB),
      fixtures: {},
      log,
    };
    for (const id of Object.keys(SCENARIOS) as ScenarioId[]) {
      if (!options.scenarios.includes(id)) continue;
      log(`bench: ${id}`);
      const scenarioStart = Date.now();
      results.push(...(await SCENARIOS[id].run(context)));
      log(`  ${id} took ${((Date.now() - scenarioStart) / 1000).toFixed(0)} s`);
    }
  } finally {
    await stack.stop();
  }

  const summaries = results.map(summarise);
  const loadAfter = loadAverage();
  const others = otherCpu(cpuBefore, cpuSnapshot());
  const seconds = Math.round((Date.now() - started) / 1000);
  console.log(
    `\n${machine.cpu}, ${machine.cores} cores, ${machine.ramGiB} GiB; node ${machine.node}, ${machine.tusd}, ${machine.minio}`,
  );
  const parallelRuns =
    options.scenarios.includes('parallel') && options.parallelRuns !== options.runs
      ? ` (parallel upload: ${options.parallelRuns})`
      : '';
  console.log(
    `${options.runs} runs${parallelRuns}; figures are medians of runs, ratios medians of per-run ratios; MB = 10^6 bytes\n`,
  );
  console.log(formatTable(summaries));
  console.log(`\nhow each was measured:\n${formatMethods(summaries)}`);

  let profiles: ProfileSummary[] | undefined;
  if (profileDir) {
    profiles = summariseProfiles(profileDir);
    console.log(`\nour server's CPU profiles (${profileDir}):`);
    for (const profile of profiles) console.log(formatProfile(profile));
  }

  const out = options.out ?? path.join(RESULTS, `${stamp}.json`);
  mkdirSync(path.dirname(out), { recursive: true });
  const report = {
    machine,
    code: describeCode(),
    conditions: {
      loadAverageBefore: loadBefore,
      loadAverageAfter: loadAfter,
      // CPU used by processes outside the bench while it ran: well above 0 means a shared machine.
      otherProcessesCpu: others,
      note: options.note,
      durationSeconds: seconds,
    },
    options,
    scenarios: summaries,
    targets: targetsOf(summaries),
    profiles,
  };
  writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
  console.log(
    `other processes used ${others.coreSeconds} core-seconds (${others.percentOfMachine}% of the machine) during the run`,
  );
  console.log(`\nresults: ${path.relative(process.cwd(), out)}; the bench took ${seconds} s`);
}

const parsed = parseOptions(process.argv.slice(2));
if (parsed === 'help') {
  console.log(USAGE);
} else {
  main(parsed).catch((error: Error) => {
    log(`bench failed: ${error.stack ?? error.message}`);
    process.exitCode = 1;
  });
}
