// The verdict: pass / fail / review, every check's result explained, the annotated
// photos, and a direct "retake" path when the quality gate could not use a photo.
import { api } from './api.js';
import { formatNumber, t } from './i18n.js';
import { h, show } from './ui.js';

const ICONS = { pass: '✓', fail: '✗', inconclusive: '?', not_applicable: '–' };

export function isRetake(result) {
  return result.status === 'inconclusive' && result.slot && /retake/i.test(result.message || '');
}

function checkName(result, standard) {
  if (standard) {
    if (result.kind === 'item') {
      const item = (standard.items || []).find((i) => i.id === result.check_id);
      if (item) return item.prompt;
    } else {
      const slot = (standard.photos || []).find((p) => p.id === result.slot);
      if (slot) return `${slot.prompt} — ${result.check_id}`;
    }
  }
  return result.slot ? `${result.slot} — ${result.check_id}` : result.check_id;
}

function limitsText(r) {
  const unit = r.unit ? ` ${r.unit}` : '';
  if (r.lower != null && r.upper != null) return t('accept.between', { min: formatNumber(r.lower), max: formatNumber(r.upper), unit });
  if (r.lower != null) return t('accept.at_least', { min: formatNumber(r.lower), unit });
  if (r.upper != null) return t('accept.at_most', { max: formatNumber(r.upper), unit });
  return '';
}

function valueText(r) {
  if (typeof r.value !== 'number') return '';
  const unit = r.unit ? ` ${r.unit}` : '';
  const u = typeof r.uncertainty === 'number' ? ` ± ${formatNumber(r.uncertainty, 3)}` : '';
  return t('verdict.measured', { value: `${formatNumber(r.value, 3)}${u}${unit}` });
}

function shown(value, unit) {
  if (value === true) return t('common.yes');
  if (value === false) return t('common.no');
  if (typeof value === 'number') return `${formatNumber(value)}${unit ? ` ${unit}` : ''}`;
  return String(value);
}

// Items are explained from the result's fields in the technician's language; photo checks
// add the server's message, which carries the measurement's or the gate's own explanation.
function details(r) {
  if (r.kind === 'item') {
    const parts = [];
    if (r.value !== null && r.value !== undefined) parts.push(t('verdict.answer', { value: shown(r.value, r.unit) }));
    if (Array.isArray(r.accepted) && r.accepted.length) parts.push(t('accept.value', { value: r.accepted.map((v) => shown(v)).join(', ') }));
    else if (limitsText(r)) parts.push(limitsText(r));
    return parts.length ? [parts.join(' · ')] : [];
  }
  const line = [valueText(r), limitsText(r)].filter(Boolean).join(' · ');
  return [line, r.message].filter(Boolean);
}

function resultRow(r, standard) {
  const status = r.status || 'not_applicable';
  return h('li.result', { 'data-check': r.check_id, 'data-status': status },
    h('span.icon', { 'aria-hidden': 'true' }, ICONS[status] || '•'),
    h('span.name', checkName(r, standard), ' ', h(`span.status.${status}`, t(`status.${status}`))),
    details(r).map((d) => h('span.detail', d)));
}

// The gate's failed metrics, as advice in the technician's language (the server's English
// message is the fallback for a metric this version of the app does not know).
const KNOWN_METRICS = ['card_markers', 'resolution', 'sharpness', 'dark', 'bright', 'glare', 'tilt', 'pixels'];
export function retakeAdvice(photo) {
  const metrics = (photo && photo.quality && photo.quality.metrics) || [];
  return metrics.filter((m) => !m.passed).map((m) => {
    const text = KNOWN_METRICS.includes(m.name) ? t(`retake.${m.name}`) : (m.message || m.name);
    const nums = typeof m.value === 'number' && typeof m.limit === 'number'
      ? ` (${formatNumber(m.value, 2)} / ${m.kind === 'max' ? '≤' : '≥'} ${formatNumber(m.limit, 2)})` : '';
    return text + nums;
  });
}

// `context.draft` (the inspection just sent) enables retake and "next unit".
export function showVerdict(response, context = {}) {
  const { draft = null } = context;
  const standard = draft ? draft.standard : null;
  const verdict = response.verdict || 'review';
  const results = response.results || [];
  const retakes = new Map();
  for (const r of results) if (isRetake(r) && !retakes.has(r.slot)) retakes.set(r.slot, r);
  const failed = results.filter((r) => r.status === 'fail');
  const order = { fail: 0, inconclusive: 1, pass: 2, not_applicable: 3 };
  const sorted = [...results].sort((a, b) => (order[a.status] ?? 9) - (order[b.status] ?? 9));

  const overlays = h('div');
  for (const p of response.photos || []) {
    const url = p.overlay_url || p.url;
    if (!url) continue;
    const img = h('img.overlay', { alt: t('verdict.overlay_alt', { slot: p.slot }) });
    overlays.append(img);
    api.imageUrl(url).then((blobUrl) => { img.src = blobUrl; }).catch(() => img.remove());
  }

  const retakeButtons = [...retakes.values()].map((r) => {
    const slot = standard && (standard.photos || []).find((p) => p.id === r.slot);
    const photo = (response.photos || []).find((p) => p.slot === r.slot);
    const advice = retakeAdvice(photo);
    return h('div.alert.warn', { role: 'alert', 'data-retake': r.slot },
      h('p', h('strong', t('verdict.retake_needed', { prompt: slot ? slot.prompt : r.slot }))),
      advice.length ? h('ul', advice.map((a) => h('li', a))) : h('p', r.message),
      draft ? h('button.btn', { type: 'button', class: 'retake', onclick: async () => {
        const { retakePhoto } = await import('./inspect.js');
        retakePhoto(draft, r.slot);
      } }, t('verdict.retake')) : null);
  });

  show(
    h('h1', t('verdict.title')),
    h(`div.verdict.${verdict}`, { id: 'verdict', 'data-verdict': verdict, role: 'status' },
      h('strong', t(`verdict.${verdict}`)),
      h('span', verdict === 'pass' ? t('verdict.pass_help') : verdict === 'fail' ? t('verdict.fail_help', { n: failed.length }) : t('verdict.review_help'))),
    retakeButtons,
    h('h2', t('verdict.checks')),
    results.length ? h('ul.list', sorted.map((r) => resultRow(r, standard))) : h('p.muted', t('verdict.no_checks')),
    overlays,
    h('dl.summary',
      h('dt', t('verdict.record')), h('dd', String(response.id || '').slice(0, 8)),
      response.standard ? [h('dt', t('verdict.standard')), h('dd', `${response.standard.product} v${response.standard.version}`)] : null),
    draft ? h('button.btn', { type: 'button', id: 'next-unit', onclick: async () => {
      const { startInspection } = await import('./inspect.js');
      startInspection(draft.standard, { technician: draft.technician, keep: { lot: draft.lot, answers: {} } });
    } }, t('verdict.next_unit')) : null,
    h('a.btn.secondary', { href: '#/' }, t('verdict.done')),
  );
}
