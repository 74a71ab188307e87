import Uppy from '@uppy/core';
import Dashboard from '@uppy/dashboard';
import Tus from '@uppy/tus';
import '@uppy/core/css/style.min.css';
import '@uppy/dashboard/css/style.min.css';
import './style.css';
import { ContentHashing } from './ContentHashing.ts';
import { CreatedUploads } from './createdUploads.ts';
import { DedupeCreation } from './DedupeCreation.ts';
import { renderFinishedList } from './finishedList.ts';
import { FINISHED_UPLOADS_KEY, FinishedUploads } from './finishedUploads.ts';
import {
  chosenLanguage,
  isLanguage,
  LANGUAGES,
  type Language,
  pageStrings,
  saveLanguage,
  uppyLocale,
} from './language.ts';
import type { PageStrings } from './strings.ts';
import type { FileMeta, UploadBody } from './types.ts';

/** Back-off between attempts of a failed request: at once, then ever longer, about 40 s in all. */
const RETRY_DELAYS_MS = [0, 1000, 3000, 5000, 10000, 20000];
/** Files uploading at the same time; the rest wait their turn. */
const PARALLEL_UPLOADS = 3;

function required<T extends HTMLElement>(selector: string): T {
  const node = document.querySelector<T>(selector);
  if (!node) throw new Error(`the page has no ${selector}`);
  return node;
}

const endpoint = new URL('/files/', window.location.href).href;
// A token handed over in the fragment (`/#token=<JWT>`) never reaches a server log or a Referer.
const token = new URLSearchParams(window.location.hash.slice(1)).get('token');
const authHeaders: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
const finishedUploads = new FinishedUploads(window.localStorage);
const finishedList = required<HTMLUListElement>('#finished-uploads');
const noFinished = required<HTMLElement>('#no-finished');
const languageSelect = required<HTMLSelectElement>('#language');
let language: Language = chosenLanguage(window.localStorage, navigator.languages);

const uppy = new Uppy<FileMeta, UploadBody>({ autoProceed: true, locale: uppyLocale(language) })
  .use(Dashboard<FileMeta, UploadBody>, {
    inline: true,
    target: '#uploader',
    width: '100%',
    height: 420,
    theme: 'auto',
    note: pageStrings(language).dashboardNote,
    proudlyDisplayPoweredByUppy: false,
  })
  // Pre-processors run in the order they are added: hash first, then create with the hash.
  .use(ContentHashing)
  .use(DedupeCreation, {
    endpoint,
    headers: authHeaders,
    createdUploads: new CreatedUploads(window.localStorage),
  })
  .use(Tus<FileMeta, UploadBody>, {
    endpoint,
    headers: authHeaders,
    limit: PARALLEL_UPLOADS,
    retryDelays: RETRY_DELAYS_MS,
    // The server understands name/type (sent as filename/filetype too) and sha256.
    allowedMetaFields: ['name', 'type', 'sha256'],
    // A finished upload is in the list; a stored fingerprint would only resume it again.
    removeFingerprintOnSuccess: true,
  });

function renderFinished(strings: PageStrings = pageStrings(language)): void {
  renderFinishedList(finishedList, noFinished, finishedUploads.list(), endpoint, strings);
}

function applyLanguage(): void {
  const strings = pageStrings(language);
  document.documentElement.lang = language;
  document.title = strings.pageTitle;
  for (const node of document.querySelectorAll<HTMLElement>('[data-text]')) {
    const key = node.dataset.text as keyof PageStrings;
    if (key in strings) node.textContent = strings[key];
  }
  uppy.setOptions({ locale: uppyLocale(language) });
  uppy.getPlugin('Dashboard')?.setOptions({ note: strings.dashboardNote });
  renderFinished(strings);
}

/** With a token, a signed download link (7 days) for the finished list; none without. */
async function signedLink(id: string): Promise<string | undefined> {
  if (!token) return undefined;
  const response = await fetch(new URL(`${encodeURIComponent(id)}/links`, endpoint), {
    method: 'POST',
    headers: { ...authHeaders, 'Content-Type': 'application/json' },
    body: JSON.stringify({ expiresIn: 7 * 24 * 3600 }),
  }).catch(() => undefined);
  if (response?.status !== 201) return undefined;
  return ((await response.json()) as { url?: string }).url;
}

uppy.on('upload-success', async (file, response) => {
  const id = response.uploadURL?.split('/').pop();
  if (!file || !id) return;
  const link = await signedLink(decodeURIComponent(id));
  finishedUploads.add({
    link,
    id: decodeURIComponent(id),
    name: file.meta.name,
    size: file.size ?? 0,
    type: file.meta.type ?? '',
    sha256: typeof file.meta.sha256 === 'string' ? file.meta.sha256 : undefined,
    deduplicated: response.body?.deduplicated === true,
    finishedAt: new Date().toISOString(),
  });
  renderFinished();
});

languageSelect.replaceChildren(
  ...Object.entries(LANGUAGES).map(([value, name]) => new Option(name, value)),
);
languageSelect.value = language;
languageSelect.addEventListener('change', () => {
  if (!isLanguage(languageSelect.value)) return;
  language = languageSelect.value;
  saveLanguage(window.localStorage, language);
  applyLanguage();
});
required<HTMLButtonElement>('#clear-finished').addEventListener('click', () => {
  finishedUploads.clear();
  renderFinished();
});
// Another tab of this page finished an upload.
window.addEventListener('storage', (event) => {
  if (event.key === FINISHED_UPLOADS_KEY) renderFinished();
});
applyLanguage();
