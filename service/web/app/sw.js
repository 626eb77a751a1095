// Service worker: the app shell works offline after the first visit.
// Shell files: served from the cache at once, refreshed from the network in the
// background (stale-while-revalidate), so a new release shows on the next start.
// API calls are never cached here: the app keeps its own data in IndexedDB.
const CACHE = 'kipimo-shell-v1';
const SHELL = [
  './', 'index.html', 'app.js', 'styles.css', 'manifest.webmanifest',
  'js/api.js', 'js/i18n.js', 'js/inspect.js', 'js/lists.js', 'js/outbox.js', 'js/photo.js',
  'js/scan.js', 'js/standards.js', 'js/store.js', 'js/ui.js', 'js/verdict.js',
  'i18n/en.json', 'i18n/fr.json', 'i18n/pt.json',
  'icons/icon.svg', 'icons/icon-192.png', 'icons/icon-512.png', 'icons/icon-maskable-512.png',
];

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) if (key !== CACHE) await caches.delete(key);
    await self.clients.claim();
  })());
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== 'GET' || url.origin !== self.location.origin || !url.pathname.startsWith('/app/')) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    // Any page URL (with or without #token=...) is the one shell.
    const key = req.mode === 'navigate' ? new URL('./', self.location).href : url.origin + url.pathname;
    const cached = await cache.match(key);
    const refresh = fetch(req.mode === 'navigate' ? key : req).then((res) => {
      if (res.ok) cache.put(key, res.clone());
      return res;
    });
    if (cached) {
      event.waitUntil(refresh.catch(() => {}));
      return cached;
    }
    return refresh;
  })());
});
