import { statSync } from 'node:fs';
import { describe, expect, test } from '@jest/globals';
import { Spool } from '../../storage/spool.ts';

const bytes = (length: number, seed: number) =>
  Buffer.from(Array.from({ length }, (_, i) => (i * 31 + seed) % 256));

async function readAll(spool: Spool): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await spool.reader()) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('Spool: the bytes of the part in flight, kept in a temporary file', () => {
  test('gives back every byte appended, in order, across write batches', async () => {
    const spool = await Spool.open();
    // 65 536-byte chunks, like socket reads, past one 256 KiB batch, and a short last one.
    const chunks = [...Array.from({ length: 5 }, (_, i) => bytes(65_536, i)), bytes(1234, 9)];
    try {
      for (const chunk of chunks) await spool.append(chunk);
      expect(spool.length).toBe(5 * 65_536 + 1234);
      expect((await readAll(spool)).equals(Buffer.concat(chunks))).toBe(true);
    } finally {
      await spool.discard();
    }
  });

  test('its file is readable by this user only, and gone once discarded', async () => {
    const spool = await Spool.open();
    await spool.append(bytes(10, 1));
    const file = (spool as unknown as { file: string }).file;
    expect(statSync(file).mode & 0o777).toBe(0o600);
    await spool.discard();
    expect(() => statSync(file)).toThrow();
  });
});
