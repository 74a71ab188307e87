import { createHash } from 'node:crypto';
import { SignJWT } from 'jose';
import { httpRequest, keepAliveAgent, tusUpload } from '../clients.ts';
import { randomData } from '../content.ts';
import { resultOf, type Scenario } from '../scenario.ts';
import { MIB, percentile } from '../stats.ts';

const b64 = (value: string) => Buffer.from(value).toString('base64');
const SECRET = 'bench-secret-0123456789-abcdefghijklmnop';

/** Scenario 6: a creation POST that dedupe answers finished, against one that tus creates. */
export const dedupeHitScenario: Scenario = {
  id: 'dedupe-hit',
  async run({ options, stack, log }) {
    const size = MIB;
    const known = randomData(size);
    const sha256 = createHash('sha256').update(known).digest('hex');
    // A hit is content the requester uploaded itself: the server needs to know who asks.
    const ours = await stack.startOurs({ dedupe: true, label: 'dedupe-hit', authSecret: SECRET });
    const auth = {
      Authorization: `Bearer ${await new SignJWT({})
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject('bench')
        .setExpirationTime('2h')
        .sign(new TextEncoder().encode(SECRET))}`,
    };
    const agent = keepAliveAgent(1);
    const post = (metadata: string) =>
      httpRequest(ours.filesUrl, agent, {
        method: 'POST',
        headers: {
          ...auth,
          'Tus-Resumable': '1.0.0',
          'Upload-Length': String(size),
          'Upload-Metadata': metadata,
        },
      });
    const hitMetadata = `filename ${b64('known.bin')},sha256 ${b64(sha256)}`;
    const normalMetadata = `filename ${b64('new.bin')}`;

    const runs: Array<Record<string, number>> = [];
    try {
      // The server indexes the digest it computed while storing these bytes.
      await tusUpload(ours.filesUrl, known, size, { headers: auth });
      const first = await post(hitMetadata);
      if (first.status !== 201 || first.headers['upload-offset'] !== String(size))
        throw new Error(
          `dedupe did not hit: ${first.status}, offset ${first.headers['upload-offset']}`,
        );
      // Warm-up, not measured.
      for (let i = 0; i < 10; i++) {
        await post(hitMetadata);
        await post(normalMetadata);
      }

      for (let index = 0; index < options.runs; index++) {
        const hits: number[] = [];
        const normals: number[] = [];
        let hitErrors = 0;
        let normalErrors = 0;
        for (let i = 0; i < options.dedupeRequests; i++) {
          // Interleaved, alternating who goes first, so both kinds see the same moments.
          for (const kind of i % 2 === 0 ? ['hit', 'normal'] : ['normal', 'hit']) {
            if (kind === 'hit') {
              const r = await post(hitMetadata);
              const complete = r.status === 201 && r.headers['upload-offset'] === String(size);
              if (complete) hits.push(r.ms);
              else hitErrors += 1;
            } else {
              const r = await post(normalMetadata);
              if (r.status === 201) normals.push(r.ms);
              else normalErrors += 1;
            }
          }
        }
        const run = {
          hit_p50_ms: percentile(hits, 50),
          hit_p99_ms: percentile(hits, 99),
          hit_errors: hitErrors,
          normal_p50_ms: percentile(normals, 50),
          normal_p99_ms: percentile(normals, 99),
          normal_errors: normalErrors,
        };
        runs.push(run);
        log(
          `  dedupe-hit run ${index + 1}: hit p50 ${run.hit_p50_ms.toFixed(1)} ms p99 ${run.hit_p99_ms.toFixed(1)} ms, normal p50 ${run.normal_p50_ms.toFixed(1)} ms p99 ${run.normal_p99_ms.toFixed(1)} ms`,
        );
      }
    } finally {
      agent.destroy();
      await ours.stop();
    }

    const normal = (key: string) => ({ name: 'normal creation POST', key: `normal_${key}` });
    return [
      resultOf(
        {
          id: 'dedupe-hit',
          title: 'dedupe hit: creation POST → complete',
          method: `POST /files/ with Upload-Length 1 MiB and the sha256 of stored content (answered 201 with Upload-Offset = length) vs the same POST without a hash (multipart upload and .info created); ${options.dedupeRequests} of each per run, one at a time, interleaved, keep-alive`,
          rows: [
            {
              metric: 'p50 ms',
              ours: 'hit_p50_ms',
              baseline: normal('p50_ms'),
              target: { on: 'ours', op: '<', value: 10 },
            },
            { metric: 'p99 ms', ours: 'hit_p99_ms', baseline: normal('p99_ms') },
            {
              metric: 'errors (all runs)',
              ours: 'hit_errors',
              baseline: normal('errors'),
              aggregate: 'sum',
            },
          ],
        },
        runs,
      ),
    ];
  },
};
