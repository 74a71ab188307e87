import { describe, expect, test } from '@jest/globals';
import type { Request, Response } from 'express';
import pino from 'pino';
import type { Dedupe } from '../../dedupe/Dedupe.ts';
import { MemoryProofBudget } from '../../dedupe/proofBudget.ts';
import {
  type Clock,
  FLOOR_BYTES_PER_MS,
  MAX_FLOOR_MS,
  ProofFloor,
} from '../../dedupe/proofTiming.ts';
import { dedupeProof } from '../../dedupe/routes.ts';
import type { UploadStorage } from '../../storage/types.ts';

const DAY = 24 * 3600 * 1000;

describe('proof budget (in process)', () => {
  test('5 proofs per identity per window, then refused; others keep theirs; a new window refills', async () => {
    let now = 0;
    const budget = new MemoryProofBudget(5, 30 * DAY, () => now);
    const draws: boolean[] = [];
    for (let i = 0; i < 7; i += 1) draws.push(await budget.draw('sub:mallory'));
    expect(draws).toEqual([true, true, true, true, true, false, false]);
    expect(await budget.hasLeft('sub:mallory')).toBe(false);
    expect(await budget.hasLeft('sub:bob')).toBe(true);
    expect(await budget.draw('sub:bob')).toBe(true);
    now = 30 * DAY - 1;
    expect(await budget.hasLeft('sub:mallory')).toBe(false);
    now = 30 * DAY;
    expect(await budget.hasLeft('sub:mallory')).toBe(true);
    expect(await budget.draw('sub:mallory')).toBe(true);
  });
});

describe('proof time floor', () => {
  // [minimum ms, claimed length, deadline after arrival in ms]
  const rows: Array<[number, number, number]> = [
    [100, 1, 101],
    [100, 1024 * 1024, 100 + Math.ceil((1024 * 1024) / FLOOR_BYTES_PER_MS)],
    [100, 64 * 1024 * 1024, 1100],
    [0, 64 * 1024 * 1024 * 10, 10_000],
    // The per-byte part stops at a minute, however long the claimed length.
    [100, 64 * 1024 * 1024 * 60, 60_100],
    [100, Number.MAX_SAFE_INTEGER, 100 + MAX_FLOOR_MS],
  ];
  test.each(rows)('minimum %d ms, %d bytes: answered %d ms after arrival', (min, size, ms) => {
    expect(new ProofFloor(min).deadlineOf(1000, size)).toBe(1000 + ms);
  });

  /** A clock that moves only when the code under test works or sleeps. */
  function fakeClock() {
    const clock = {
      t: 5000,
      slept: [] as number[],
      now: () => clock.t,
      async sleep(ms: number) {
        clock.slept.push(clock.t + ms);
        clock.t += ms;
      },
    };
    return clock satisfies Clock;
  }

  /** POST /files/:id/proof answered by a dedupe whose prove() takes `workMs` and ends `outcome`. */
  async function answerTime(outcome: 'linked' | 'refused', workMs: number) {
    const clock = fakeClock();
    const dedupe = {
      async prove() {
        clock.t += workMs;
        return { outcome, size: 1024 * 1024 };
      },
    } as unknown as Dedupe;
    const route = dedupeProof({
      dedupe,
      storage: { datastore: { getUpload: async () => undefined } } as unknown as UploadStorage,
      logger: pino({ level: 'silent' }),
      maxSize: 0,
      urlFor: () => '',
      identityOf: () => 'ip:127.0.0.1',
      proofFloor: new ProofFloor(100, clock),
    });
    let answeredAt = -1;
    let status = 0;
    const res = {
      status(code: number) {
        status = code;
        answeredAt = clock.t;
        return res;
      },
      set: () => res,
      json: () => res,
      end: () => res,
    };
    const req = { params: { id: 'x' }, body: { answer: '0'.repeat(64) } };
    await route(req as unknown as Request, res as unknown as Response, () => undefined);
    return { status, answeredAt, slept: clock.slept };
  }

  test('nothing stored, stored and read, budget spent, right answer: one deadline for all', async () => {
    const deadline = new ProofFloor(100).deadlineOf(5000, 1024 * 1024);
    const answers = [
      // Nothing with the claimed hash (or the budget spent): refused at once.
      await answerTime('refused', 0),
      // Stored content read whole, then refused.
      await answerTime('refused', 40),
      await answerTime('linked', 40),
    ];
    expect(answers.map((a) => a.status)).toEqual([403, 403, 204]);
    for (const answer of answers) {
      expect(answer.answeredAt).toBe(deadline);
      expect(answer.slept).toEqual([deadline]);
    }
  });

  test('work that overruns the floor is answered when it ends, without sleeping', async () => {
    const answer = await answerTime('refused', 10_000);
    expect(answer.slept).toEqual([]);
    expect(answer.answeredAt).toBe(15_000);
  });
});
