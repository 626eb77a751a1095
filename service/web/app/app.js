// Kipimo technician app: start-up, sign-in, routing and the small screens.
import { api, ApiError, NetworkError, clearToken, extractToken, getToken, setToken } from './js/api.js';
import { LANGUAGES, formatDateTime, language, preferredLanguage, setLanguage, t } from './js/i18n.js';
import { resumeInspection, startInspection } from './js/inspect.js';
import { showHistory, showOutbox } from './js/lists.js';
import { counts, syncOutbox } from './js/outbox.js';
import { canScan, scanCode } from './js/scan.js';
import { cachedStandards, syncStandards } from './js/standards.js';
import { db, persist } from './js/store.js';
import { h, nextId, show, toast } from './js/ui.js';

const state = { me: null, syncing: false, syncError: null };

// --- identity -------------------------------------------------------------------------
function nodeName(me) {
  const n = me && me.node;
  if (n && typeof n === 'object') return n.name || n.id || '';
  return n || (me && (me.node_name || me.node_id)) || '';
}
function personName(me) {
  if (!me) return '';
  const p = me.person ?? me.name ?? me.technician ?? me.label ?? me.subject;
  return (p && typeof p === 'object') ? (p.name || p.id || '') : (p || '');
}
export function technicianId(me = state.me) {
  return personName(me) || (me && String(me.token_id || me.id || '')) || '';
}

function renderWho() {
  const el = document.getElementById('who');
  el.textContent = state.me ? t('who.line', { person: personName(state.me) || '—', node: nodeName(state.me) || '—' }) : '';
}

async function loadMe() {
  try {
    state.me = await api.me();
    await db.put('kv', state.me, 'me');
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      clearToken();
      state.me = null;
      await db.del('kv', 'me');
      return 'rejected';
    }
    state.me = (await db.get('kv', 'me')) || null; // offline: who we were last time
  }
  renderWho();
  return state.me ? 'ok' : 'unknown';
}

// The QR code on the card opens /app/#token=...: keep the token, then wipe it from the URL
// (and so from history and screenshots).
function takeTokenFromUrl() {
  const m = location.hash.match(/token=([^&]+)/);
  if (!m) return false;
  setToken(decodeURIComponent(m[1]));
  history.replaceState(null, '', location.pathname + location.search);
  return true;
}

// --- network indicator and background work ---------------------------------------------
function renderNet() {
  const el = document.getElementById('net');
  el.textContent = navigator.onLine ? t('net.online') : t('net.offline');
  el.classList.toggle('offline', !navigator.onLine);
}

async function renderOutboxBadge() {
  const c = await counts();
  const n = c.pending + c.sending + c.failed + c.conflict;
  const badge = document.getElementById('outbox-count');
  badge.hidden = n === 0;
  badge.textContent = String(n);
  badge.setAttribute('aria-label', t('outbox.badge', { n }));
}

export async function syncAll({ quiet = true } = {}) {
  if (!getToken()) return;
  state.syncing = true;
  syncOutbox({ force: true });
  try {
    await syncStandards();
    state.syncError = null;
  } catch (e) {
    state.syncError = e instanceof NetworkError ? 'offline' : e.message;
    if (!quiet) toast(state.syncError === 'offline' ? t('sync.offline') : t('sync.failed', { reason: e.message }));
  } finally {
    state.syncing = false;
  }
}

// --- screens ---------------------------------------------------------------------------
function showSignIn(message) {
  document.getElementById('tabs').hidden = true;
  const input = h('textarea', { id: 'token-input', rows: 3, autocomplete: 'off', spellcheck: false,
    'aria-describedby': 'token-help' });
  const error = h('p.error', { id: 'token-error', role: 'alert' }, message || '');
  const useText = async (text) => {
    const token = extractToken(text);
    if (!token) { error.textContent = t('signin.invalid'); return; }
    setToken(token);
    await boot();
  };
  show(
    h('h1', t('signin.title')),
    h('p', t('signin.intro')),
    canScan() ? h('button.btn', { type: 'button', onclick: async () => {
      const code = await scanCode(['qr_code']);
      if (code) await useText(code);
    } }, t('signin.scan')) : h('p.muted', t('signin.scan_with_camera')),
    h('label', { htmlFor: 'token-input' }, t('signin.paste_label')),
    h('p.help', { id: 'token-help' }, t('signin.paste_help')),
    input,
    error,
    h('button.btn', { type: 'button', id: 'token-submit', onclick: () => useText(input.value) }, t('signin.submit')),
  );
}

