import { Readable } from 'node:stream';
import { Upload as TusUpload } from 'tus-js-client';
import { now } from '../clients.ts';
import { randomData } from '../content.ts';
import { resultOf, type Scenario } from '../scenario.ts';
import { cpuSecondsPerGiB, MIB, megabytesPerSecond } from '../stats.ts';
import { uploadContenders } from './fixtures.ts';

const GIB = 1024 * MIB;

/**
 * `size` bytes made of one 64 MiB random block, each copy with its own first bytes: more than a
 * Buffer may hold (4 GiB), produced as fast as the server takes it.
 */
function bigSource(size: number): Readable {
  const block = randomData(64 * MIB);
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= size) return void this.push(null);
      const piece = Buffer.from(block.subarray(0, Math.min(block.length, size - sent)));
      piece.writeDoubleBE(sent, 0);
      sent += piece.length;
      this.push(piece);
    },
  });
}

/** One tus upload of a stream; tus-js-client reads a stream in chunks of `chunkSize`. */
function tusStreamUpload(endpoint: string, size: number, chunkSize: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = now();
    const upload = new TusUpload(bigSource(size), {
      endpoint,
      chunkSize,
      uploadSize: size,
      retryDelays: null,
      metadata: { filename: 'big.bin', filetype: 'application/octet-stream' },
      onError: reject,
      onSuccess: () => resolve(now() - started),
    });
    upload.start();
  });
}

/** One upload larger than a Buffer: how a long upload costs (opt-in: `--scenarios big`). */
export const bigScenario: Scenario = {
  id: 'big',
  async run({ options, stack, log }) {
    const size = options.bigGiB * GIB;
    const chunkSize = options.chunkMiB * MIB;
    const start = uploadContenders(stack, 'big');
    const run: Record<string, number> = {};
    for (const contender of ['ours', 'ours_nodedupe', 'tusd'] as const) {
      const server = await start[contender]();
      try {
        const cpuBefore = server.cpuSeconds();
        const ms = await tusStreamUpload(server.filesUrl, size, chunkSize);
        run[`${contender}_mbps`] = megabytesPerSecond(size, ms);
        run[`${contender}_cpu`] = cpuSecondsPerGiB(server.cpuSeconds() - cpuBefore, size);
        run[`${contender}_rss`] = server.peakRssMiB();
      } finally {
        await server.stop();
      }
      log(`  big ${contender}: ${run[`${contender}_mbps`]?.toFixed(0)} MB/s`);
    }
    const tusd = (key: string) => ({ name: 'tusd', key: `tusd_${key}` });
    return [
      resultOf(
        {
          id: 'big',
          title: `one ${options.bigGiB} GiB upload`,
          method: `tus-js-client from a stream (one 64 MiB random block, each copy stamped), chunks of ${options.chunkMiB} MiB; each server a fresh process; one run`,
          rows: [
            { metric: 'MB/s', ours: 'ours_mbps', baseline: tusd('mbps') },
            { metric: 'MB/s, dedupe off', ours: 'ours_nodedupe_mbps', baseline: tusd('mbps') },
            { metric: 'server CPU s per GiB', ours: 'ours_cpu', baseline: tusd('cpu') },
            {
              metric: 'server CPU s per GiB, dedupe off',
              ours: 'ours_nodedupe_cpu',
              baseline: tusd('cpu'),
            },
            {
              metric: 'peak RSS MiB',
              ours: 'ours_rss',
              baseline: tusd('rss'),
              target: { on: 'ours', op: '<', value: 150 },
            },
          ],
        },
        [run],
      ),
    ];
  },
};
