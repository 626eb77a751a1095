// The inspection wizard: lot/unit, one screen per photo slot, one per group of checklist
// items, a review screen, then submit (through the outbox, so nothing is ever lost).
import { formatNumber, t } from './i18n.js';
import { enqueue, remove, submitEntry } from './outbox.js';
import { currentPosition, preparePhoto } from './photo.js';
import { canScan, scanCode } from './scan.js';
import { itemGroups } from './standards.js';
import { h, nextId, show } from './ui.js';
import { showVerdict } from './verdict.js';

let draft = null; // the inspection in progress (kept in memory; photos as Blobs)

export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // Plain-HTTP pages (no secure context) lack randomUUID; build a v4 UUID by hand.
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const x = [...b].map((v) => v.toString(16).padStart(2, '0')).join('');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

function stepsFor(standard) {
  return [
    { kind: 'ids' },
    ...(standard.photos || []).map((slot) => ({ kind: 'photo', slot })),
    ...itemGroups(standard.items || []).map((group, i, all) => ({ kind: 'items', group, index: i + 1, of: all.length })),
    { kind: 'review' },
  ];
}

export function startInspection(standard, { technician, keep = null } = {}) {
  draft = {
    standard, technician, steps: stepsFor(standard), step: 0,
    lot: keep ? keep.lot : '', unit: '', answers: keep ? { ...keep.answers } : {}, photos: {},
  };
  if (location.hash !== '#/inspect') history.pushState(null, '', '#/inspect');
  render();
}

export function resumeInspection() {
  if (!draft) return false;
  render();
  return true;
}

// From the verdict screen: the same inspection again with one photo to take anew.
export function retakePhoto(previous, slotId) {
  draft = { ...previous, photos: { ...previous.photos }, steps: stepsFor(previous.standard) };
  delete draft.photos[slotId];
  draft.step = draft.steps.findIndex((s) => s.kind === 'photo' && s.slot.id === slotId);
  draft.retake = slotId;
  if (location.hash !== '#/inspect') history.pushState(null, '', '#/inspect');
  render();
}

// --- validation ----------------------------------------------------------------------
function parseNumber(text) {
  const s = String(text).trim().replace(',', '.'); // "1,5" is how half the world types it
  if (s === '' || !/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) return NaN;
  return Number(s);
}

function isEmpty(v) {
  return v === undefined || v === null || (typeof v === 'string' && v.trim() === '');
}

// Problems with the current answers: [{step, id, message}], in screen order.
function problems(d, onlyStep = null) {
  const out = [];
  d.steps.forEach((step, i) => {
    if (onlyStep !== null && i !== onlyStep) return;
    if (step.kind === 'ids' && isEmpty(d.lot)) out.push({ step: i, id: 'lot', message: t('inspect.lot_required') });
    if (step.kind === 'photo' && step.slot.required !== false && !d.photos[step.slot.id]) {
      out.push({ step: i, id: `photo-${step.slot.id}`, message: t('inspect.photo_required', { prompt: step.slot.prompt }) });
    }
    if (step.kind !== 'items') return;
    for (const item of step.group.items) {
      const v = d.answers[item.id];
      if (item.type === 'number' && !isEmpty(v) && Number.isNaN(parseNumber(v))) {
        out.push({ step: i, id: item.id, message: t('inspect.not_a_number', { prompt: item.prompt }) });
      } else if (item.required !== false && isEmpty(v)) {
        out.push({ step: i, id: item.id, message: t('inspect.answer_required', { prompt: item.prompt }) });
      }
    }
  });
  return out;
}

function normalisedAnswers(d) {
  const out = {};
  for (const item of d.standard.items || []) {
    const v = d.answers[item.id];
    if (isEmpty(v)) continue;
    out[item.id] = item.type === 'number' ? parseNumber(v) : item.type === 'text' ? String(v) : v;
  }
  return out;
}

// --- rendering -----------------------------------------------------------------------
function acceptText(item) {
  const unit = item.unit ? ` ${item.unit}` : '';
  if (item.type === 'number') {
    if (item.min != null && item.max != null) return t('accept.between', { min: formatNumber(item.min), max: formatNumber(item.max), unit });
    if (item.min != null) return t('accept.at_least', { min: formatNumber(item.min), unit });
    if (item.max != null) return t('accept.at_most', { max: formatNumber(item.max), unit });
    return null;
  }
  if (item.type === 'boolean' && typeof item.pass_if === 'boolean') return t('accept.value', { value: item.pass_if ? t('common.yes') : t('common.no') });
  if (item.type === 'choice' && Array.isArray(item.pass_if)) return t('accept.value', { value: item.pass_if.join(', ') });
  return null;
}

