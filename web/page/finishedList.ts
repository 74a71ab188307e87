import type { FinishedUpload } from './finishedUploads.ts';
import { formatBytes } from './formatBytes.ts';
import type { PageStrings } from './strings.ts';

type Attributes = Record<string, string>;

/** An element built from text and attributes only, so a file name can never become markup. */
function element(
  tag: string,
  attributes: Attributes = {},
  children: Array<Node | string> = [],
): HTMLElement {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

/** The download URL of an upload, beside the page's tus endpoint. */
function downloadUrl(endpoint: string, id: string): string {
  return new URL(encodeURIComponent(id), endpoint).pathname;
}

/** The types the server sends inline (download/headers.ts): never SVG, which may run scripts. */
function previewOf(upload: FinishedUpload, url: string): HTMLElement | undefined {
  const [kind, subtype] = upload.type.toLowerCase().split('/');
  if (kind === 'image' && subtype !== 'svg+xml') {
    return element('img', { src: url, alt: upload.name, loading: 'lazy' });
  }
  // preload=metadata: the browser asks for a few ranges, not the whole file.
  if (kind === 'video') return element('video', { src: url, controls: '', preload: 'metadata' });
  if (kind === 'audio') return element('audio', { src: url, controls: '', preload: 'metadata' });
  return undefined;
}

function itemOf(upload: FinishedUpload, endpoint: string, strings: PageStrings): HTMLElement {
  // A plain link cannot carry the token: with auth on, the page keeps a signed one.
  const url = upload.link ?? downloadUrl(endpoint, upload.id);
  const preview = previewOf(upload, url);
  const facts: Array<Node | string> = [
    element('span', { class: 'finished-size' }, [formatBytes(upload.size)]),
  ];
  if (upload.deduplicated) {
    facts.push(element('span', { class: 'finished-badge' }, [strings.deduplicated]));
  }
  return element(
    'li',
    {
      class: 'finished-upload',
      'data-upload-id': upload.id,
      'data-deduplicated': String(upload.deduplicated),
    },
    [
      element('div', { class: 'finished-preview' }, preview ? [preview] : []),
      element('div', { class: 'finished-details' }, [
        element('a', { class: 'finished-name', href: url, target: '_blank', rel: 'noopener' }, [
          upload.name,
        ]),
        element('div', { class: 'finished-facts' }, facts),
        element('code', { class: 'finished-sha256', title: 'SHA-256' }, [upload.sha256 ?? '—']),
        element('a', { class: 'finished-download', href: url, download: upload.name }, [
          strings.download,
        ]),
      ]),
    ],
  );
}

/** Renders the finished uploads into `list`, or the empty note when there are none. */
export function renderFinishedList(
  list: HTMLElement,
  emptyNote: HTMLElement,
  uploads: FinishedUpload[],
  endpoint: string,
  strings: PageStrings,
): void {
  list.replaceChildren(...uploads.map((upload) => itemOf(upload, endpoint, strings)));
  emptyNote.hidden = uploads.length > 0;
}
