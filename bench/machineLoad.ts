import { readFileSync } from 'node:fs';
import os from 'node:os';

/** Linux reports CPU time in USER_HZ ticks, 100 a second on every mainstream architecture. */
const TICKS_PER_SECOND = 100;

export type CpuSnapshot = { machineBusy: number; machineTotal: number; ours: number };

/** CPU ticks the whole machine spent and those this process and its exited children spent. */
export function cpuSnapshot(): CpuSnapshot {
  const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '')
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  // utime, stime, cutime, cstime: children count once they have exited and been waited for.
  const self = readFileSync('/proc/self/stat', 'utf8');
  const after = self.slice(self.lastIndexOf(')') + 2).split(' ');
  const ours = [11, 12, 13, 14].reduce((sum, i) => sum + Number(after[i] ?? 0), 0);
  return { machineBusy: total - idle, machineTotal: total, ours };
}

/**
 * CPU that processes other than the bench (and the servers it started) used between two
 * snapshots; the second must be taken after every child has exited.
 */
export function otherCpu(before: CpuSnapshot, after: CpuSnapshot) {
  const busy = after.machineBusy - before.machineBusy;
  const total = after.machineTotal - before.machineTotal;
  const others = Math.max(0, busy - (after.ours - before.ours));
  return {
    coreSeconds: Math.round(others / TICKS_PER_SECOND),
    percentOfMachine: total > 0 ? Math.round((others / total) * 1000) / 10 : 0,
  };
}

/** The 1, 5 and 15 minute load averages now. */
export function loadAverage(): number[] {
  return os.loadavg().map((l) => Math.round(l * 100) / 100);
}
