import { validateHeaderValue } from 'node:http';
import { describe, expect, test } from '@jest/globals';
import {
  contentDispositionOf,
  contentTypeOf,
  DEFAULT_CONTENT_TYPE,
  downloadNameOf,
  isSafeInline,
} from '../../download/headers.ts';

type Metadata = Record<string, string | null>;
const OCTET = 'application/octet-stream';

describe('contentTypeOf', () => {
  // [tus metadata, Content-Type of the download]
  const rows: Array<[Metadata, string]> = [
    [{}, OCTET],
    [{ filetype: 'image/png' }, 'image/png'],
    [{ type: 'image/png' }, 'image/png'],
    [{ filetype: 'text/plain', type: 'image/png' }, 'text/plain'],
    [{ filetype: '', type: 'image/png' }, 'image/png'],
    [{ filetype: null, type: 'video/mp4' }, 'video/mp4'],
    [{ filetype: null }, OCTET],
    [{ filetype: '  image/png  ' }, 'image/png'],
    [{ filetype: 'Image/PNG' }, 'Image/PNG'],
    [{ filetype: 'text/plain; charset=utf-8' }, 'text/plain; charset=utf-8'],
    [{ filetype: 'text/plain;charset=utf-8' }, 'text/plain;charset=utf-8'],
    [{ filetype: 'text/plain ; charset=utf-8' }, 'text/plain ; charset=utf-8'],
    [{ filetype: 'text/plain; charset="utf-8"' }, 'text/plain; charset="utf-8"'],
    [{ filetype: 'text/plain; a="x\\"y"' }, 'text/plain; a="x\\"y"'],
    [{ filetype: 'text/plain; a=1; b=2' }, 'text/plain; a=1; b=2'],
    [
      { filetype: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document' },
      'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
    ],
    [{ filetype: 'image/svg+xml' }, 'image/svg+xml'],
    // Not a media type: the safe default.
    [{ filetype: 'png' }, OCTET],
    [{ filetype: 'image/' }, OCTET],
    [{ filetype: '/png' }, OCTET],
    [{ filetype: 'image/png/x' }, OCTET],
    [{ filetype: 'image /png' }, OCTET],
    [{ filetype: 'text/plain; charset' }, OCTET],
    [{ filetype: 'text/plain; charset=' }, OCTET],
    [{ filetype: 'text/plain; charset="utf-8' }, OCTET],
    [{ filetype: 'text/html\r\nSet-Cookie: a=b' }, OCTET],
    [{ filetype: 'text/html\nX: y' }, OCTET],
    [{ filetype: 'text/plain\u0000' }, OCTET],
    [{ filetype: 'tëxt/plain' }, OCTET],
    [{ filetype: 'image/png', type: 'garbage' }, 'image/png'],
    [{ filetype: 'garbage', type: 'image/png' }, OCTET],
  ];

  test.each(rows)('%p -> %p', (metadata, expected) => {
    expect(contentTypeOf(metadata)).toBe(expected);
  });

  // RFC 9110 §5.6.6 parameters are `*( OWS ";" OWS [ parameter ] )`, so an empty parameter
  // after ";" is a valid media type.
  test.each([
    [{ filetype: 'text/plain;' }, 'text/plain;'],
    [{ filetype: 'text/plain; charset=utf-8;' }, 'text/plain; charset=utf-8;'],
  ])('empty parameter: %p -> %p', (metadata, expected) => {
    expect(contentTypeOf(metadata)).toBe(expected);
  });

  test('the default is application/octet-stream', () => {
    expect(DEFAULT_CONTENT_TYPE).toBe(OCTET);
  });

  test.each([
    ['at the 200-character limit', 200, true],
    ['past the 200-character limit', 201, false],
  ])('a type %s', (_name, length, kept) => {
    const type = `application/${'x'.repeat(length - 'application/'.length)}`;
    expect(type).toHaveLength(length);
    expect(contentTypeOf({ filetype: type })).toBe(kept ? type : OCTET);
  });
});

describe('isSafeInline', () => {
  // [Content-Type, shown in place]
  const rows: Array<[string, boolean]> = [
    ['image/png', true],
    ['image/jpeg', true],
    ['IMAGE/PNG', true],
    ['audio/mpeg', true],
    ['video/mp4', true],
    ['video/mp4; codecs="avc1"', true],
    ['text/plain', true],
    ['Text/Plain', true],
    ['text/plain; charset=utf-8', true],
    ['text/plain ; charset=utf-8', true],
    // Never in place: anything a browser would run or lay out as a page.
    ['image/svg+xml', false],
    ['Image/SVG+XML', false],
    ['image/svg+xml; charset=utf-8', false],
    ['text/html', false],
    ['text/html; charset=utf-8', false],
    ['application/xhtml+xml', false],
    ['text/xml', false],
    ['application/xml', false],
    ['text/javascript', false],
    ['application/javascript', false],
    ['application/pdf', false],
    ['text/css', false],
    ['text/plain-html', false],
    ['multipart/x-mixed-replace', false],
    [OCTET, false],
    ['', false],
  ];

  test.each(rows)('%p -> %p', (contentType, inline) => {
    expect(isSafeInline(contentType)).toBe(inline);
  });
});

describe('downloadNameOf', () => {
  // [tus metadata, the name a download is saved under]
  const rows: Array<[Metadata, string | undefined]> = [
    [{}, undefined],
    [{ filename: 'report.pdf' }, 'report.pdf'],
    [{ name: 'report.pdf' }, 'report.pdf'],
    [{ filename: 'a.txt', name: 'b.txt' }, 'a.txt'],
    [{ filename: '', name: 'b.txt' }, 'b.txt'],
    [{ filename: null, name: 'b.txt' }, 'b.txt'],
    [{ filename: null }, undefined],
    [{ filename: '' }, undefined],
    [{ filename: '  spaced name.txt  ' }, 'spaced name.txt'],
    [{ filename: 'résumé.pdf' }, 'résumé.pdf'],
    [{ filename: '日本語.txt' }, '日本語.txt'],
    // Directories of either kind are dropped.
    [{ filename: 'dir/sub/file.txt' }, 'file.txt'],
    [{ filename: '../../etc/passwd' }, 'passwd'],
    [{ filename: 'C:\\Users\\me\\doc.txt' }, 'doc.txt'],
    [{ filename: 'a/b\\c.txt' }, 'c.txt'],
    [{ filename: 'dir/' }, undefined],
    [{ filename: '/' }, undefined],
    [{ filename: '.' }, undefined],
    [{ filename: '..' }, undefined],
    [{ filename: 'dir/..' }, undefined],
    [{ filename: ' .. ' }, undefined],
    [{ filename: '...' }, '...'],
    [{ filename: '.hidden' }, '.hidden'],
    // C0 controls and DEL are removed.
    [{ filename: 'line\r\nbreak.txt' }, 'linebreak.txt'],
    [{ filename: 'tab\there.txt' }, 'tabhere.txt'],
    [{ filename: 'nul\u0000.txt' }, 'nul.txt'],
    [{ filename: 'del\u007f.txt' }, 'del.txt'],
    [{ filename: 'esc\u001b[31m.txt' }, 'esc[31m.txt'],
    [{ filename: '\r\n' }, undefined],
    [{ filename: 'dir\u0000/x.txt' }, 'x.txt'],
    [{ filename: '.\u0000.' }, undefined],
    // C1 controls and the Unicode bidi controls are removed: U+202E cannot turn
    // `…gnp.exe` into what displays as `…exe.png`.
    [{ filename: 'c1\u0085\u009b.txt' }, 'c1.txt'],
    [{ filename: 'photo\u202egnp.exe' }, 'photognp.exe'],
    [{ filename: '\u202egnp.exe' }, 'gnp.exe'],
    [{ filename: 'a\u200eb\u200fc.txt' }, 'abc.txt'],
    [{ filename: 'a\u202ab\u202bc\u202cd\u202de.txt' }, 'abcde.txt'],
    [{ filename: 'a\u2066b\u2067c\u2068d\u2069e.txt' }, 'abcde.txt'],
    [{ filename: 'عربي\u061c.txt' }, 'عربي.txt'],
    [{ filename: '\u202e\u2066' }, undefined],
    [{ filename: '.\u202e.' }, undefined],
    [{ filename: 'dir\u202e/x.txt' }, 'x.txt'],
    // Letters of right-to-left scripts are kept: only the controls go.
    [{ filename: 'שלום.txt' }, 'שלום.txt'],
    [{ filename: 'a\u200db.txt' }, 'a\u200db.txt'],
  ];

  test.each(rows)('%p -> %p', (metadata, expected) => {
    expect(downloadNameOf(metadata)).toBe(expected);
  });
});

/**
 * A small RFC 6266 reader, independent of the code under test: the disposition type and the
 * `filename` (token or quoted-string) and `filename*` (RFC 8187 ext-value, UTF-8) parameters.
 */
function readDisposition(header: string): {
  type: string;
  filename?: string;
  filenameStar?: string;
} {
  const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
  const head = new RegExp(`^(${TOKEN})`).exec(header);
  if (!head?.[1]) throw new Error(`no disposition type in ${header}`);
  const result: { type: string; filename?: string; filenameStar?: string } = {
    type: head[1].toLowerCase(),
  };
  const parameter = new RegExp(
    `;[ \\t]*(${TOKEN})[ \\t]*=[ \\t]*(${TOKEN}|"(?:[^"\\\\]|\\\\.)*")`,
    'y',
  );
  parameter.lastIndex = head[1].length;
  const seen = new Set<string>();
  while (parameter.lastIndex < header.length) {
    const match = parameter.exec(header);
    if (!match?.[1] || match[2] === undefined)
      throw new Error(`unreadable parameters in ${header}`);
    const name = match[1].toLowerCase();
    if (seen.has(name)) throw new Error(`parameter ${name} twice in ${header}`);
    seen.add(name);
    const raw = match[2];
    if (name === 'filename') {
      result.filename = raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, '$1') : raw;
    } else if (name === 'filename*') {
      // ext-value = charset "'" [ language ] "'" value-chars; value-chars = *( pct-encoded / attr-char )
      const ext = /^UTF-8'[A-Za-z0-9-]*'((?:%[0-9A-Fa-f]{2}|[A-Za-z0-9!#$&+.^_`|~-])*)$/i.exec(raw);
      if (ext?.[1] === undefined) throw new Error(`bad ext-value ${raw}`);
      result.filenameStar = decodeURIComponent(ext[1]);
    } else {
      throw new Error(`unexpected parameter ${name}`);
    }
  }
  return result;
}

describe('contentDispositionOf', () => {
  // [metadata, Content-Type, disposition type, plain filename (undefined: absent, null: any
  // printable-ASCII fallback), filename* (UTF-8, undefined: absent)]
  const rows: Array<[Metadata, string, string, string | null | undefined, string | undefined]> = [
    [{}, OCTET, 'attachment', undefined, undefined],
    [{}, 'image/png', 'inline', undefined, undefined],
    [{ filename: 'report.pdf' }, 'application/pdf', 'attachment', 'report.pdf', undefined],
    [{ filename: 'photo.jpg' }, 'image/jpeg', 'inline', 'photo.jpg', undefined],
    [{ filename: 'notes.txt' }, 'text/plain; charset=utf-8', 'inline', 'notes.txt', undefined],
    [{ filename: 'drawing.svg' }, 'image/svg+xml', 'attachment', 'drawing.svg', undefined],
    [{ filename: 'page.html' }, 'text/html', 'attachment', 'page.html', undefined],
    [{ filename: 'with space.txt' }, OCTET, 'attachment', 'with space.txt', undefined],
    [{ filename: 'semi;colon.txt' }, OCTET, 'attachment', 'semi;colon.txt', undefined],
    [{ filename: 'a"b.txt' }, OCTET, 'attachment', 'a"b.txt', undefined],
    // A quote cannot end the value and smuggle in a second parameter or header.
    [
      { filename: 'x.txt"; filename="evil.html' },
      OCTET,
      'attachment',
      'x.txt"; filename="evil.html',
      undefined,
    ],
    [
      { filename: 'a.txt\r\nSet-Cookie: session=x' },
      OCTET,
      'attachment',
      'a.txtSet-Cookie: session=x',
      undefined,
    ],
    [{ filename: 'tab\there.txt' }, OCTET, 'attachment', 'tabhere.txt', undefined],
    [{ filename: '../../secret.txt' }, OCTET, 'attachment', 'secret.txt', undefined],
    [{ filename: '..' }, OCTET, 'attachment', undefined, undefined],
    // Not printable ASCII: UTF-8 in filename* (RFC 8187) with an ASCII fallback in filename.
    [{ filename: 'résumé.pdf' }, 'application/pdf', 'attachment', null, 'résumé.pdf'],
    [{ filename: '日本語.txt' }, 'text/plain', 'inline', null, '日本語.txt'],
    [{ filename: '😀.png' }, 'image/png', 'inline', null, '😀.png'],
    [{ filename: "l'été (1).txt" }, OCTET, 'attachment', null, "l'été (1).txt"],
    // C1 controls (U+0085 NEL) and bidi controls are removed like C0.
    [{ filename: 'x\u0085y.txt' }, OCTET, 'attachment', 'xy.txt', undefined],
    [{ filename: 'é\u202egnp.exe' }, OCTET, 'attachment', null, 'égnp.exe'],
    [{ filename: 'naïve"quote.txt' }, OCTET, 'attachment', null, 'naïve"quote.txt'],
    [{ filename: 'ü\r\n.txt' }, OCTET, 'attachment', null, 'ü.txt'],
    [{ name: 'Grüße.mp4' }, 'video/mp4', 'inline', null, 'Grüße.mp4'],
  ];

  test.each(rows)('%p as %p -> %p', (metadata, contentType, type, filename, filenameStar) => {
    const header = contentDispositionOf(metadata, contentType);
    // Printable ASCII only: nothing can end the header line, Node accepts it as it is.
    expect(header).toMatch(/^[\x20-\x7e]+$/);
    expect(() => validateHeaderValue('Content-Disposition', header)).not.toThrow();
    const read = readDisposition(header);
    expect(read.type).toBe(type);
    if (filename === null) {
      expect(read.filename).toMatch(/^[\x20-\x7e]+$/);
    } else {
      expect(read.filename).toBe(filename);
    }
    expect(read.filenameStar).toBe(filenameStar);
  });

  test('a name of printable ASCII is sent as filename, exactly (RFC 6266 §4.3)', () => {
    expect(contentDispositionOf({ filename: 'report.pdf' }, OCTET)).toMatch(
      /^attachment; filename=("?)report\.pdf\1$/,
    );
    expect(contentDispositionOf({ filename: 'a"b.txt' }, OCTET)).toBe(
      'attachment; filename="a\\"b.txt"',
    );
  });

  test.each([
    ['photo\u202egnp.exe', 'photognp.exe'],
    ['\u2067exe.png\u2069.exe', 'exe.png.exe'],
    ['x\u061c\u200e\u200f.exe', 'x.exe'],
  ])('the bidi controls of %p never reach the header (%p)', (filename, shown) => {
    const header = contentDispositionOf({ filename }, OCTET);
    expect(header).not.toMatch(/[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]|%E2%80%AE|%D8%9C/i);
    expect(header).toBe(`attachment; filename=${shown}`);
  });

  test('UTF-8 is percent-encoded per RFC 8187 (é is C3 A9)', () => {
    expect(contentDispositionOf({ filename: 'é.txt' }, OCTET)).toContain(
      "filename*=UTF-8''%C3%A9.txt",
    );
  });
});
