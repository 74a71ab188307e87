import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The parts of a V8 .cpuprofile (what `node --cpu-prof` writes) a summary needs. */
type CpuProfile = {
  nodes: Array<{
    id: number;
    hitCount?: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
  }>;
  startTime: number;
  endTime: number;
};

type Hotspot = { name: string; where: string; selfMs: number; busyPct: number };

export type ProfileSummary = {
  file: string;
  /** Wall time the profile covers and the part of it the main thread was not idle. */
  wallMs: number;
  busyMs: number;
  functions: Hotspot[];
  /** Self time by package (node_modules), Node internals, V8 (GC, program) or project file. */
  places: Hotspot[];
};

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Where a function lives: a package name, `node:` internals, a project file or a V8 pseudo-frame. */
function placeOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return 'node internals';
  const file = url.replace(/^file:\/\//, '');
  const inModules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file);
  if (inModules?.[1]) return inModules[1];
  return path.relative(ROOT, file);
}

function top(totals: Map<string, Hotspot>, count: number): Hotspot[] {
  return [...totals.values()].sort((a, b) => b.selfMs - a.selfMs).slice(0, count);
}

function summariseProfile(file: string, count = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const samples = profile.nodes.reduce((sum, node) => sum + (node.hitCount ?? 0), 0);
  const wallMs = (profile.endTime - profile.startTime) / 1000;
  const msPerSample = samples > 0 ? wallMs / samples : 0;
  const idle = profile.nodes
    .filter((node) => node.callFrame.functionName === '(idle)')
    .reduce((sum, node) => sum + (node.hitCount ?? 0), 0);
  const busyMs = (samples - idle) * msPerSample;
  const functions = new Map<string, Hotspot>();
  const places = new Map<string, Hotspot>();
  for (const node of profile.nodes) {
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)' || !node.hitCount) continue;
    const selfMs = node.hitCount * msPerSample;
    const where = placeOf(url, functionName);
    const name = functionName || '(anonymous)';
    const key = `${name} ${url}:${lineNumber}`;
    const location = url ? `${where}:${lineNumber + 1}` : where;
    for (const [map, id, entry] of [
      [functions, key, { name, where: location }],
      [places, where, { name: where, where }],
    ] as const) {
      const hotspot = map.get(id) ?? { ...entry, selfMs: 0, busyPct: 0 };
      hotspot.selfMs += selfMs;
      hotspot.busyPct = busyMs > 0 ? (hotspot.selfMs / busyMs) * 100 : 0;
      map.set(id, hotspot);
    }
  }
  return { file, wallMs, busyMs, functions: top(functions, count), places: top(places, count) };
}

export function formatProfile(summary: ProfileSummary): string {
  const line = (h: Hotspot) =>
    `    ${h.busyPct.toFixed(1).padStart(5)}%  ${h.selfMs.toFixed(0).padStart(7)} ms  ${h.name}${h.name === h.where ? '' : `  (${h.where})`}`;
  return [
    `${path.basename(path.dirname(summary.file))}: ${summary.busyMs.toFixed(0)} ms busy of ${summary.wallMs.toFixed(0)} ms (${((summary.busyMs / summary.wallMs) * 100).toFixed(0)}% of one core)`,
    '  self time by place:',
    ...summary.places.slice(0, 10).map(line),
    '  hottest functions (self time):',
    ...summary.functions.map(line),
  ].join('\n');
}

/** Every .cpuprofile under `dir`, one level of folders deep (one folder per server process). */
function profileFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) =>
      entry.isDirectory()
        ? profileFiles(path.join(dir, entry.name))
        : entry.name.endsWith('.cpuprofile')
          ? [path.join(dir, entry.name)]
          : [],
    )
    .sort();
}

/** One summary per server process: its busiest thread (the main one, not tsx's loader thread). */
export function summariseProfiles(dir: string): ProfileSummary[] {
  const byProcess = new Map<string, ProfileSummary>();
  for (const file of profileFiles(dir)) {
    const summary = summariseProfile(file);
    const owner = path.dirname(file);
    const known = byProcess.get(owner);
    if (!known || known.busyMs < summary.busyMs) byProcess.set(owner, summary);
  }
  return [...byProcess.values()];
}

// `node --import tsx bench/profile.ts FILE|DIR…` prints the same summary for profiles made elsewhere.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  for (const target of process.argv.slice(2)) {
    const summaries = target.endsWith('.cpuprofile')
      ? [summariseProfile(target)]
      : summariseProfiles(target);
    for (const summary of summaries) console.log(formatProfile(summary));
  }
}
