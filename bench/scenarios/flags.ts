import { GetObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { START_FLAGS } from '../../test/harness/serverProcess.ts';
import { httpRequest, keepAliveAgent, tusUpload } from '../clients.ts';
import { freshen } from '../content.ts';
import { type BenchContext, inRunOrder, type Row, resultOf, type Scenario } from '../scenario.ts';
import type { BenchServer } from '../servers.ts';
import { BUCKETS } from '../stack.ts';
import { cpuSecondsPerGiB, MIB, megabytesPerSecond } from '../stats.ts';
import { ensureFixtures, uploadIdOf } from './fixtures.ts';

/** Our server with npm start's node flags, and with none (Node's defaults). */
const VARIANTS = { start: START_FLAGS, plain: [] as string[] } as const;
type Variant = keyof typeof VARIANTS;
type Contender = Variant | 'bare' | 'raw' | 'tusd';

type Download = { mbps: number; cpuPerGiB: number; rssMiB: number };

/** One full GET of `url` from a server process started for it (VmHWM is this download's). */
async function downloadFrom(server: BenchServer, url: string, size: number): Promise<Download> {
  const agent = keepAliveAgent(1);
  try {
    const cpuBefore = server.cpuSeconds();
    const response = await httpRequest(url, agent);
    if (response.status !== 200 || response.bytes !== size)
      throw new Error(`${server.name} download: ${response.status}, ${response.bytes} bytes`);
    return {
      mbps: megabytesPerSecond(response.bytes, response.ms),
      cpuPerGiB: cpuSecondsPerGiB(server.cpuSeconds() - cpuBefore, response.bytes),
      rssMiB: server.peakRssMiB(),
    };
  } finally {
    agent.destroy();
    await server.stop();
  }
}

/**
 * What each node flag of `npm start` costs and buys: our server with them and without them, each
 * in fresh processes, for idle RSS, one upload and one download; beside it the bare Node proxy
 * (Node's own floor for a proxied download) and tusd.
 */
export const flagsScenario: Scenario = {
  id: 'flags',
  async run(context: BenchContext) {
    const { options, stack, log, data } = context;
    const { tusdUploadId } = await ensureFixtures(context);
    const chunkSize = options.chunkMiB * MIB;
    const measure: Record<Contender, (run: Record<string, number>) => Promise<void>> = {
      start: (run) => measureVariant('start', run),
      plain: (run) => measureVariant('plain', run),
      bare: (run) => measureProxy('http', 'bare', run),
      raw: (run) => measureProxy('raw', 'raw', run),
      async tusd(run) {
        const tusd = await stack.startTusd();
        const result = await downloadFrom(tusd, `${tusd.filesUrl}${tusdUploadId}`, data.length);
        run.tusd_down_mbps = result.mbps;
        run.tusd_down_cpu = result.cpuPerGiB;
        run.tusd_down_rss = result.rssMiB;
      },
    };

    /** A proxy of our object of the same size, by a presigned GET: the proxy signs nothing. */
    async function measureProxy(kind: 'http' | 'raw', name: string, run: Record<string, number>) {
      const target = await getSignedUrl(
        stack.s3,
        new GetObjectCommand({ Bucket: BUCKETS.ours, Key: context.fixtures.oursUploadId ?? '' }),
        { expiresIn: 3600 },
      );
      const proxy = await stack.startBareProxy(kind);
      const url = `${proxy.filesUrl}${encodeURIComponent(target)}`;
      const result = await downloadFrom(proxy, url, data.length);
      run[`${name}_down_mbps`] = result.mbps;
      run[`${name}_down_cpu`] = result.cpuPerGiB;
      run[`${name}_down_rss`] = result.rssMiB;
    }

    async function measureVariant(variant: Variant, run: Record<string, number>) {
      const nodeFlags = [...VARIANTS[variant]];
      const up = await stack.startOurs({ dedupe: true, label: `flags-${variant}-up`, nodeFlags });
      let id: string;
      try {
        run[`${variant}_idle_rss`] = up.peakRssMiB();
        const cpuBefore = up.cpuSeconds();
        const body = freshen(data);
        const { url, ms } = await tusUpload(up.filesUrl, body, chunkSize);
        id = uploadIdOf(url);
        run[`${variant}_up_mbps`] = megabytesPerSecond(body.length, ms);
        run[`${variant}_up_cpu`] = cpuSecondsPerGiB(up.cpuSeconds() - cpuBefore, body.length);
        run[`${variant}_up_rss`] = up.peakRssMiB();
      } finally {
        await up.stop();
      }
      const down = await stack.startOurs({
        dedupe: true,
        label: `flags-${variant}-down`,
        nodeFlags,
      });
      const result = await downloadFrom(down, `${down.filesUrl}${id}`, data.length);
      run[`${variant}_down_mbps`] = result.mbps;
      run[`${variant}_down_cpu`] = result.cpuPerGiB;
      run[`${variant}_down_rss`] = result.rssMiB;
    }

    const runs: Array<Record<string, number>> = [];
    for (let index = 0; index < options.runs; index++) {
      const run: Record<string, number> = {};
      for (const contender of inRunOrder<Contender>(
        ['start', 'plain', 'bare', 'raw', 'tusd'],
        index,
      ))
        await measure[contender](run);
      runs.push(run);
      log(
        `  flags run ${index + 1}: download CPU s/GiB npm start ${run.start_down_cpu?.toFixed(2)}, Node defaults ${run.plain_down_cpu?.toFixed(2)}, bare proxy ${run.bare_down_cpu?.toFixed(2)}, raw-socket proxy ${run.raw_down_cpu?.toFixed(2)}, tusd ${run.tusd_down_cpu?.toFixed(2)}`,
      );
    }

    const flags = START_FLAGS.join(' ') || '(none)';
    const against = (
      metric: string,
      key: string,
      baseline: Row['baseline'],
      target?: Row['target'],
    ): Row => ({
      metric,
      ours: key,
      baseline,
      target,
    });
    const plain = (key: string) => ({ name: 'Node defaults', key: `plain_${key}` });
    const tusd = (key: string) => ({ name: 'tusd', key: `tusd_${key}` });
    const bare = (key: string) => ({ name: 'bare Node proxy', key: `bare_${key}` });
    return [
      resultOf(
        {
          id: 'flags',
          title: `npm start's node flags (${flags}) against Node's defaults, ${options.sizeMiB} MiB`,
          method:
            'each figure from a server process started for it with those flags (dedupe on, S3 + Redis): VmHWM once it listens, then one tus upload (CPU = utime + stime over it, peak = VmHWM after it); a fresh process for one full GET of that upload; the bare proxy is http.get(presigned URL).pipe(res) in plain Node; the raw-socket proxy reads S3 through net with 1 MiB reads and a hand-parsed head',
          rows: [
            against('download CPU s per GiB, npm start', 'start_down_cpu', plain('down_cpu')),
            against('download CPU s per GiB, npm start', 'start_down_cpu', tusd('down_cpu')),
            against('download CPU s per GiB, Node defaults', 'plain_down_cpu', tusd('down_cpu'), {
              on: 'ours',
              op: '<=',
              value: 1.5,
            }),
            against('download CPU s per GiB, Node defaults', 'plain_down_cpu', bare('down_cpu')),
            against('download CPU s per GiB, bare Node proxy', 'bare_down_cpu', tusd('down_cpu')),
            against('download CPU s per GiB, raw-socket proxy', 'raw_down_cpu', bare('down_cpu')),
            against('download CPU s per GiB, raw-socket proxy', 'raw_down_cpu', tusd('down_cpu')),
            against('download MB/s, npm start', 'start_down_mbps', tusd('down_mbps'), {
              on: 'ratio',
              op: '>=',
              value: 0.9,
            }),
            against('download MB/s, Node defaults', 'plain_down_mbps', tusd('down_mbps')),
            against('download MB/s, bare Node proxy', 'bare_down_mbps', tusd('down_mbps')),
            against('download MB/s, raw-socket proxy', 'raw_down_mbps', tusd('down_mbps')),
            against('upload CPU s per GiB, npm start', 'start_up_cpu', plain('up_cpu')),
            against('upload MB/s, npm start', 'start_up_mbps', plain('up_mbps')),
            against('idle RSS MiB, npm start', 'start_idle_rss', plain('idle_rss'), {
              on: 'ours',
              op: '<',
              value: 90,
            }),
            against('peak RSS MiB over the upload, npm start', 'start_up_rss', plain('up_rss')),
            against(
              'peak RSS MiB over the download, npm start',
              'start_down_rss',
              plain('down_rss'),
              {
                on: 'ours',
                op: '<',
                value: 150,
              },
            ),
          ],
        },
        runs,
      ),
    ];
  },
};
