import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, test } from '@jest/globals';
import { parse as parseContentDisposition } from 'content-disposition';
import { curl } from './harness/curl.ts';
import { finishedUpload } from './harness/downloads.ts';
import { serverOnStorage } from './harness/serverOnStorage.ts';
import { STORAGE_KINDS } from './harness/stack.ts';

const run = promisify(execFile);

describe.each(STORAGE_KINDS)(
  'download Content-Type and Content-Disposition on the %s storage',
  (kind) => {
    const stack = serverOnStorage(kind);

    test.each([
      [{ filetype: 'video/mp4', filename: 'clip.mp4' }, 'video/mp4', 'inline; filename=clip.mp4'],
      [{ filetype: 'audio/mpeg', filename: 'song.mp3' }, 'audio/mpeg', 'inline; filename=song.mp3'],
      [{ filetype: 'image/png' }, 'image/png', 'inline'],
      [
        { filetype: 'text/plain; charset=utf-8', filename: 'notes.txt' },
        'text/plain; charset=utf-8',
        'inline; filename=notes.txt',
      ],
      // Uppy's keys.
      [{ type: 'image/jpeg', name: 'photo.jpg' }, 'image/jpeg', 'inline; filename=photo.jpg'],
      // Types that could run script in the server's origin are never shown in place.
      [
        { filetype: 'text/html', filename: 'page.html' },
        'text/html',
        'attachment; filename=page.html',
      ],
      [
        { filetype: 'image/svg+xml', filename: 'x.svg' },
        'image/svg+xml',
        'attachment; filename=x.svg',
      ],
      [
        { filetype: 'application/pdf', filename: 'doc.pdf' },
        'application/pdf',
        'attachment; filename=doc.pdf',
      ],
      // Not a well-formed media type: the bytes are just bytes.
      [
        { filetype: 'not a type', filename: 'a.bin' },
        'application/octet-stream',
        'attachment; filename=a.bin',
      ],
      [{ filetype: 'text/' }, 'application/octet-stream', 'attachment'],
      [{ filetype: 'text/html\r\nX-Injected: 1' }, 'application/octet-stream', 'attachment'],
      [{}, 'application/octet-stream', 'attachment'],
    ])('metadata %j is served as %s, %s', async (metadata, contentType, disposition) => {
      const { url, data } = await finishedUpload(stack.server.url, 100, metadata);
      for (const res of [await curl(url), await curl(url, ['-r', '0-9'])]) {
        expect(res.headers['content-type']).toBe(contentType);
        expect(res.headers['content-disposition']).toBe(disposition);
        expect(res.headers['x-content-type-options']).toBe('nosniff');
        expect(res.headers['x-injected']).toBeUndefined();
      }
      expect((await curl(url)).body.equals(data)).toBe(true);
    });

    test('a non-ASCII name is sent per RFC 8187 with an ASCII fallback, byte for byte', async () => {
      const name = '报告 2024.pdf';
      const { url, data } = await finishedUpload(stack.server.url, 1000, {
        filename: name,
        filetype: 'application/pdf',
      });
      const res = await curl(url);
      const line = res.headerLines.find((l) => /^content-disposition:/i.test(l.toString('latin1')));
      expect(line).toEqual(
        Buffer.from(
          `Content-Disposition: attachment; filename="?? 2024.pdf"; filename*=UTF-8''%E6%8A%A5%E5%91%8A%202024.pdf`,
          'ascii',
        ),
      );
      expect(
        parseContentDisposition(line?.toString('latin1').split(': ')[1] ?? '').parameters.filename,
      ).toBe(name);

      // wget honours filename* and saves the file under its real name.
      const dir = mkdtempSync(path.join(tmpdir(), 'wget-name-'));
      try {
        await run('wget', ['-q', '--content-disposition', url], { cwd: dir });
        expect(readdirSync(dir)).toEqual([name]);
        expect(readFileSync(path.join(dir, name)).equals(data)).toBe(true);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    test.each([
      ['quotes and ;', 'a"; filename="evil.exe', 'a"; filename="evil.exe'],
      ['CR/LF', 'x.txt\r\nSet-Cookie: a=b', 'x.txtSet-Cookie: a=b'],
      ['a lone LF and NUL', 'y\n\u0000.txt', 'y.txt'],
      ['a backslash', 'c:\\temp\\z.txt', 'z.txt'],
      ['directories', '../../etc/passwd', 'passwd'],
      ['non-ASCII and quotes', '"报告"\r\n.pdf', '"报告".pdf'],
      // Bidi controls are dropped: `…gnp.exe` with U+202E cannot display as `…exe.png`.
      ['a right-to-left override', 'photo\u202egnp.exe', 'photognp.exe'],
      ['bidi isolates, marks and C1', 'é\u2067exe.png\u2069\u200f\u061c\u0085.exe', 'éexe.png.exe'],
    ])('a filename with %s cannot inject a header', async (_what, name, expected) => {
      const { url } = await finishedUpload(stack.server.url, 10, { filename: name });
      const res = await curl(url);
      const dispositions = res.headerLines.filter((l) =>
        /^content-disposition:/i.test(l.toString('latin1')),
      );
      expect(dispositions).toHaveLength(1);
      expect(res.headers['set-cookie']).toBeUndefined();
      expect(res.headerLines.every((l) => !/[\r\n]/.test(l.toString('latin1')))).toBe(true);
      const parsed = parseContentDisposition(res.headers['content-disposition'] ?? '');
      expect(parsed.type).toBe('attachment');
      expect(parsed.parameters.filename).toBe(expected);
      expect(res.status).toBe(200);
    });
  },
);
