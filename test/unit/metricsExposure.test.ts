import { describe, expect, test } from '@jest/globals';
import { carriesToken, isLoopbackName } from '../../metrics/exposure.ts';

describe('the metrics token', () => {
  const token = 't'.repeat(40);
  test.each([
    [`Bearer ${token}`, true],
    [`bearer ${token}`, true],
    [`Bearer   ${token}  `, true],
    [`Bearer ${token}x`, false],
    [`Bearer ${token.slice(1)}`, false],
    [token, false],
    [`Basic ${token}`, false],
    ['Bearer ', false],
    ['', false],
    [undefined, false],
  ])('Authorization %p carries it: %p', (header, expected) => {
    expect(carriesToken(header, token)).toBe(expected);
  });
});

describe('loopback names (the metrics listener on loopback answers only these Host names)', () => {
  test.each([
    ['127.0.0.1', true],
    ['127.8.9.10', true],
    ['localhost', true],
    ['LOCALHOST', true],
    ['metrics.localhost', true],
    ['[::1]', true],
    ['::1', true],
    ['::ffff:127.0.0.1', true],
    ['0.0.0.0', false],
    ['10.0.0.5', false],
    ['evil.example', false],
    ['localhost.evil.example', false],
    ['127.0.0.1.nip.io', false],
    ['', false],
    [undefined, false],
  ])('%p: %p', (name, expected) => {
    expect(isLoopbackName(name)).toBe(expected);
  });
});
