import { Redis } from 'ioredis';

/** One command Redis executed, as `MONITOR` reports it. */
type MonitoredCommand = { args: string[]; source: string; database: number };

/**
 * Watches one Redis database with `MONITOR` and keeps the commands other clients ran there,
 * leaving out the watcher's own marker connection. `settle()` sends a marker and resolves once
 * the monitor has seen it, so every command before it has been delivered (MONITOR is async).
 */
export type RedisMonitor = {
  commands: MonitoredCommand[];
  /** Resolves once every command sent before this call has reached `commands`. */
  settle(): Promise<void>;
  /** Forgets what was seen so far (call after `settle`). */
  reset(): void;
  close(): Promise<void>;
};

export async function startRedisMonitor(url: string): Promise<RedisMonitor> {
  const database = Number(new URL(url).pathname.slice(1) || 0);
  const admin = new Redis(url, { maxRetriesPerRequest: 1 });
  const monitor = await admin.monitor();
  const commands: MonitoredCommand[] = [];
  const waiting = new Map<string, () => void>();
  let markers = 0;
  monitor.on('monitor', (_time: string, args: string[], source: string, db: string) => {
    const marker = args[0]?.toLowerCase() === 'echo' ? waiting.get(args[1] ?? '') : undefined;
    if (marker) {
      waiting.delete(args[1] ?? '');
      marker();
      return;
    }
    if (Number(db) === database) commands.push({ args, source, database: Number(db) });
  });
  return {
    commands,
    async settle() {
      const name = `requestCost-marker-${markers++}`;
      const seen = new Promise<void>((resolve) => waiting.set(name, resolve));
      await admin.echo(name);
      await seen;
    },
    reset() {
      commands.length = 0;
    },
    async close() {
      monitor.disconnect();
      admin.disconnect();
    },
  };
}
