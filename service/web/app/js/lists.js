// The outbox (what this phone has queued or sent) and the node's recent submissions.
import { api, NetworkError } from './api.js';
import { formatDateTime, t } from './i18n.js';
import { enqueue, entries, remove, retry, syncOutbox } from './outbox.js';
import { cachedStandards } from './standards.js';
import { db } from './store.js';
import { h, show } from './ui.js';
import { showVerdict } from './verdict.js';

function label(record) {
  return [record.lot && `${t('inspect.lot')} ${record.lot}`, record.unit && `${t('inspect.unit')} ${record.unit}`].filter(Boolean).join(' · ');
}

function entryRow(e) {
  const name = (e.meta && e.meta.name) || e.record.product;
  const li = h('li.card', { 'data-id': e.id, 'data-status': e.status },
    h('p', h('strong', name), ' ', h(`span.status.${e.status}`, t(`outbox.status.${e.status}`))),
    h('p.muted', `${label(e.record)} · ${formatDateTime(e.record.captured_at)}`));
  if (e.status === 'pending') {
    const wait = Math.max(0, Math.round(((e.nextAttemptAt || 0) - Date.now()) / 1000));
    li.append(h('p.muted', !navigator.onLine ? t('outbox.waiting_network') : wait > 0 ? t('outbox.retry_in', { s: wait }) : t('outbox.due')));
  }
  if (e.status === 'sent' && e.response) {
    const v = e.response.verdict;
    li.append(h('p', t('outbox.verdict'), ' ', h(`span.status.${v}`, t(`verdict.${v}`))),
      h('button.btn.small.secondary', { type: 'button', onclick: () => showVerdict(e.response) }, t('outbox.show')));
  }
  if (e.status === 'failed') {
    li.append(h('p.error', t('outbox.reason', { reason: e.error || '' })),
      h('ul', (e.problems || []).map((p) => h('li', p.field ? `${p.field}: ${p.reason}` : p.reason))),
      h('div.row',
        h('button.btn.small.secondary', { type: 'button', onclick: async () => { await retry(e.id); } }, t('outbox.retry')),
        h('button.btn.small.danger', { type: 'button', onclick: async () => { if (confirm(t('outbox.confirm_delete'))) await remove(e.id); } }, t('outbox.delete'))));
  }
  if (e.status === 'conflict') {
    li.append(h('p.error', t('outbox.conflict_help')),
      h('div.row',
        h('button.btn.small.secondary', { type: 'button', onclick: async () => {
          // Keep the content, give it a new identity: the server sees a new record.
          const { uuid } = await import('./inspect.js');
          await enqueue({ ...e.record, id: uuid() }, e.photos, e.meta);
          await remove(e.id);
          syncOutbox({ force: true });
        } }, t('outbox.send_as_new')),
        h('button.btn.small.danger', { type: 'button', onclick: async () => { if (confirm(t('outbox.confirm_delete'))) await remove(e.id); } }, t('outbox.delete'))));
  }
  return li;
}

let outboxOpen = false;
window.addEventListener('outbox-changed', () => { if (outboxOpen && location.hash === '#/outbox') renderOutbox(); });
window.addEventListener('hashchange', () => { outboxOpen = location.hash === '#/outbox'; });

async function renderOutbox() {
  const all = await entries();
  const waiting = all.filter((e) => e.status !== 'sent');
  const sent = all.filter((e) => e.status === 'sent').slice(0, 30);
  const focused = document.activeElement && document.activeElement.id;
  show(
    h('h1', t('outbox.title')),
    h('p', { id: 'outbox-summary', role: 'status' }, waiting.length ? t('outbox.summary', { n: waiting.length }) : t('outbox.empty')),
    waiting.length ? h('button.btn', { type: 'button', id: 'send-now', onclick: () => syncOutbox({ force: true }) }, t('outbox.send_now')) : null,
    h('ul.list', { id: 'outbox-list' }, waiting.map(entryRow)),
    sent.length ? [h('h2', t('outbox.sent_title')), h('ul.list', { id: 'sent-list' }, sent.map(entryRow))] : null,
  );
  if (focused === 'send-now') document.getElementById('send-now')?.focus();
}

export async function showOutbox() {
  outboxOpen = true;
  await renderOutbox();
}

export async function showHistory() {
  let items = null;
  let offline = false;
  try {
    const data = await api.submissions(20);
    items = Array.isArray(data) ? data : (data.submissions || data.items || []);
    await db.put('kv', { at: new Date().toISOString(), items }, 'history');
  } catch (e) {
    const cached = await db.get('kv', 'history');
    offline = true;
    items = cached ? cached.items : [];
    if (!(e instanceof NetworkError)) offline = e.message;
    if (cached) offline = { reason: offline, at: cached.at };
  }
  const names = new Map((await cachedStandards()).map((st) => [st.product, st.name]));
  const note = offline ? h('p.alert.info', offline.at ? t('history.cached', { when: formatDateTime(offline.at) }) : t('history.offline')) : null;
  show(
    h('h1', t('history.title')),
    note,
    items.length ? h('ul.list', { id: 'history-list' }, items.map((s) => {
      const v = s.verdict || 'review';
      return h('li.card', { 'data-id': s.id },
        h('p', h('strong', s.product ? `${names.get(s.product) || s.product} v${s.standard_version ?? s.standard?.version ?? ''}` : s.id), ' ', h(`span.status.${v}`, t(`verdict.${v}`))),
        h('p.muted', [label(s), formatDateTime(s.captured_at || s.received_at || s.created_at), s.technician].filter(Boolean).join(' · ')));
    })) : h('p.muted', t('history.empty')),
  );
}
