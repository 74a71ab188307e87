import type { Locale } from '@uppy/core/utils';
import en_US from '@uppy/locales/lib/en_US.js';
import zh_CN from '@uppy/locales/lib/zh_CN.js';
import { EN, type PageStrings, ZH_CN } from './strings.ts';

/** The languages the page offers, each named in itself. */
export const LANGUAGES = { en: 'English', 'zh-CN': '简体中文' } as const;
export type Language = keyof typeof LANGUAGES;

const STORAGE_KEY = 'upload-page:language';
const PAGE_STRINGS: Record<Language, PageStrings> = { en: EN, 'zh-CN': ZH_CN };
const UPPY_LOCALES: Record<Language, Locale> = { en: en_US, 'zh-CN': zh_CN };

export function isLanguage(value: unknown): value is Language {
  return typeof value === 'string' && Object.hasOwn(LANGUAGES, value);
}

/** The language chosen earlier in this browser, else the first of the browser's we offer. */
export function chosenLanguage(storage: Storage, preferred: readonly string[]): Language {
  let saved: string | null = null;
  try {
    saved = storage.getItem(STORAGE_KEY);
  } catch {
    // No storage: fall back to the browser's preference.
  }
  if (isLanguage(saved)) return saved;
  for (const tag of preferred) {
    const primary = tag.toLowerCase().split('-')[0];
    if (primary === 'zh') return 'zh-CN';
    if (primary === 'en') return 'en';
  }
  return 'en';
}

export function saveLanguage(storage: Storage, language: Language): void {
  try {
    storage.setItem(STORAGE_KEY, language);
  } catch {
    // The choice then lasts until the page is reloaded.
  }
}

export function pageStrings(language: Language): PageStrings {
  return PAGE_STRINGS[language];
}

/** Uppy's language pack plus the strings of the page's own Uppy plugins. */
export function uppyLocale(language: Language): Locale {
  const pack = UPPY_LOCALES[language];
  const page = PAGE_STRINGS[language];
  return {
    ...pack,
    strings: {
      ...pack.strings,
      hashingFile: page.hashingFile,
      checkingServer: page.checkingServer,
    },
  };
}
