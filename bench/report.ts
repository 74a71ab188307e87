import type { Row, ScenarioResult, Target } from './scenario.ts';
import { median } from './stats.ts';

type RowSummary = {
  metric: string;
  ours: number;
  baseline?: { name: string; value: number };
  /** Median over runs of ours/baseline taken within each run. */
  ratio?: number;
  target?: Target & { met: boolean };
};

export type ScenarioSummary = Omit<ScenarioResult, 'rows'> & { rows: RowSummary[] };

function aggregate(row: Row, values: number[]): number {
  return row.aggregate === 'sum' ? values.reduce((a, b) => a + b, 0) : median(values);
}

function holds(value: number, target: Target): boolean {
  if (target.op === '>=') return value >= target.value;
  if (target.op === '<') return value < target.value;
  return value <= target.value;
}

export function summarise(result: ScenarioResult): ScenarioSummary {
  const rows = result.rows.map((row): RowSummary => {
    const column = (key: string) => result.runs.map((run) => run[key] ?? Number.NaN);
    const ours = aggregate(row, column(row.ours));
    const summary: RowSummary = { metric: row.metric, ours };
    if (row.baseline) {
      const base = column(row.baseline.key);
      summary.baseline = { name: row.baseline.name, value: aggregate(row, base) };
      const pairs = column(row.ours).map((value, i) => value / (base[i] ?? Number.NaN));
      if (row.aggregate !== 'sum' && pairs.every(Number.isFinite)) summary.ratio = median(pairs);
    }
    if (row.target) {
      const value = row.target.on === 'ratio' ? summary.ratio : ours;
      summary.target = { ...row.target, met: value !== undefined && holds(value, row.target) };
    }
    return summary;
  });
  return { ...result, rows };
}

/** Every target of the issue with the figure it was checked against, for the JSON. */
export function targetsOf(summaries: ScenarioSummary[]) {
  return summaries.flatMap((summary) =>
    summary.rows.flatMap((row) =>
      row.target
        ? [
            {
              scenario: summary.title,
              figure: row.metric,
              against: row.baseline?.name,
              on: row.target.on,
              op: row.target.op,
              threshold: row.target.value,
              measured: row.target.on === 'ratio' ? row.ratio : row.ours,
              met: row.target.met,
            },
          ]
        : [],
    ),
  );
}

function figure(value: number | undefined): string {
  if (value === undefined || Number.isNaN(value)) return '-';
  if (Number.isInteger(value)) return String(value);
  if (Math.abs(value) >= 100) return value.toFixed(0);
  if (Math.abs(value) >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

function targetText(target: RowSummary['target']): string {
  if (!target) return '';
  const what = target.on === 'ratio' ? 'ratio' : 'ours';
  return `${what} ${target.op.replace('>=', '≥').replace('<=', '≤')} ${target.value}: ${target.met ? 'met' : 'MISSED'}`;
}

/** The table the issue asks for: our figure, the baseline's, the per-run ratio, the target. */
export function formatTable(summaries: ScenarioSummary[]): string {
  const header = ['scenario', 'figure', 'ours', 'baseline', 'value', 'ours/base', 'target'];
  const lines: string[][] = [header];
  for (const summary of summaries) {
    summary.rows.forEach((row, i) => {
      lines.push([
        i === 0 ? summary.title : '',
        row.metric,
        figure(row.ours),
        row.baseline?.name ?? '',
        row.baseline ? figure(row.baseline.value) : '',
        row.ratio === undefined ? '' : `${row.ratio.toFixed(2)}×`,
        targetText(row.target),
      ]);
    });
  }
  const widths = header.map((_, c) => Math.max(...lines.map((line) => (line[c] ?? '').length)));
  const numeric = new Set([2, 4, 5]);
  const render = (line: string[]) =>
    line
      .map((cell, c) =>
        numeric.has(c) ? cell.padStart(widths[c] ?? 0) : cell.padEnd(widths[c] ?? 0),
      )
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [render(header), rule, ...lines.slice(1).map(render)].join('\n');
}

export function formatMethods(summaries: ScenarioSummary[]): string {
  return summaries
    .flatMap((s) => [`- ${s.title}: ${s.method}`, ...(s.notes ?? []).map((n) => `    note: ${n}`)])
    .join('\n');
}
