import { randomFillSync } from 'node:crypto';

/** Random bytes, filled in slices: randomFillSync takes at most 2 GiB at once. */
export function randomData(size: number): Buffer {
  const data = Buffer.allocUnsafe(size);
  const slice = 256 * 1024 * 1024;
  for (let start = 0; start < size; start += slice)
    randomFillSync(data, start, Math.min(slice, size - start));
  return data;
}

/** New random first bytes: the content (and its sha256) was never stored, so dedupe cannot hit. */
export function freshen(data: Buffer): Buffer {
  randomFillSync(data, 0, Math.min(64, data.length));
  return data;
}
