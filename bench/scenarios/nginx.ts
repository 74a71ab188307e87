import { type NginxOptions, startNginx } from '../../test/harness/nginx.ts';
import { tusUpload } from '../clients.ts';
import { freshen } from '../content.ts';
import { type BenchContext, inRunOrder, resultOf, type Scenario } from '../scenario.ts';
import type { BenchServer } from '../servers.ts';
import { cpuSecondsPerGiB, MIB, megabytesPerSecond } from '../stats.ts';

type Contender = 'one' | 'hash' | 'rr';
type Measured = { mbps: number; cpuPerGiB: number };

/** The upload row's upload (same file size and chunks) to `endpoint`, with `servers`' CPU over it. */
async function timedUpload(
  context: BenchContext,
  endpoint: string,
  servers: BenchServer[],
): Promise<Measured> {
  const cpu = () => servers.reduce((sum, server) => sum + server.cpuSeconds(), 0);
  const cpuBefore = cpu();
  const data = freshen(context.data);
  const { ms } = await tusUpload(endpoint, data, context.options.chunkMiB * MIB);
  return {
    mbps: megabytesPerSecond(data.length, ms),
    cpuPerGiB: cpuSecondsPerGiB(cpu() - cpuBefore, data.length),
  };
}

/** Two fresh instances on the same MinIO bucket and Redis, deploy/nginx.conf in front. */
async function throughNginx(
  context: BenchContext,
  balancing: NginxOptions['balancing'],
  label: string,
): Promise<Measured> {
  const instances: BenchServer[] = [];
  try {
    for (const name of ['a', 'b']) {
      instances.push(await context.stack.startOurs({ dedupe: true, label: `${label}-${name}` }));
    }
    const nginx = await startNginx({
      upstreams: instances.map((instance) => instance.filesUrl.replace(/\/files\/$/, '')),
      balancing,
    });
    try {
      return await timedUpload(context, `${nginx.url}/files/`, instances);
    } finally {
      await nginx.stop();
    }
  } finally {
    await Promise.all(instances.map((instance) => instance.stop()));
  }
}

/**
 * The documented deployment: the upload row's file sent through nginx (deploy/nginx.conf) to two
 * instances, beside the same upload straight to one instance, and beside nginx balancing
 * round-robin, which is what its consistent hashing on the upload's path is there to avoid.
 */
export const nginxScenario: Scenario = {
  id: 'nginx',
  async run(context) {
    const { options, stack, log } = context;
    const measure: Record<Contender, () => Promise<Measured>> = {
      async one() {
        const server = await stack.startOurs({ dedupe: true, label: 'nginx-one' });
        try {
          return await timedUpload(context, server.filesUrl, [server]);
        } finally {
          await server.stop();
        }
      },
      hash: () => throughNginx(context, 'as-deployed', 'nginx-hash'),
      rr: () => throughNginx(context, 'round-robin', 'nginx-rr'),
    };

    const runs: Array<Record<string, number>> = [];
    for (let index = 0; index < options.runs; index++) {
      const run: Record<string, number> = {};
      for (const contender of inRunOrder<Contender>(['one', 'hash', 'rr'], index)) {
        const { mbps, cpuPerGiB } = await measure[contender]();
        run[`${contender}_mbps`] = mbps;
        run[`${contender}_cpu_s_per_gib`] = cpuPerGiB;
      }
      runs.push(run);
      log(
        `  nginx run ${index + 1}: one instance ${run.one_mbps?.toFixed(0)}, nginx ${run.hash_mbps?.toFixed(0)}, round-robin ${run.rr_mbps?.toFixed(0)} MB/s`,
      );
    }

    const size = `${options.sizeMiB} MiB`;
    const one = (key: string) => ({ name: 'one instance, straight', key: `one_${key}` });
    const method = `tus-js-client, ${options.chunkMiB} MiB chunks (as the upload row), through nginx (deploy/nginx.conf, rendered for loopback by test/harness/nginx.ts) to two fresh instances on one bucket and one Redis, dedupe on; baseline: the same upload straight to one fresh instance in the same run; CPU = utime + stime of the instances (not nginx) / GiB`;
    return [
      resultOf(
        {
          id: 'nginx',
          title: `upload one ${size} file through nginx, two instances`,
          method: `${method}; nginx as deployed: consistent hashing on /files/<id>, so every PATCH of the upload reaches the instance holding its running hash`,
          rows: [
            { metric: 'MB/s', ours: 'hash_mbps', baseline: one('mbps') },
            {
              metric: 'server CPU s per GiB',
              ours: 'hash_cpu_s_per_gib',
              baseline: one('cpu_s_per_gib'),
            },
          ],
        },
        runs,
      ),
      resultOf(
        {
          id: 'nginx-round-robin',
          title: `upload one ${size} file through nginx, two instances, round-robin`,
          method: `${method}; the \`hash\` line removed: PATCHes alternate between the instances, and the one that finishes the upload reads it back to hash it`,
          rows: [
            { metric: 'MB/s', ours: 'rr_mbps', baseline: one('mbps') },
            {
              metric: 'MB/s',
              ours: 'rr_mbps',
              baseline: { name: 'nginx, consistent hashing', key: 'hash_mbps' },
            },
            {
              metric: 'server CPU s per GiB',
              ours: 'rr_cpu_s_per_gib',
              baseline: { name: 'nginx, consistent hashing', key: 'hash_cpu_s_per_gib' },
            },
          ],
        },
        runs,
      ),
    ];
  },
};