function rangeWarning(item, raw) {
  if (item.type !== 'number' || isEmpty(raw)) return '';
  const x = parseNumber(raw);
  if (Number.isNaN(x)) return '';
  if ((item.min != null && x < item.min) || (item.max != null && x > item.max)) return t('inspect.out_of_range');
  return '';
}

function itemField(item) {
  const id = `item-${item.id}`;
  const errId = `${id}-err`;
  const helpId = `${id}-help`;
  const acceptId = `${id}-accept`;
  const required = item.required !== false;
  const accept = acceptText(item);
  const describedBy = [item.help ? helpId : null, accept ? acceptId : null, errId].filter(Boolean).join(' ');
  const err = h('p.error', { id: errId, 'aria-live': 'polite' });
  const warn = h('p.warn', { 'aria-live': 'polite' });
  const labelText = [item.prompt, required ? h('span.req', { 'aria-hidden': 'true' }, ' *') : h('span.muted', ` (${t('common.optional')})`)];
  const help = item.help ? h('p.help', { id: helpId }, item.help) : null;
  const acc = accept ? h('p.accept', { id: acceptId }, accept) : null;
  const set = (v) => { draft.answers[item.id] = v; err.textContent = ''; };
  const wrap = h('div.field', { 'data-item': item.id });

  if (item.type === 'boolean' || item.type === 'choice') {
    const options = item.type === 'boolean' ? [[true, t('common.yes')], [false, t('common.no')]] : item.options.map((o) => [o, o]);
    const cols = options.length > 4 ? '.wide' : options.length === 3 && options.every(([, x]) => x.length <= 8) ? '.three' : '';
    const grid = h(`div.choices${cols}`);
    const fs = h('fieldset.group', { 'aria-describedby': describedBy, 'aria-required': required ? 'true' : null },
      h('legend', labelText), help, acc, grid);
    const name = nextId('radio');
    options.forEach(([value, text]) => {
      grid.append(h('label.choice', h('input', { type: 'radio', name, value: String(value), checked: draft.answers[item.id] === value,
        required, onchange: () => set(value) }), h('span', text)));
    });
    wrap.append(fs, err);
    return wrap;
  }
  const common = { id, 'aria-describedby': describedBy, required, 'aria-required': required ? 'true' : null };
  let input;
  if (item.type === 'number') {
    const box = h('input', { ...common, type: 'text', inputMode: 'decimal', autocomplete: 'off', value: draft.answers[item.id] ?? '',
      oninput: () => { set(box.value); warn.textContent = rangeWarning(item, box.value); },
      onblur: () => {
        const bad = !isEmpty(box.value) && Number.isNaN(parseNumber(box.value));
        err.textContent = bad ? t('inspect.enter_number') : '';
        box.setAttribute('aria-invalid', bad ? 'true' : 'false');
      } });
    warn.textContent = rangeWarning(item, box.value);
    input = h('div.with-unit', box, item.unit ? h('span.unit', { 'aria-hidden': 'true' }, item.unit) : null);
  } else if (item.type === 'date') {
    input = h('input', { ...common, type: 'date', value: draft.answers[item.id] ?? '', oninput: (e) => set(e.target.value) });
  } else {
    input = h('textarea', { ...common, rows: 3, value: draft.answers[item.id] ?? '', oninput: (e) => set(e.target.value) });
  }
  const unitLabel = item.unit ? h('span.muted', ` (${item.unit})`) : null;
  // DOM append() writes null as the text "null": leave out the help and acceptance lines an item lacks
  wrap.append(...[h('label', { htmlFor: id }, labelText, unitLabel), help, acc, input, warn, err].filter(Boolean));
  return wrap;
}

