import { create as createContentDisposition } from 'content-disposition';

/** What a download is sent as when its uploader named no well-formed type. */
export const DEFAULT_CONTENT_TYPE = 'application/octet-stream';

// media-type = type "/" subtype parameters; parameters = *( OWS ";" OWS [ parameter ] );
// parameter = parameter-name "=" parameter-value; parameter-value = ( token / quoted-string )
// (RFC 9110 §8.3.1, §5.6.2, §5.6.4).
const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const QUOTED_STRING = '"(?:[\\t\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]|\\\\[\\t\\x20-\\x7e])*"';
const PARAMETER = `[ \\t]*;[ \\t]*(?:${TOKEN}=(?:${TOKEN}|${QUOTED_STRING}))?`;
const MEDIA_TYPE = new RegExp(`^${TOKEN}/${TOKEN}(?:${PARAMETER})*$`);
/** A type longer than this is no type a browser or player needs; it is treated as absent. */
const MAX_MEDIA_TYPE_LENGTH = 200;

/** Types a browser may show in place without running anything: never HTML, SVG or scripts. */
const INLINE_TOP_LEVEL_TYPES = new Set(['image', 'audio', 'video']);
const INLINE_EXACT_TYPES = new Set(['text/plain']);
const NEVER_INLINE = new Set(['image/svg+xml']);
// https://mimesniff.spec.whatwg.org/#javascript-mime-type, plus JSON modules and WebAssembly.
const SCRIPT_TYPES = new Set([
  'application/ecmascript',
  'application/javascript',
  'application/x-ecmascript',
  'application/x-javascript',
  'text/ecmascript',
  'text/javascript',
  'text/javascript1.0',
  'text/javascript1.1',
  'text/javascript1.2',
  'text/javascript1.3',
  'text/javascript1.4',
  'text/javascript1.5',
  'text/jscript',
  'text/livescript',
  'text/x-ecmascript',
  'text/x-javascript',
  'application/wasm',
]);

// Cc (C0, DEL, C1) and Bidi_Control: U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069.
const CONTROL_CHARACTERS = /[\p{Cc}\p{Bidi_Control}]/gu;

function firstValue(metadata: Record<string, string | null>, keys: string[]): string | undefined {
  for (const key of keys) {
    const value = metadata[key];
    if (typeof value === 'string' && value !== '') return value;
  }
  return undefined;
}

/**
 * The Content-Type the uploader declared (`filetype`, Uppy's `type`) if it is a media type and
 * not a script: a script type would let `<script src>` or a service worker registration run an
 * upload as code from this origin (the WHATWG list of JavaScript MIME type essences).
 */
export function contentTypeOf(metadata: Record<string, string | null>): string {
  const declared = firstValue(metadata, ['filetype', 'type'])?.trim();
  if (!declared || declared.length > MAX_MEDIA_TYPE_LENGTH || !MEDIA_TYPE.test(declared)) {
    return DEFAULT_CONTENT_TYPE;
  }
  return SCRIPT_TYPES.has(essenceOf(declared)) ? DEFAULT_CONTENT_TYPE : declared;
}

/** `type/subtype` in lower case, without parameters (type and subtype are case-insensitive). */
function essenceOf(contentType: string): string {
  return (contentType.split(';', 1)[0] ?? '').trim().toLowerCase();
}

/** Whether a browser may render this type in place rather than save it. */
export function isSafeInline(contentType: string): boolean {
  const essence = essenceOf(contentType);
  if (NEVER_INLINE.has(essence)) return false;
  const topLevel = essence.split('/', 1)[0] ?? '';
  return INLINE_TOP_LEVEL_TYPES.has(topLevel) || INLINE_EXACT_TYPES.has(essence);
}

/**
 * The uploader's file name without directories or control characters, or undefined. Control
 * characters are C0, DEL, C1 (CR/LF would end the header) and the Unicode bidi controls (U+061C,
 * U+200E, U+200F, U+202A–U+202E, U+2066–U+2069): with U+202E `…gnp.exe` would show as `…exe.png`.
 */
export function downloadNameOf(metadata: Record<string, string | null>): string | undefined {
  const name = firstValue(metadata, ['filename', 'name']);
  const base = name?.replace(CONTROL_CHARACTERS, '').split(/[/\\]/).pop()?.trim();
  return base && base !== '.' && base !== '..' ? base : undefined;
}

/**
 * Content-Disposition (RFC 6266): inline for the safe types, attachment otherwise. A name that
 * is not printable ASCII goes in `filename*` (RFC 8187, UTF-8) with an ASCII `filename` fallback;
 * quotes and backslashes are escaped, so a name can never end the header or add another.
 */
export function contentDispositionOf(
  metadata: Record<string, string | null>,
  contentType: string,
): string {
  const type = isSafeInline(contentType) ? 'inline' : 'attachment';
  return createContentDisposition(downloadNameOf(metadata), { type });
}
