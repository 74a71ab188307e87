import { describe, expect, test } from '@jest/globals';
import { clientKeyOf } from '../../server/rateLimit.ts';

describe('clientKeyOf', () => {
  // [client address, rate-limit key]
  const rows: Array<[string, string]> = [
    ['127.0.0.1', '127.0.0.1'],
    ['203.0.113.9', '203.0.113.9'],
    // IPv4-mapped IPv6 is the IPv4 address, in either notation.
    ['::ffff:127.0.0.1', '127.0.0.1'],
    ['::FFFF:203.0.113.9', '203.0.113.9'],
    ['0:0:0:0:0:ffff:cb00:7109', '203.0.113.9'],
    // IPv6: its /64, however it is written.
    ['2001:db8:1:2:aaaa::1', '2001:db8:1:2::/64'],
    ['2001:db8:1:2:bbbb::2', '2001:db8:1:2::/64'],
    ['2001:0db8:0001:0002:ffff:ffff:ffff:ffff', '2001:db8:1:2::/64'],
    ['2001:DB8:1:2::', '2001:db8:1:2::/64'],
    ['2001:db8:1:3::1', '2001:db8:1:3::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['2001:db8:0:0:1::', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['::', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    // Not a mapped address: ::ffff:0:0/96 only.
    ['::ffff:0:1:7f00:1', '0:0:0:ffff::/64'],
    ['64:ff9b::127.0.0.1', '64:ff9b:0:0::/64'],
    // No IP address: kept as it is.
    ['unknown', 'unknown'],
    ['', ''],
  ];

  test.each(rows)('%p -> %p', (address, key) => {
    expect(clientKeyOf(address)).toBe(key);
  });

  test('two addresses of one /64 share a key, the next /64 does not', () => {
    expect(clientKeyOf('2001:db8:1:2:aaaa::1')).toBe(clientKeyOf('2001:db8:1:2:bbbb::2'));
    expect(clientKeyOf('2001:db8:1:3::1')).not.toBe(clientKeyOf('2001:db8:1:2::1'));
  });
});
