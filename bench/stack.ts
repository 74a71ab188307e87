import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { type Services, startServices } from '../test/harness/services.ts';
import { s3ClientFor } from '../test/harness/stack.ts';
import { type BenchServer, startBareProxy, startOurs, startTusd } from './servers.ts';

/** One bucket per server, so no two of them ever see each other's objects. */
export const BUCKETS = {
  ours: 'bench-ours',
  oursNoDedupe: 'bench-ours-nodedupe',
  direct: 'bench-direct',
  tusd: 'bench-tusd',
} as const;

/** MinIO, Redis and a way to start each server under test on them. */
export type Stack = {
  services: Services;
  /** Direct S3 access, configured as our server configures its own client. */
  s3: S3Client;
  startOurs(options: {
    dedupe: boolean;
    label: string;
    authSecret?: string;
    env?: Record<string, string>;
    /** Node flags instead of npm start's. */
    nodeFlags?: string[];
  }): Promise<BenchServer>;
  startBareProxy(kind?: 'http' | 'raw'): Promise<BenchServer>;
  startTusd(): Promise<BenchServer>;
  stop(): Promise<void>;
};

export type StackOptions = {
  tusdBinary: string;
  partSize: number;
  /** Set: our server runs under `node --cpu-prof`, one profile per process in this folder. */
  profileDir?: string;
};

export async function startStack(options: StackOptions): Promise<Stack> {
  // Local MinIO and Redis even where Docker answers: the versions reported are the binaries run.
  process.env.TEST_SERVICES = 'local';
  const services = await startServices();
  const s3 = s3ClientFor(services, {
    // As in server/storage/s3storage.ts, so the direct baseline does the same work per request.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  for (const bucket of Object.values(BUCKETS)) {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  }
  if (options.profileDir) mkdirSync(options.profileDir, { recursive: true });

  const running = new Set<BenchServer>();
  const track = (server: BenchServer): BenchServer => {
    running.add(server);
    const stop = server.stop;
    return {
      ...server,
      stop: async () => {
        running.delete(server);
        await stop();
      },
    };
  };
  let profiles = 0;
  const credentials = {
    s3Endpoint: services.s3Endpoint,
    s3AccessKeyId: services.s3AccessKeyId,
    s3SecretAccessKey: services.s3SecretAccessKey,
    partSize: options.partSize,
  };

  return {
    services,
    s3,
    async startOurs({ dedupe, label, authSecret, env, nodeFlags }) {
      profiles += 1;
      const server = await startOurs({
        ...credentials,
        authSecret,
        redisUrl: services.redisUrl,
        bucket: dedupe ? BUCKETS.ours : BUCKETS.oursNoDedupe,
        dedupe,
        env,
        nodeFlags,
        cpuProfileDir: options.profileDir
          ? path.join(options.profileDir, `${String(profiles).padStart(2, '0')}-${label}`)
          : undefined,
      });
      return track(server);
    },
    async startBareProxy(kind) {
      return track(await startBareProxy(kind));
    },
    async startTusd() {
      return track(
        await startTusd({ ...credentials, binary: options.tusdBinary, bucket: BUCKETS.tusd }),
      );
    },
    async stop() {
      await Promise.allSettled([...running].map((server) => server.stop()));
      s3.destroy();
      await services.stop();
    },
  };
}