async function showHome() {
  const standards = await cachedStandards();
  const synced = await db.get('kv', 'standardsSyncedAt');
  const list = h('ul.list', { 'aria-labelledby': 'products-h' });
  for (const s of standards) {
    list.append(h('li', h('button.product', { type: 'button', 'data-product': s.product,
      onclick: () => startInspection(s, { me: state.me, technician: technicianId() }) },
    h('strong', s.name || s.product),
    h('span.muted', t('home.version', { product: s.product, version: s.version })))));
  }
  const refresh = h('button.btn.secondary', { type: 'button', id: 'sync-now', onclick: async () => {
    refresh.disabled = true;
    await syncAll({ quiet: false });
    if (location.hash === '' || location.hash === '#/') await showHome();
  } }, t('home.sync'));
  show(
    h('h1', { id: 'products-h' }, t('home.title')),
    standards.length ? list : h('p.alert.info', navigator.onLine ? t('home.none') : t('home.none_offline')),
    h('p.muted', synced ? t('home.synced_at', { when: formatDateTime(synced) }) : t('home.never_synced')),
    refresh,
  );
}

function showSettings() {
  const id = nextId('lang');
  const select = h('select', { id, onchange: async () => {
    await setLanguage(select.value, { remember: true });
    renderNet(); renderWho(); renderOutboxBadge(); showSettings();
  } }, Object.entries(LANGUAGES).map(([code, name]) => h('option', { value: code, selected: code === language() }, name)));
  show(
    h('h1', t('settings.title')),
    window.isSecureContext ? null : h('p.alert.warn', { id: 'insecure' }, t('settings.insecure')),
    h('label', { htmlFor: id }, t('settings.language')),
    select,
    h('h2', t('settings.account')),
    h('dl.summary',
      h('dt', t('settings.node')), h('dd', nodeName(state.me) || '—'),
      h('dt', t('settings.person')), h('dd', personName(state.me) || '—')),
    h('button.btn.danger', { type: 'button', onclick: async () => {
      const c = await counts();
      if (c.pending + c.failed + c.conflict > 0 && !confirm(t('settings.signout_pending'))) return;
      clearToken();
      state.me = null;
      await db.del('kv', 'me');
      renderWho();
      showSignIn();
    } }, t('settings.signout')),
  );
}

// --- routing ---------------------------------------------------------------------------
const routes = { '': showHome, '#/': showHome, '#/outbox': showOutbox, '#/history': showHistory, '#/settings': showSettings };

async function route() {
  if (takeTokenFromUrl()) return boot();
  if (!getToken()) return showSignIn();
  const tab = (location.hash.split('/')[1] || 'home');
  for (const a of document.querySelectorAll('#tabs a')) {
    if (a.dataset.tab === tab) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  if (location.hash === '#/inspect') {
    if (!resumeInspection()) location.replace('#/');
    return;
  }
  await (routes[location.hash] || showHome)();
}

async function boot() {
  takeTokenFromUrl();
  if (!getToken()) return showSignIn();
  const who = await loadMe();
  if (who === 'rejected') return showSignIn(t('signin.rejected'));
  document.getElementById('tabs').hidden = false;
  if (!(await cachedStandards()).length) await syncAll();
  else syncAll();
  await route();
}

async function main() {
  await setLanguage(preferredLanguage());
  renderNet();
  window.addEventListener('online', () => { renderNet(); syncAll(); });
  window.addEventListener('offline', renderNet);
  window.addEventListener('hashchange', route);
  window.addEventListener('outbox-changed', renderOutboxBadge);
  window.addEventListener('language-changed', () => { renderNet(); renderWho(); renderOutboxBadge(); });
  document.addEventListener('visibilitychange', () => { if (!document.hidden && navigator.onLine) syncOutbox(); });
  if ('serviceWorker' in navigator) navigator.serviceWorker.register('sw.js', { scope: './' }).catch(() => {});
  persist();
  renderOutboxBadge();
  await boot();
  document.body.dataset.ready = '1'; // for tests and for anyone waiting on start-up
}

main().catch((e) => {
  console.error(e);
  show(h('h1', 'Kipimo'), h('p.alert.error', String(e && e.message || e)));
});
