import { createHash } from 'node:crypto';
import { tusUpload } from '../clients.ts';
import { randomData } from '../content.ts';
import { resultOf, type Scenario } from '../scenario.ts';
import { MIB, percentile } from '../stats.ts';

const b64 = (value: string) => Buffer.from(value).toString('base64');
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
/** The floor the server is started with; the per-byte part adds 16 ms for 1 MiB. */
const FLOOR_MS = 100;

/**
 * Scenario 7: how long a refused proof of ownership takes when content with the claimed hash is
 * stored (the server reads it whole) and when nothing is (nothing to read). The time floor
 * should make the two the same.
 */
export const proofTimingScenario: Scenario = {
  id: 'proof-timing',
  async run({ options, stack, log }) {
    const size = MIB;
    const stored = randomData(size);
    const unknown = randomData(size);
    const ours = await stack.startOurs({
      dedupe: true,
      label: 'proof-timing',
      // One address makes every proof: the budget is not what is measured.
      env: {
        DEDUPE_PROOF: 'on',
        DEDUPE_PROOF_BUDGET: '9999',
        DEDUPE_PROOF_FLOOR_MS: String(FLOOR_MS),
      },
    });
    /** A creation claiming the content's sha256, then a wrong proof; the proof's time. */
    const refusedProof = async (content: Buffer) => {
      const created = await fetch(ours.filesUrl, {
        method: 'POST',
        headers: {
          'Tus-Resumable': '1.0.0',
          'Upload-Length': String(size),
          'Upload-Metadata': `filename ${b64('p.bin')},sha256 ${b64(sha256(content))}`,
        },
      });
      await created.arrayBuffer();
      const url = new URL(created.headers.get('location') ?? '', ours.filesUrl).toString();
      const started = performance.now();
      const res = await fetch(`${url}/proof`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ answer: '0'.repeat(64) }),
      });
      await res.arrayBuffer();
      return { status: res.status, ms: performance.now() - started };
    };

    const runs: Array<Record<string, number>> = [];
    // Proofs per kind per run: each waits out the floor, so fewer than the creations of dedupe-hit.
    const requests = Math.max(10, Math.floor(options.dedupeRequests / 4));
    try {
      await tusUpload(ours.filesUrl, stored, size);
      for (let i = 0; i < 5; i++) {
        await refusedProof(stored);
        await refusedProof(unknown);
      }
      for (let index = 0; index < options.runs; index++) {
        const times = { stored: [] as number[], unknown: [] as number[] };
        let errors = 0;
        for (let i = 0; i < requests; i++) {
          // Interleaved, alternating who goes first.
          for (const kind of i % 2 === 0
            ? (['stored', 'unknown'] as const)
            : (['unknown', 'stored'] as const)) {
            const r = await refusedProof(kind === 'stored' ? stored : unknown);
            if (r.status === 403) times[kind].push(r.ms);
            else errors += 1;
          }
        }
        const run = {
          stored_p50_ms: percentile(times.stored, 50),
          stored_p99_ms: percentile(times.stored, 99),
          unknown_p50_ms: percentile(times.unknown, 50),
          unknown_p99_ms: percentile(times.unknown, 99),
          errors,
        };
        runs.push(run);
        log(
          `  proof-timing run ${index + 1}: stored p50 ${run.stored_p50_ms.toFixed(1)} ms p99 ${run.stored_p99_ms.toFixed(1)} ms, unknown p50 ${run.unknown_p50_ms.toFixed(1)} ms p99 ${run.unknown_p99_ms.toFixed(1)} ms`,
        );
      }
    } finally {
      await ours.stop();
    }

    const unknownRow = (key: string) => ({ name: 'proof, nothing stored', key: `unknown_${key}` });
    return [
      resultOf(
        {
          id: 'proof-timing',
          title: 'refused proof of ownership: stored content vs none',
          method: `POST /files/:id/proof with a wrong answer for a 1 MiB claim (DEDUPE_PROOF_FLOOR_MS=${FLOOR_MS}): content with the claimed sha256 stored (read whole, then refused) vs nothing stored (refused without a read); ${requests} of each per run, interleaved`,
          rows: [
            {
              metric: 'p50 ms',
              ours: 'stored_p50_ms',
              baseline: unknownRow('p50_ms'),
              // Indistinguishable: within 5 % of each other.
              target: { on: 'ratio', op: '<=', value: 1.05 },
            },
            { metric: 'p99 ms', ours: 'stored_p99_ms', baseline: unknownRow('p99_ms') },
            { metric: 'errors (all runs)', ours: 'errors', aggregate: 'sum' },
          ],
        },
        runs,
      ),
    ];
  },
};
