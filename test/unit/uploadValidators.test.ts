import { describe, expect, test } from '@jest/globals';
import { Upload } from '@tus/utils';
import {
  type ContentFacts,
  FINISHED_KEY,
  finishedNow,
  stampFinished,
  uploadValidators,
} from '../../storage/types.ts';

const SHARED: ContentFacts = {
  lastModified: new Date('2024-01-01T10:00:00.000Z'),
  identity: 'owner:100:1704103200000',
};
const FINISHED = '2024-03-05T12:34:56.789Z';
const CREATED = '2024-03-05T12:30:00.000Z';

function record(id: string, options: { finished?: string; owner?: string } = {}): Upload {
  return new Upload({
    id,
    size: 100,
    offset: 100,
    creation_date: CREATED,
    metadata: options.finished ? { [FINISHED_KEY]: options.finished } : {},
    storage: options.owner ? { type: 'file', path: options.owner } : undefined,
  });
}

describe('uploadValidators: an upload answers with its own validators, not those of shared bytes', () => {
  // [case, id, record, content key, Last-Modified]
  const rows: Array<[string, string, Upload, string, string]> = [
    ['finished with its own bytes', 'a', record('a', { finished: FINISHED }), 'a', FINISHED],
    ['finished sharing bytes', 'b', record('b', { finished: FINISHED, owner: 'a' }), 'a', FINISHED],
    [
      'no finish time, its own bytes: the content is its own',
      'a',
      record('a'),
      'a',
      '2024-01-01T10:00:00.000Z',
    ],
    [
      'no finish time, sharing bytes: its own creation',
      'b',
      record('b', { owner: 'a' }),
      'a',
      CREATED,
    ],
  ];
  test.each(rows)('%s', (_case, id, stored, key, lastModified) => {
    const validators = uploadValidators(id, 100, stored, key, SHARED);
    expect(validators.lastModified.toISOString()).toBe(lastModified);
    expect(validators.etag).toMatch(/^"[0-9a-f]{32}"$/);
  });

  test('two uploads finished at the same time, one sharing the other’s bytes: different ETags', () => {
    const own = uploadValidators('a', 100, record('a', { finished: FINISHED }), 'a', SHARED);
    const linked = uploadValidators(
      'b',
      100,
      record('b', { finished: FINISHED, owner: 'a' }),
      'a',
      SHARED,
    );
    expect(linked.etag).not.toBe(own.etag);
  });

  test('with a finish time, the ETag does not depend on where the bytes live', () => {
    const stored = record('b', { finished: FINISHED });
    const asOwn = uploadValidators('b', 100, stored, 'b', SHARED);
    const asLinked = uploadValidators('b', 100, stored, 'a', { ...SHARED, identity: 'other' });
    expect(asLinked).toEqual(asOwn);
  });

  test('the ETag changes with the size and the finish time (an id used again)', () => {
    const first = uploadValidators('a', 100, record('a', { finished: FINISHED }), 'a', SHARED);
    const later = '2024-03-05T12:34:56.790Z';
    expect(uploadValidators('a', 100, record('a', { finished: later }), 'a', SHARED).etag).not.toBe(
      first.etag,
    );
    expect(
      uploadValidators('a', 101, record('a', { finished: FINISHED }), 'a', SHARED).etag,
    ).not.toBe(first.etag);
  });

  test('a finish time that is not a date is ignored', () => {
    const validators = uploadValidators(
      'b',
      100,
      record('b', { finished: 'soon', owner: 'a' }),
      'a',
      SHARED,
    );
    expect(validators.lastModified.toISOString()).toBe(CREATED);
  });
});

describe('finish times', () => {
  test('stampFinished records the time; finishedNow keeps one already there', () => {
    const at = new Date(FINISHED);
    const stamped = stampFinished(record('a'), at);
    expect(stamped.metadata?.[FINISHED_KEY]).toBe(FINISHED);
    expect(finishedNow(stamped).metadata?.[FINISHED_KEY]).toBe(FINISHED);
    const fresh = finishedNow(record('a')).metadata?.[FINISHED_KEY] ?? '';
    expect(Math.abs(Date.parse(fresh) - Date.now())).toBeLessThan(5000);
  });
});
