// The node's products and their standards in force, kept in IndexedDB for offline use.
// A sync fetches the list, downloads only what changed (by sha256) and drops the rest,
// so a version newly published by a manager replaces the cached one.
import { api } from './api.js';
import { db } from './store.js';

function listOf(data) {
  if (Array.isArray(data)) return data;
  for (const key of ['items', 'standards']) if (data && Array.isArray(data[key])) return data[key];
  return [];
}

// GET /standards lists every published version; the one in force per product is the
// highest released version.
export function currentVersions(listed) {
  const best = new Map();
  for (const s of listed) {
    if (!s.product || (s.status && s.status !== 'released')) continue;
    const have = best.get(s.product);
    if (!have || s.version > have.version) best.set(s.product, s);
  }
  return [...best.values()];
}

// GET /standards/{product} answers {product, version, sha256, ..., document: {...}}: keep one
// flat object (the document's fields plus the identity of the exact version).
export function flatten(answer) {
  const doc = answer.document || answer;
  return { ...doc, product: answer.product || doc.product, name: answer.name || doc.name,
    version: answer.version ?? doc.version, sha256: answer.sha256 || doc.sha256, status: answer.status || doc.status };
}

export async function syncStandards() {
  const listed = currentVersions(listOf(await api.standards()));
  const cached = new Map((await db.all('standards')).map((s) => [s.product, s]));
  const fresh = [];
  for (const entry of listed) {
    const have = cached.get(entry.product);
    const same = have && entry.sha256 && have.sha256 === entry.sha256 && have.version === entry.version;
    fresh.push(same ? have : flatten(await api.standard(entry.product)));
  }
  await db.replaceAll('standards', fresh);
  await db.put('kv', new Date().toISOString(), 'standardsSyncedAt');
  return fresh;
}

export async function cachedStandards() {
  const all = await db.all('standards');
  return all.sort((a, b) => (a.name || a.product).localeCompare(b.name || b.product));
}

export const cachedStandard = (product) => db.get('standards', product);

// Screens for the wizard: lot/unit, then one per photo slot, then the checklist in groups.
// Items may name a `group`; otherwise consecutive items are grouped a few per screen.
export const GROUP_SIZE = 4;
export function itemGroups(items) {
  const groups = [];
  if (items.some((i) => i.group)) {
    for (const item of items) {
      const last = groups[groups.length - 1];
      if (last && last.title === (item.group || '')) last.items.push(item);
      else groups.push({ title: item.group || '', items: [item] });
    }
    return groups;
  }
  for (let i = 0; i < items.length; i += GROUP_SIZE) groups.push({ title: '', items: items.slice(i, i + GROUP_SIZE) });
  return groups;
}
