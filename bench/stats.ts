/** Order statistics over samples: medians across runs, percentiles across requests. */

function sorted(values: number[]): number[] {
  return [...values].sort((a, b) => a - b);
}

export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = sorted(values);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? Number.NaN) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

/** Nearest-rank percentile (p in 0..100): p99 of 100 samples is the 99th smallest. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const s = sorted(values);
  const rank = Math.max(1, Math.ceil((p / 100) * s.length));
  return s[rank - 1] ?? Number.NaN;
}

export const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

/** Server CPU seconds per GiB moved: what one gibibyte costs the server, whatever the speed. */
export function cpuSecondsPerGiB(cpuSeconds: number, bytes: number): number {
  return bytes > 0 ? cpuSeconds / (bytes / GIB) : Number.NaN;
}

/** Decimal megabytes per second, the unit S3 tools and tusd's docs quote. */
export function megabytesPerSecond(bytes: number, ms: number): number {
  return bytes / 1e6 / (ms / 1000);
}
