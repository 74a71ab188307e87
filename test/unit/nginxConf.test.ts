import { readFileSync } from 'node:fs';
import { describe, expect, test } from '@jest/globals';
import { loadConfig } from '../../server/config.ts';
import { DEPLOY_NGINX_CONF, renderForLoopback, withoutHashing } from '../harness/nginx.ts';

const DEPLOYED = readFileSync(DEPLOY_NGINX_CONF, 'utf8');
const UPSTREAM_LINE = '    server server:8080 resolve;';
const LISTEN_LINE = '    listen 8080;';

/** The lines of `text` with each of `removed` taken out once. */
function linesWithout(text: string, removed: string[]): string[] {
  const lines = text.split('\n');
  for (const line of removed) {
    const at = lines.indexOf(line);
    if (at === -1) throw new Error(`no line "${line}"`);
    lines.splice(at, 1);
  }
  return lines;
}

describe('deploy/nginx.conf rendered for loopback (the deploy suite and the bench run it)', () => {
  test('one upstream server line per instance port, without `resolve`, listening on loopback', () => {
    const rendered = renderForLoopback(DEPLOYED, {
      listenPort: 41000,
      upstreamPorts: [41001, 41002],
    });
    const added = ['    server 127.0.0.1:41001;', '    server 127.0.0.1:41002;'];
    expect(rendered).toContain(
      `    zone uploads 64k;\n    hash $balance_key consistent;\n${added.join('\n')}\n    keepalive 32;`,
    );
    expect(rendered).toContain('\n    listen 127.0.0.1:41000;\n');
    expect(rendered).not.toMatch(/ resolve;/);
    expect(rendered).not.toContain('listen 8080;');
  });

  test('with TLS: `listen … ssl` and the certificate and key, on the listen line only', () => {
    const rendered = renderForLoopback(DEPLOYED, {
      listenPort: 443,
      upstreamPorts: [8081],
      tls: { cert: '/tmp/x/cert.pem', key: '/tmp/x/key.pem' },
    });
    expect(rendered).toContain(
      '\n    listen 127.0.0.1:443 ssl;\n    ssl_certificate /tmp/x/cert.pem;\n    ssl_certificate_key /tmp/x/key.pem;\n',
    );
  });

  test('everything else of the file is kept, line for line', () => {
    const tls = { cert: '/c.pem', key: '/k.pem' };
    const rendered = renderForLoopback(DEPLOYED, { listenPort: 1, upstreamPorts: [2, 3], tls });
    expect(
      linesWithout(rendered, [
        '    server 127.0.0.1:2;',
        '    server 127.0.0.1:3;',
        '    listen 127.0.0.1:1 ssl;',
        '    ssl_certificate /c.pem;',
        '    ssl_certificate_key /k.pem;',
      ]),
    ).toEqual(linesWithout(DEPLOYED, [UPSTREAM_LINE, LISTEN_LINE]));
  });

  // [case, configuration text, end of the error]: the file and the renderer cannot drift apart
  // silently.
  const drifted: Array<[string, string, string]> = [
    [
      'no upstream server line',
      DEPLOYED.replace(UPSTREAM_LINE, '    server server:8080;'),
      '"server server:8080 resolve;" line, found 0',
    ],
    [
      'two upstream server lines',
      DEPLOYED.replace(UPSTREAM_LINE, `${UPSTREAM_LINE}\n${UPSTREAM_LINE}`),
      '"server server:8080 resolve;" line, found 2',
    ],
    [
      'no listen line',
      DEPLOYED.replace(LISTEN_LINE, '    listen 80;'),
      '"listen 8080;" line, found 0',
    ],
    [
      'two listen lines',
      DEPLOYED.replace(LISTEN_LINE, `${LISTEN_LINE}\n${LISTEN_LINE}`),
      '"listen 8080;" line, found 2',
    ],
  ];
  test.each(drifted)('%s: throws', (_case, conf, message) => {
    expect(() => renderForLoopback(conf, { listenPort: 1, upstreamPorts: [2] })).toThrow(
      `nginx.conf: expected one ${message}`,
    );
  });

  test('round-robin drops the consistent hashing line and nothing else', () => {
    expect(DEPLOYED).toContain('    hash $balance_key consistent;\n');
    expect(withoutHashing(DEPLOYED).split('\n')).toEqual(
      linesWithout(DEPLOYED, ['    hash $balance_key consistent;']),
    );
    expect(() => withoutHashing(withoutHashing(DEPLOYED))).toThrow(/expected one "hash" line/);
  });

  test("nginx's client_body_timeout outlasts the server's default REQUEST_IDLE_TIMEOUT_SECONDS", () => {
    // The server must end an idle PATCH first: it keeps the bytes and answers with the offset.
    const match = /^\s*client_body_timeout (\d+)s;$/m.exec(DEPLOYED);
    expect(match).not.toBeNull();
    const serverDefault = loadConfig({}).requestIdleTimeoutSeconds;
    expect(Number(match?.[1])).toBeGreaterThan(serverDefault);
  });
});
