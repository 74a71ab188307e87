import { describe, expect, test } from '@jest/globals';
import { createUrlBuilder } from '../../server/publicUrl.ts';

type Options = { publicUrl?: string; trustProxy: boolean };
type Headers = Record<string, string | null>;

const PATH = '/files/0123456789abcdef0123456789abcdef';
const DIRECT: Options = { trustProxy: false };
const PROXIED: Options = { trustProxy: true };
const PUBLIC: Options = { publicUrl: 'https://u.example.com', trustProxy: false };
const PUBLIC_PROXIED: Options = { publicUrl: 'https://u.example.com/base', trustProxy: true };

describe('createUrlBuilder', () => {
  // [case, options, request headers (lower-case names), absolute URL or path]
  const rows: Array<[string, Options, Headers, string]> = [
    // PUBLIC_URL wins over whatever the request says.
    ['PUBLIC_URL, no headers', PUBLIC, {}, `https://u.example.com${PATH}`],
    [
      'PUBLIC_URL over Host',
      PUBLIC,
      { host: 'other.example:8080' },
      `https://u.example.com${PATH}`,
    ],
    [
      'PUBLIC_URL over an invalid Host',
      PUBLIC,
      { host: 'bad host' },
      `https://u.example.com${PATH}`,
    ],
    [
      'PUBLIC_URL with a path, over trusted X-Forwarded-*',
      PUBLIC_PROXIED,
      { host: 'internal:8080', 'x-forwarded-proto': 'http', 'x-forwarded-host': 'proxy.example' },
      `https://u.example.com/base${PATH}`,
    ],

    // The request's Host.
    ['Host name', DIRECT, { host: 'example.com' }, `http://example.com${PATH}`],
    ['Host with port', DIRECT, { host: 'example.com:8080' }, `http://example.com:8080${PATH}`],
    ['IPv4 Host', DIRECT, { host: '127.0.0.1:8080' }, `http://127.0.0.1:8080${PATH}`],
    ['IPv6 literal Host', DIRECT, { host: '[::1]:8080' }, `http://[::1]:8080${PATH}`],
    [
      'IPv6 literal Host without port',
      DIRECT,
      { host: '[2001:db8::1]' },
      `http://[2001:db8::1]${PATH}`,
    ],
    ['Host with surrounding space', DIRECT, { host: ' example.com ' }, `http://example.com${PATH}`],

    // A Host that is no host gives the path alone.
    ['no Host', DIRECT, {}, PATH],
    ['Host null (Fetch Headers)', DIRECT, { host: null }, PATH],
    ['empty Host', DIRECT, { host: '' }, PATH],
    ['Host with a space', DIRECT, { host: 'exa mple.com' }, PATH],
    ['Host with a path', DIRECT, { host: 'evil.example/x' }, PATH],
    ['Host with userinfo', DIRECT, { host: 'user@evil.example' }, PATH],
    ['Host with a query', DIRECT, { host: 'evil.example?x' }, PATH],
    ['Host with a fragment', DIRECT, { host: 'evil.example#x' }, PATH],
    ['Host with a six-digit port', DIRECT, { host: 'example.com:123456' }, PATH],
    ['Host with an empty port', DIRECT, { host: 'example.com:' }, PATH],
    ['Host with CR LF', DIRECT, { host: 'example.com\r\nX: y' }, PATH],
    ['unbracketed IPv6 Host', DIRECT, { host: '::1' }, PATH],
    ['Host with a scheme', DIRECT, { host: 'http://example.com' }, PATH],

    // Without TRUST_PROXY the forwarded headers are not believed.
    [
      'X-Forwarded-* ignored without TRUST_PROXY',
      DIRECT,
      { host: 'internal:8080', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'proxy.example' },
      `http://internal:8080${PATH}`,
    ],

    // With TRUST_PROXY they are.
    [
      'trusted X-Forwarded-Proto and -Host',
      PROXIED,
      { host: 'internal:8080', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'proxy.example' },
      `https://proxy.example${PATH}`,
    ],
    [
      'trusted X-Forwarded-Proto only',
      PROXIED,
      { host: 'example.com', 'x-forwarded-proto': 'https' },
      `https://example.com${PATH}`,
    ],
    [
      'trusted X-Forwarded-Host only',
      PROXIED,
      { host: 'internal', 'x-forwarded-host': 'proxy.example:8443' },
      `http://proxy.example:8443${PATH}`,
    ],
    [
      'X-Forwarded-Host without Host',
      PROXIED,
      { 'x-forwarded-host': 'proxy.example' },
      `http://proxy.example${PATH}`,
    ],
    [
      'comma-separated X-Forwarded-* take the first value',
      PROXIED,
      {
        host: 'internal',
        'x-forwarded-proto': 'https, http',
        'x-forwarded-host': 'edge.example, inner.example',
      },
      `https://edge.example${PATH}`,
    ],
    [
      'comma-separated Host takes the first value',
      DIRECT,
      { host: 'a.example, b.example' },
      `http://a.example${PATH}`,
    ],
    [
      'empty first X-Forwarded-Host falls back to Host',
      PROXIED,
      { host: 'internal', 'x-forwarded-host': ', edge.example' },
      `http://internal${PATH}`,
    ],
    [
      'X-Forwarded-Proto other than http/https is ignored',
      PROXIED,
      { host: 'example.com', 'x-forwarded-proto': 'ftp' },
      `http://example.com${PATH}`,
    ],
    [
      'X-Forwarded-Proto http',
      PROXIED,
      { host: 'example.com', 'x-forwarded-proto': 'http' },
      `http://example.com${PATH}`,
    ],
    [
      'X-Forwarded-Proto javascript is ignored',
      PROXIED,
      { host: 'example.com', 'x-forwarded-proto': 'javascript' },
      `http://example.com${PATH}`,
    ],
    [
      'invalid X-Forwarded-Host gives the path, not the Host',
      PROXIED,
      { host: 'internal', 'x-forwarded-host': 'evil.example/x' },
      PATH,
    ],
  ];

  test.each(rows)('%s', (_name, options, headers, expected) => {
    const build = createUrlBuilder(options);
    const url = build((name) => {
      expect(name).toBe(name.toLowerCase());
      return headers[name];
    }, PATH);
    expect(url).toBe(expected);
  });

  test('the path is appended as given', () => {
    const build = createUrlBuilder(DIRECT);
    expect(build(() => 'example.com', '/')).toBe('http://example.com/');
    expect(build(() => 'example.com', '/a?b=c')).toBe('http://example.com/a?b=c');
    expect(createUrlBuilder(PUBLIC)(() => undefined, '')).toBe('https://u.example.com');
  });
});
