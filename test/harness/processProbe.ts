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

/** One row of the kernel's TCP tables, as seen from process `pid`'s network namespace. */
type TcpSocket = {
  localPort: number;
  remotePort: number;
  /** `0A` is LISTEN, `01` ESTABLISHED. */
  state: string;
  /** Bytes sent but not yet acknowledged by the other side. */
  txQueue: number;
  /** Bytes received but not yet read by the process that owns the socket. */
  rxQueue: number;
  inode: string;
};

function tcpSockets(pid: number | 'self'): TcpSocket[] {
  const sockets: TcpSocket[] = [];
  const port = (address: string | undefined) => Number.parseInt(address?.split(':')[1] ?? '', 16);
  for (const table of ['tcp', 'tcp6']) {
    const lines = readFileSync(`/proc/${pid}/net/${table}`, 'utf8').trim().split('\n').slice(1);
    for (const line of lines) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
      const fields = line.trim().split(/\s+/);
      const [tx, rx] = (fields[4] ?? '').split(':');
      sockets.push({
        localPort: port(fields[1]),
        remotePort: port(fields[2]),
        state: fields[3] ?? '',
        txQueue: Number.parseInt(tx ?? '', 16),
        rxQueue: Number.parseInt(rx ?? '', 16),
        inode: fields[9] ?? '',
      });
    }
  }
  return sockets;
}

/** The TCP connections process `pid` holds open to `remotePort` (any state but LISTEN). */
export function tcpConnectionsTo(pid: number, remotePort: number): number {
  const owned = new Set(
    fdTargets(pid)
      .map((target) => /^socket:\[(\d+)\]$/.exec(target)?.[1])
      .filter((inode): inode is string => inode !== undefined),
  );
  return tcpSockets(pid).filter(
    (socket) =>
      socket.remotePort === remotePort && socket.state !== '0A' && owned.has(socket.inode),
  ).length;
}

/**
 * Whether every byte this process wrote on its loopback connection from `clientPort` to
 * `serverPort` has been read by the process at the other end: nothing waits in this side's send
 * queue nor in the other side's receive queue.
 */
export function allBytesRead(clientPort: number, serverPort: number): boolean {
  const sockets = tcpSockets('self').filter((s) => s.state === '01');
  const client = sockets.find((s) => s.localPort === clientPort && s.remotePort === serverPort);
  const server = sockets.find((s) => s.localPort === serverPort && s.remotePort === clientPort);
  return client?.txQueue === 0 && server?.rxQueue === 0;
}

/**
 * Bytes that arrived on loopback connections to `serverPort` and wait there, unread by the
 * process listening on it (e.g. a stopped one).
 */
export function bytesWaitingAt(serverPort: number): number {
  return tcpSockets('self')
    .filter((s) => s.state === '01' && s.localPort === serverPort)
    .reduce((sum, s) => sum + s.rxQueue, 0);
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