function idsStep() {
  const field = (key, labelKey, required) => {
    const id = `id-${key}`;
    const input = h('input', { id, type: 'text', autocomplete: 'off', autocapitalize: 'characters', value: draft[key],
      required, 'aria-required': required ? 'true' : null, 'aria-describedby': `${id}-err`,
      oninput: () => { draft[key] = input.value.trim(); } });
    const scan = canScan() ? h('button.btn.secondary', { type: 'button', 'aria-label': t('inspect.scan_field', { field: t(labelKey) }),
      onclick: async () => { const code = await scanCode(); if (code) { input.value = code; draft[key] = code.trim(); } } }, t('inspect.scan')) : null;
    return h('div.field', { 'data-item': key },
      h('label', { htmlFor: id }, t(labelKey), required ? h('span.req', { 'aria-hidden': 'true' }, ' *') : h('span.muted', ` (${t('common.optional')})`)),
      h('div.with-scan', input, scan), h('p.error', { id: `${id}-err`, 'aria-live': 'polite' }));
  };
  return [h('h1', t('inspect.ids_title')), field('lot', 'inspect.lot', true), field('unit', 'inspect.unit', false)];
}

function photoStep(slot) {
  const capture = draft.standard.capture || {};
  const id = `photo-${slot.id}`;
  const have = draft.photos[slot.id];
  const status = h('p.photo-meta', { 'aria-live': 'polite' });
  const err = h('p.error', { id: `${id}-err`, 'aria-live': 'polite' });
  const preview = h('div');
  const showPhoto = (p) => {
    preview.replaceChildren(h('img.preview', { src: p.url, alt: t('inspect.preview_alt', { prompt: slot.prompt }) }));
    status.textContent = t('inspect.photo_meta', { w: p.width, h: p.height, kb: Math.round(p.blob.size / 1024) });
    if (slot.min_pixels && p.width * p.height < slot.min_pixels) err.textContent = t('inspect.photo_too_small');
  };
  const input = h('input', { id, type: 'file', accept: 'image/*', capture: 'environment', 'aria-describedby': `${id}-err`,
    onchange: async () => {
      const file = input.files && input.files[0];
      if (!file) return;
      err.textContent = '';
      status.textContent = t('inspect.photo_processing');
      try {
        const p = await preparePhoto(file, capture);
        if (draft.photos[slot.id]) URL.revokeObjectURL(draft.photos[slot.id].url);
        draft.photos[slot.id] = { ...p, url: URL.createObjectURL(p.blob) };
        showPhoto(draft.photos[slot.id]);
        label.textContent = t('inspect.retake');
      } catch (e) {
        status.textContent = '';
        err.textContent = t('inspect.photo_unreadable');
      }
      input.value = '';
    } });
  const label = h('label.btn', { htmlFor: id }, have ? t('inspect.retake') : t('inspect.take_photo'));
  if (have) showPhoto(have);
  return [
    h('h1', slot.prompt, slot.required === false ? h('span.muted', ` (${t('common.optional')})`) : null),
    slot.help ? h('p.help', slot.help) : null,
    draft.retake === slot.id ? h('p.alert.warn', t('inspect.retake_hint')) : null,
    slot.card !== false ? h('p.alert.info', t('inspect.card_hint')) : null,
    h('div.photo-pick', { 'data-item': id }, input, label),
    preview, status, err,
  ];
}

function itemsStep(step) {
  const title = step.group.title || (step.of > 1 ? t('inspect.checklist_n', { n: step.index, of: step.of }) : t('inspect.checklist'));
  return [h('h1', title), ...step.group.items.map(itemField)];
}

function reviewStep() {
  const d = draft;
  const list = problems(d);
  const dl = h('dl.summary',
    h('dt', t('inspect.product')), h('dd', `${d.standard.name || d.standard.product} (v${d.standard.version})`),
    h('dt', t('inspect.lot')), h('dd', d.lot || '—'),
    h('dt', t('inspect.unit')), h('dd', d.unit || '—'),
    h('dt', t('inspect.photos')), h('dd', `${Object.keys(d.photos).length} / ${(d.standard.photos || []).length}`),
    h('dt', t('inspect.answers')), h('dd', `${Object.keys(normalisedAnswers(d)).length} / ${(d.standard.items || []).length}`));
  return [
    h('h1', t('inspect.review_title')),
    dl,
    list.length ? problemList(list) : h('p.muted', t('inspect.ready')),
    h('div.alert.error', { id: 'submit-error', role: 'alert', hidden: true }),
  ];
}

function problemList(list) {
  return h('div.alert.error', { role: 'alert', id: 'problems' },
    h('p', t('inspect.cannot_submit')),
    h('ul', list.map((p) => h('li', h('a', { href: '#/inspect', onclick: (e) => { e.preventDefault(); draft.step = p.step; render(); } }, p.message)))));
}

