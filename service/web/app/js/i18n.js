// Message catalogs: every UI string comes from i18n/<lang>.json. The language follows
// the phone's settings until the technician picks one (kept in localStorage).
export const LANGUAGES = { en: 'English', fr: 'Français', pt: 'Português' };
const KEY = 'kipimo.lang';
let catalog = {};
let fallback = {};
let current = 'en';

export function preferredLanguage() {
  const saved = localStorage.getItem(KEY);
  if (saved && saved in LANGUAGES) return saved;
  for (const tag of navigator.languages || [navigator.language || 'en']) {
    const base = String(tag).toLowerCase().split('-')[0];
    if (base in LANGUAGES) return base;
  }
  return 'en';
}

async function load(lang) {
  const res = await fetch(`i18n/${lang}.json`);
  if (!res.ok) throw new Error(`catalog ${lang}: HTTP ${res.status}`);
  return res.json();
}

export async function setLanguage(lang, { remember = false } = {}) {
  if (!(lang in LANGUAGES)) lang = 'en';
  if (!Object.keys(fallback).length) fallback = await load('en');
  catalog = lang === 'en' ? fallback : await load(lang);
  current = lang;
  if (remember) localStorage.setItem(KEY, lang);
  document.documentElement.lang = lang;
  translateStatic(document);
}

export const language = () => current;

// t('outbox.retry_in', {s: 5}) -> "Next try in 5 s"; a missing key shows the English text.
export function t(key, params = {}) {
  let s = catalog[key] ?? fallback[key];
  if (s === undefined) {
    console.warn('missing message', key);
    return key;
  }
  return s.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
}

// Elements written in index.html carry data-i18n (text) or data-i18n-<attr> (attributes).
export function translateStatic(root) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-aria-label]')) el.setAttribute('aria-label', t(el.dataset.i18nAriaLabel));
  document.title = t('app.title');
}

export function formatDateTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return new Intl.DateTimeFormat(current, { dateStyle: 'medium', timeStyle: 'short' }).format(d);
}

export function formatNumber(x, digits) {
  if (typeof x !== 'number' || !Number.isFinite(x)) return String(x ?? '');
  const opts = digits === undefined ? { maximumSignificantDigits: 6 } : { maximumFractionDigits: digits };
  return new Intl.NumberFormat(current, opts).format(x);
}
