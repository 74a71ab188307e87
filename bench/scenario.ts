import type { BenchOptions } from './options.ts';
import type { Stack } from './stack.ts';

/** A goal from the issue, checked against the row's ratio or against our own figure. */
export type Target = { on: 'ratio' | 'ours'; op: '>=' | '<' | '<='; value: number };

/** One line of the table: our figure, optionally a baseline's, and their per-run ratio. */
export type Row = {
  metric: string;
  ours: string;
  baseline?: { name: string; key: string };
  /** Errors add up over runs; every other figure is the median of the runs. */
  aggregate?: 'median' | 'sum';
  target?: Target;
};

/** What a scenario measured: one record of figures per run, and how to read them. */
export type ScenarioResult = {
  id: string;
  title: string;
  /** One line on how it was measured, printed under the table and kept in the JSON. */
  method: string;
  runs: Array<Record<string, number>>;
  rows: Row[];
  /** Facts worth keeping that are not figures (ids, object keys, warnings). */
  notes?: string[];
};

/** Uploads the scenarios can reuse instead of uploading 1 GiB again. */
type Fixtures = {
  /** A finished upload of `sizeBytes` in our bucket; its object key is the upload id. */
  oursUploadId?: string;
  tusdUploadId?: string;
};

export type BenchContext = {
  options: BenchOptions;
  stack: Stack;
  /** `sizeMiB` of random bytes, generated once. */
  data: Buffer;
  fixtures: Fixtures;
  log(message: string): void;
};

export type Scenario = {
  id: string;
  /** One or more results: scenarios that share runs (upload, dedupe on/off, RSS) report apart. */
  run(context: BenchContext): Promise<ScenarioResult[]>;
};

/** A result showing only the figures its rows use, out of runs that measured more. */
export function resultOf(
  base: Omit<ScenarioResult, 'runs'>,
  runs: Array<Record<string, number>>,
): ScenarioResult {
  const keys = new Set(base.rows.flatMap((row) => [row.ours, row.baseline?.key ?? row.ours]));
  const picked = runs.map((run) =>
    Object.fromEntries(Object.entries(run).filter(([key]) => keys.has(key))),
  );
  return { ...base, runs: picked };
}

/** Rotates who goes first each run, so going first or last (warm caches, busy disk) is shared out. */
export function inRunOrder<T>(contenders: T[], run: number): T[] {
  const shift = run % contenders.length;
  return [...contenders.slice(shift), ...contenders.slice(0, shift)];
}