function render() {
  const d = draft;
  const step = d.steps[d.step];
  let body;
  if (step.kind === 'ids') body = idsStep();
  else if (step.kind === 'photo') body = photoStep(step.slot);
  else if (step.kind === 'items') body = itemsStep(step);
  else body = reviewStep();
  const pct = Math.round((100 * (d.step + 1)) / d.steps.length);
  const stepErr = h('div', { id: 'step-problems' });
  const back = h('button.btn.secondary', { type: 'button', id: 'back', onclick: () => {
    if (d.step === 0) { draft = null; location.hash = '#/'; return; }
    d.step -= 1; render();
  } }, d.step === 0 ? t('common.cancel') : t('common.back'));
  const isLast = step.kind === 'review';
  const next = h('button.btn', { type: 'button', id: isLast ? 'submit' : 'next', onclick: async () => {
    const found = problems(d, isLast ? null : d.step);
    if (found.length) {
      stepErr.replaceChildren(problemList(found));
      for (const p of found) markInvalid(p);
      stepErr.querySelector('[role=alert]').focus?.();
      return;
    }
    if (isLast) { next.disabled = true; await submit(); return; }
    d.step += 1; render();
  } }, isLast ? t('inspect.submit') : t('common.next'));
  show(
    h('p.progress', `${d.standard.name || d.standard.product} · v${d.standard.version} · ${t('inspect.step', { n: d.step + 1, of: d.steps.length })}`),
    h('div.bar', { role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': pct, 'aria-label': t('inspect.progress') }, h('i', { style: `width:${pct}%` })),
    body, stepErr, h('div.row.stickybar', back, next),
  );
}

function markInvalid(p) {
  const field = document.querySelector(`[data-item="${CSS.escape(p.id)}"]`);
  if (!field) return;
  const err = field.querySelector('.error');
  if (err) err.textContent = p.message;
  const control = field.querySelector('input, textarea');
  if (control && control.type !== 'radio' && control.type !== 'file') control.setAttribute('aria-invalid', 'true');
}

// --- submit ----------------------------------------------------------------------------
async function submit() {
  const d = draft;
  const capture = d.standard.capture || {};
  const record = {
    id: uuid(),
    product: d.standard.product,
    standard_version: d.standard.version,
    lot: d.lot,
    unit: d.unit || null,
    technician: d.technician || null,
    captured_at: new Date().toISOString(),
    answers: normalisedAnswers(d),
  };
  if (capture.location) {
    const where = await currentPosition();
    if (where) record.location = where;
  }
  const photos = Object.fromEntries(Object.entries(d.photos).map(([slot, p]) => [slot, p.blob]));
  const entry = await enqueue(record, photos, { name: d.standard.name, sha256: d.standard.sha256 });
  show(h('h1', t('submit.sending')), h('p.muted', t('submit.sending_help')));
  const done = await submitEntry(entry);
  const finished = { ...d };
  if (done && done.status === 'sent') {
    draft = null;
    showVerdict(done.response, { draft: finished, entry: done });
  } else if (done && (done.status === 'failed' || done.status === 'conflict')) {
    showRefused(done, finished);
  } else {
    draft = null;
    showQueued(finished);
  }
}

function showQueued(d) {
  show(
    h('h1', t('submit.queued_title')),
    h('p.alert.warn', { role: 'status' }, t('submit.queued')),
    h('button.btn', { type: 'button', id: 'next-unit', onclick: () => startInspection(d.standard, { technician: d.technician, keep: { lot: d.lot, answers: {} } }) }, t('verdict.next_unit')),
    h('a.btn.secondary', { href: '#/outbox' }, t('submit.see_outbox')),
  );
}

function showRefused(entry, d) {
  show(
    h('h1', entry.status === 'conflict' ? t('outbox.conflict_title') : t('submit.refused_title')),
    h('div.alert.error', { role: 'alert' },
      h('p', entry.status === 'conflict' ? t('outbox.conflict_help') : entry.error || ''),
      entry.problems && entry.problems.length ? h('ul', entry.problems.map((p) => h('li', p.field ? `${p.field}: ${p.reason}` : p.reason))) : null),
    h('button.btn', { type: 'button', id: 'fix', onclick: async () => {
      await remove(entry.id);
      draft = { ...d, step: d.steps.length - 1 };
      render();
    } }, t('submit.fix')),
    h('a.btn.secondary', { href: '#/outbox' }, t('submit.see_outbox')),
  );
}
