import { randomFillSync } from 'node:crypto';

/**
 * Random bytes, filled in slices: randomFillSync takes at most 2 GiB at once, and no offset past
 * 2 GiB, so each slice is filled as a view of its own.
 */
export function randomData(size: number): Buffer {
  const data = Buffer.allocUnsafe(size);
  const slice = 256 * 1024 * 1024;
  for (let start = 0; start < size; start += slice)
    randomFillSync(data.subarray(start, Math.min(start + slice, size)));
  return data;
}

/** `count` files of `size` random bytes each, views of one buffer. */
export function randomFiles(count: number, size: number): Buffer[] {
  const pool = randomData(count * size);
  return Array.from({ length: count }, (_, i) => pool.subarray(i * size, (i + 1) * size));
}

/** New random first bytes: the content (and its sha256) was never stored, so dedupe cannot hit. */
export function freshen(data: Buffer): Buffer {
  randomFillSync(data, 0, Math.min(64, data.length));
  return data;
}
