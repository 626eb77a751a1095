// The one place that talks to the Kipimo API. Errors come out as two kinds:
// NetworkError (no answer: offline, DNS, timeout, 5xx gateway) -> keep and retry;
// ApiError (the server answered no) -> show the reason.
const TOKEN_KEY = 'kipimo.token';
const TIMEOUT_MS = 60000;

export class NetworkError extends Error {}
export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.problems = (body && Array.isArray(body.problems)) ? body.problems : [];
  }
}

export const getToken = () => localStorage.getItem(TOKEN_KEY);
export const setToken = (token) => localStorage.setItem(TOKEN_KEY, token);
export const clearToken = () => localStorage.removeItem(TOKEN_KEY);

// Accepts a bare token or anything that contains "#token=..." / "?token=..." (a scanned QR URL).
export function extractToken(text) {
  const s = String(text || '').trim();
  const m = s.match(/[#?&]token=([^&#\s]+)/);
  if (m) return decodeURIComponent(m[1]);
  return /^[A-Za-z0-9._~+\/=-]{8,}$/.test(s) ? s : null;
}

export async function request(path, { method = 'GET', body, token = getToken(), raw = false } = {}) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), TIMEOUT_MS);
  let res;
  try {
    res = await fetch(path, { method, headers, body, cache: 'no-store', signal: ctrl.signal });
  } catch (e) {
    throw new NetworkError(e && e.name === 'AbortError' ? 'timeout' : String(e && e.message || e));
  } finally {
    clearTimeout(timer);
  }
  // Gateways and a restarting server answer 502-504: that is "not reachable", not "refused".
  if ([502, 503, 504].includes(res.status)) throw new NetworkError(`HTTP ${res.status}`);
  if (!res.ok) {
    let data = null;
    try { data = await res.json(); } catch { /* not JSON */ }
    throw new ApiError(res.status, data);
  }
  if (raw) return res;
  return res.status === 204 ? null : res.json();
}

export const api = {
  me: () => request('/api/v1/me'),
  standards: () => request('/api/v1/standards'),
  standard: (product) => request(`/api/v1/standards/${encodeURIComponent(product)}`),
  submissions: (limit = 20) => request(`/api/v1/submissions?limit=${limit}`),
  submit: (form) => request('/api/v1/submissions', { method: 'POST', body: form }),
  // Photos and overlays need the token, so they are fetched and shown as blob: URLs.
  async imageUrl(url) {
    const res = await request(url, { raw: true });
    return URL.createObjectURL(await res.blob());
  },
};
