import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';

/** What a process holds, read from outside it through /proc (Linux). */

function fdTargets(pid: number): string[] {
  const targets: string[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      targets.push(readlinkSync(`/proc/${pid}/fd/${fd}`));
    } catch {
      // Closed between the listing and the read.
    }
  }
  return targets;
}

/** The TCP connections process `pid` holds open to `remotePort` (any state but LISTEN). */
export function tcpConnectionsTo(pid: number, remotePort: number): number {
  const owned = new Set(
    fdTargets(pid)
      .map((target) => /^socket:\[(\d+)\]$/.exec(target)?.[1])
      .filter((inode): inode is string => inode !== undefined),
  );
  let count = 0;
  for (const table of ['tcp', 'tcp6']) {
    const lines = readFileSync(`/proc/${pid}/net/${table}`, 'utf8').trim().split('\n').slice(1);
    for (const line of lines) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
      const fields = line.trim().split(/\s+/);
      const remote = fields[2] ?? '';
      const state = fields[3];
      const inode = fields[9] ?? '';
      const port = Number.parseInt(remote.split(':')[1] ?? '', 16);
      if (port === remotePort && state !== '0A' && owned.has(inode)) count += 1;
    }
  }
  return count;
}

/** How many files under `directory` process `pid` has open. */
export function openFilesUnder(pid: number, directory: string): number {
  return fdTargets(pid).filter((target) => target.startsWith(`${directory}/`)).length;
}

function statusField(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1];
  if (kib === undefined) throw new Error(`no ${field} for process ${pid}`);
  return Number(kib) * 1024;
}

/** Resident set size now, in bytes. */
export function residentBytes(pid: number): number {
  return statusField(pid, 'VmRSS');
}

/** The highest resident set size since the last resetPeakResident, in bytes. */
export function peakResidentBytes(pid: number): number {
  return statusField(pid, 'VmHWM');
}

/** Starts a new peak: writing 5 to clear_refs resets VmHWM to the current RSS. */
export function resetPeakResident(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}
