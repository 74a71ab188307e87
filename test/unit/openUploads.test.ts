import { describe, expect, test } from '@jest/globals';
import { ConfigError, loadConfig } from '../../server/config.ts';
import {
  carriesUploadBody,
  OpenUploadCounter,
  type OpenUploadSlot,
} from '../../server/openUploads.ts';

/** One step of a counter's life: take a slot for a key, or release the n-th slot taken. */
type Step = ['acquire', string, 'ok' | 'identity' | 'total'] | ['release', number];

/** Runs the steps and answers with what the counter holds after them: total, per key, keys. */
function run(caps: { perKey: number; total: number }, steps: Step[]) {
  const counter = new OpenUploadCounter(caps);
  const slots: OpenUploadSlot[] = [];
  for (const step of steps) {
    if (step[0] === 'release') {
      slots[step[1]]?.release();
      continue;
    }
    const [, key, expected] = step;
    const taken = counter.acquire(key);
    expect({ key, outcome: 'slot' in taken ? 'ok' : taken.refused }).toEqual({
      key,
      outcome: expected,
    });
    if ('slot' in taken) slots.push(taken.slot);
  }
  return { counter, size: counter.size, keys: counter.keys };
}

describe('OpenUploadCounter', () => {
  // [case, caps, steps, open uploads in total after them, keys still held]
  const rows: Array<[string, { perKey: number; total: number }, Step[], number, number]> = [
    ['a first slot is given', { perKey: 2, total: 5 }, [['acquire', 'a', 'ok']], 1, 1],
    [
      'a key over its cap is refused as the identity’s',
      { perKey: 2, total: 5 },
      [
        ['acquire', 'a', 'ok'],
        ['acquire', 'a', 'ok'],
        ['acquire', 'a', 'identity'],
      ],
      2,
      1,
    ],
    [
      'another key has a cap of its own',
      { perKey: 2, total: 5 },
      [
        ['acquire', 'a', 'ok'],
        ['acquire', 'a', 'ok'],
        ['acquire', 'a', 'identity'],
        ['acquire', 'b', 'ok'],
      ],
      3,
      2,
    ],
    [
      'the total refuses every key once it is reached',
      { perKey: 3, total: 4 },
      [
        ['acquire', 'a', 'ok'],
        ['acquire', 'a', 'ok'],
        ['acquire', 'b', 'ok'],
        ['acquire', 'c', 'ok'],
        ['acquire', 'd', 'total'],
        ['acquire', 'a', 'total'],
      ],
      4,
      3,
    ],
    [
      'a key at its cap is told so even when the total is reached too',
      { perKey: 2, total: 2 },
      [
        ['acquire', 'a', 'ok'],
        ['acquire', 'a', 'ok'],
        ['acquire', 'a', 'identity'],
        ['acquire', 'b', 'total'],
      ],
      2,
      1,
    ],
    [
      'a released slot can be taken again',
      { perKey: 1, total: 5 },
      [
        ['acquire', 'a', 'ok'],
        ['acquire', 'a', 'identity'],
        ['release', 0],
        ['acquire', 'a', 'ok'],
      ],
      1,
      1,
    ],
    [
      'releasing twice releases once',
      { perKey: 2, total: 5 },
      [
        ['acquire', 'a', 'ok'],
        ['acquire', 'a', 'ok'],
        ['release', 0],
        ['release', 0],
        ['release', 0],
      ],
      1,
      1,
    ],
    [
      'a slot released twice frees no place of another key',
      { perKey: 5, total: 2 },
      [
        ['acquire', 'a', 'ok'],
        ['acquire', 'b', 'ok'],
        ['release', 0],
        ['release', 0],
        ['acquire', 'c', 'ok'],
        ['acquire', 'd', 'total'],
      ],
      2,
      2,
    ],
    [
      'a key holding nothing is forgotten',
      { perKey: 2, total: 5 },
      [
        ['acquire', 'a', 'ok'],
        ['acquire', 'b', 'ok'],
        ['release', 0],
        ['release', 1],
      ],
      0,
      0,
    ],
    [
      'a cap of 0 is no cap',
      { perKey: 0, total: 0 },
      Array.from({ length: 50 }, (): Step => ['acquire', 'a', 'ok']),
      50,
      1,
    ],
    [
      'a per-key cap alone',
      { perKey: 1, total: 0 },
      [
        ['acquire', 'a', 'ok'],
        ['acquire', 'a', 'identity'],
        ['acquire', 'b', 'ok'],
      ],
      2,
      2,
    ],
    [
      'a total alone',
      { perKey: 0, total: 2 },
      [
        ['acquire', 'a', 'ok'],
        ['acquire', 'a', 'ok'],
        ['acquire', 'b', 'total'],
      ],
      2,
      1,
    ],
  ];

  test.each(rows)('%s', (_case, caps, steps, size, keys) => {
    const after = run(caps, steps);
    expect({ size: after.size, keys: after.keys }).toEqual({ size, keys });
  });

  test('countOf tells what one key holds, 0 once released', () => {
    const counter = new OpenUploadCounter({ perKey: 3, total: 3 });
    const first = counter.acquire('a');
    counter.acquire('a');
    expect(counter.countOf('a')).toBe(2);
    expect(counter.countOf('b')).toBe(0);
    if ('slot' in first) first.slot.release();
    expect(counter.countOf('a')).toBe(1);
  });
});

describe('carriesUploadBody', () => {
  // [method (as decided at the edge), headers, counted]
  const rows: Array<[string, Record<string, string>, boolean]> = [
    ['PATCH', { 'content-length': '10' }, true],
    ['PATCH', { 'content-length': '0' }, true],
    ['PATCH', { 'transfer-encoding': 'chunked' }, true],
    ['PATCH', {}, true],
    ['POST', { 'content-length': '10' }, true],
    ['POST', { 'transfer-encoding': 'chunked' }, true],
    ['POST', { 'content-length': '0' }, false],
    ['POST', {}, false],
    ['POST', { 'content-length': 'x' }, false],
    ['HEAD', { 'content-length': '10' }, false],
    ['GET', { 'transfer-encoding': 'chunked' }, false],
    ['OPTIONS', { 'content-length': '10' }, false],
    ['DELETE', { 'content-length': '10' }, false],
  ];

  test.each(rows)('%s with %p counts: %p', (method, headers, counted) => {
    expect(carriesUploadBody({ method, get: (name) => headers[name.toLowerCase()] })).toBe(counted);
  });
});

describe('MAX_OPEN_UPLOADS_PER_CLIENT and MAX_OPEN_UPLOADS', () => {
  test('default to 32 per client and 1000 in total', () => {
    expect(loadConfig({}).maxOpenUploads).toEqual({ perClient: 32, total: 1000 });
  });

  test('0 is accepted (no cap)', () => {
    const config = loadConfig({ MAX_OPEN_UPLOADS_PER_CLIENT: '0', MAX_OPEN_UPLOADS: '0' });
    expect(config.maxOpenUploads).toEqual({ perClient: 0, total: 0 });
  });

  test.each([
    [
      { MAX_OPEN_UPLOADS_PER_CLIENT: 'many' },
      /^MAX_OPEN_UPLOADS_PER_CLIENT must be a whole number/,
    ],
    [{ MAX_OPEN_UPLOADS_PER_CLIENT: '-1' }, /^MAX_OPEN_UPLOADS_PER_CLIENT .*"-1"/],
    [{ MAX_OPEN_UPLOADS: '2.5' }, /^MAX_OPEN_UPLOADS must be a whole number .*"2\.5"/],
  ])('%p is refused with one line naming it', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });
});
