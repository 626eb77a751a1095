// The outbox: every record is stored here (with its photo blobs) BEFORE it is sent, and
// stays until the server has answered. The UUID makes resending safe: the server answers
// the same record again with the same verdict, so a record is never stored twice.
//   pending -> sent                (2xx)
//   pending -> pending, later     (no answer: offline, timeout, 502-504) with back-off
//   pending -> conflict           (409: the id exists with other content; the technician decides)
//   pending -> failed             (other 4xx/5xx: shown with the reason, retried only by hand)
import { api, ApiError, NetworkError } from './api.js';
import { db } from './store.js';

const BASE_DELAY_S = 5;
const MAX_DELAY_S = 300;
const KEEP_SENT = 50; // sent records listed on this phone (their photos are dropped once sent)
let running = null;
let timer = null;
let again = false; // a forced sync was asked for while one was running
const inFlight = new Set(); // ids being sent right now by this page

const changed = () => window.dispatchEvent(new CustomEvent('outbox-changed'));

export function backoffSeconds(attempts) {
  return Math.min(MAX_DELAY_S, BASE_DELAY_S * 2 ** Math.max(0, attempts - 1));
}

export async function entries() {
  const all = await db.all('outbox');
  return all.sort((a, b) => (b.createdAt || '').localeCompare(a.createdAt || ''));
}

export async function enqueue(record, photos, meta = {}) {
  const entry = {
    id: record.id, record, photos, meta, status: 'pending', attempts: 0,
    createdAt: new Date().toISOString(), nextAttemptAt: 0, error: null, problems: [], response: null,
  };
  await db.put('outbox', entry);
  changed();
  return entry;
}

function formFor(entry) {
  const form = new FormData();
  form.append('record', new Blob([JSON.stringify(entry.record)], { type: 'application/json' }), 'record.json');
  for (const [slot, blob] of Object.entries(entry.photos || {})) form.append(slot, blob, `${slot}.jpg`);
  return form;
}

// One attempt for one entry; returns the updated entry. Never throws.
async function attempt(entry) {
  if (inFlight.has(entry.id)) return entry;
  inFlight.add(entry.id);
  try {
    return await attemptOnce(entry);
  } finally {
    inFlight.delete(entry.id);
  }
}

async function attemptOnce(entry) {
  entry.status = 'sending';
  await db.put('outbox', entry);
  changed();
  try {
    const response = await api.submit(formFor(entry));
    // The server has the photos now: free the phone's storage, keep the record and verdict.
    Object.assign(entry, { status: 'sent', response, sentAt: new Date().toISOString(), error: null, problems: [],
      photos: {} });
  } catch (e) {
    entry.attempts += 1;
    if (e instanceof ApiError) {
      entry.status = e.status === 409 ? 'conflict' : 'failed';
      Object.assign(entry, { error: e.message, problems: e.problems, httpStatus: e.status });
    } else {
      entry.status = 'pending';
      entry.error = e instanceof NetworkError ? 'network' : String(e);
      entry.nextAttemptAt = Date.now() + backoffSeconds(entry.attempts) * 1000;
    }
  }
  await db.put('outbox', entry);
  if (entry.status === 'sent') await pruneSent();
  changed();
  return entry;
}

async function pruneSent() {
  const sent = (await db.all('outbox')).filter((e) => e.status === 'sent')
    .sort((a, b) => (b.sentAt || '').localeCompare(a.sentAt || ''));
  for (const old of sent.slice(KEEP_SENT)) await db.del('outbox', old.id);
}

// Send what is due. `force` ignores back-off (app start, connection back, "send now").
export function syncOutbox({ force = false } = {}) {
  if (running) {
    // A forced run (connection back, app start) must not be lost behind one already under way
    // (for example a timer's attempt that is failing offline): run again when it ends.
    if (force) again = true;
    return running;
  }
  const work = async () => {
    const due = (await db.all('outbox'))
      .filter((e) => e.status === 'pending' || e.status === 'sending')
      .sort((a, b) => (a.createdAt || '').localeCompare(b.createdAt || ''));
    for (const entry of due) {
      if (!force && entry.nextAttemptAt > Date.now()) continue;
      const done = await attempt(entry);
      if (done.status === 'pending') break; // no connection: the rest would fail the same way
    }
    schedule();
  };
  // Several open tabs share one outbox: let only one of them send at a time.
  const locked = navigator.locks ? () => navigator.locks.request('kipimo-outbox', work) : work;
  running = locked().finally(() => {
    running = null;
    if (again) {
      again = false;
      syncOutbox({ force: true });
    }
  });
  return running;
}

// Submit now if we can; the entry is already safe in the outbox whatever happens.
export async function submitEntry(entry) {
  if (running) await running.catch(() => {});
  const current = await db.get('outbox', entry.id);
  if (!current || current.status === 'sent') return current;
  return attempt(current);
}

async function schedule() {
  clearTimeout(timer);
  if (!navigator.onLine) return; // the 'online' event starts the next sync; no attempts burnt meanwhile
  const pending = (await db.all('outbox')).filter((e) => e.status === 'pending');
  if (!pending.length) return;
  const next = Math.min(...pending.map((e) => e.nextAttemptAt || 0));
  timer = setTimeout(() => syncOutbox(), Math.max(1000, next - Date.now()));
}

export async function retry(id) {
  const entry = await db.get('outbox', id);
  if (!entry) return null;
  return attempt(entry);
}

export async function remove(id) {
  await db.del('outbox', id);
  changed();
}

export async function counts() {
  const c = { pending: 0, sending: 0, sent: 0, failed: 0, conflict: 0 };
  for (const e of await db.all('outbox')) c[e.status] = (c[e.status] || 0) + 1;
  return c;
}
