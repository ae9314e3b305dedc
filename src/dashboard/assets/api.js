// Voxplane's own API, called with the session cookie. Page scripts never
// see a token: the server keeps them in HttpOnly cookies and reads the
// CSRF token (a cookie the page can read) back from X-CSRF-Token.

export class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.error || body.message)) || (status ? `HTTP ${status}` : 'Network error'));
    this.status = status;
    this.code = body && body.code;
    this.details = body && body.details;
  }
}

export function csrf() {
  const m = document.cookie.match(/(?:^|;\s*)vp_csrf=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : '';
}

let projectId = null;
/** The project X-Project-Id names (null: account routes only). */
export function setProject(id) { projectId = id; }
export function currentProject() { return projectId; }

let onSignedOut = () => {};
/** What to do when the session is gone (the app shows the sign-in page). */
export function whenSignedOut(fn) { onSignedOut = fn; }

async function send(url, { method = 'GET', body, headers = {}, raw = false } = {}) {
  const h = { 'X-CSRF-Token': csrf(), ...headers };
  let payload;
  if (body instanceof FormData || body instanceof Blob) payload = body;
  else if (body !== undefined) { h['Content-Type'] = 'application/json'; payload = JSON.stringify(body); }
  let res;
  try {
    res = await fetch(url, { method, headers: h, body: payload, credentials: 'same-origin' });
  } catch {
    throw new ApiError(0, null);
  }
  if (raw) return res;
  const text = await res.text();
  let data = null;
  if (text) { try { data = JSON.parse(text); } catch { data = { error: text }; } }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

/** POST /dashboard/session/<what>. */
export function session(what, body) {
  return send(`/dashboard/session/${what}`, { method: 'POST', body });
}

let refreshing = null;
async function refresh() {
  if (!refreshing) refreshing = session('refresh').finally(() => { refreshing = null; });
  return refreshing;
}

/**
 * api('GET', '/agents') → parsed JSON. On 401 the session is refreshed once;
 * if that fails the app goes to the sign-in page. opts.project=false leaves
 * out X-Project-Id (account routes); opts.quiet: no sign-in page on 401.
 */
export async function api(method, path, body, opts = {}) {
  const headers = { ...(opts.headers || {}) };
  if (opts.project !== false && projectId) headers['X-Project-Id'] = String(projectId);
  const go = () => send(`/api/v1${path}`, { method, body, headers, raw: opts.raw });
  try {
    const r = await go();
    if (opts.raw && r.status === 401) throw new ApiError(401, null);
    return r;
  } catch (e) {
    if (e.status !== 401 || opts.anonymous) throw e;
    try { await refresh(); } catch { if (!opts.quiet) onSignedOut(); throw e; }
    return go();
  }
}

export const get = (p, o) => api('GET', p, undefined, o);
export const post = (p, b, o) => api('POST', p, b, o);
export const patch = (p, b, o) => api('PATCH', p, b, o);
export const put = (p, b, o) => api('PUT', p, b, o);
export const del = (p, o) => api('DELETE', p, undefined, o);

/** Uploads a FormData with progress (fetch cannot report it): onProgress(0..1). */
export function upload(path, data, onProgress) {
  const once = () => new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open('POST', `/api/v1${path}`);
    x.setRequestHeader('X-CSRF-Token', csrf());
    if (projectId) x.setRequestHeader('X-Project-Id', String(projectId));
    x.upload.addEventListener('progress', (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); });
    x.addEventListener('load', () => {
      let body = null;
      try { body = JSON.parse(x.responseText); } catch { body = { error: x.responseText }; }
      if (x.status >= 200 && x.status < 300) resolve(body); else reject(new ApiError(x.status, body));
    });
    x.addEventListener('error', () => reject(new ApiError(0, null)));
    x.send(data);
  });
  return once().catch(async (e) => {
    if (e.status !== 401) throw e;
    try { await refresh(); } catch { onSignedOut(); throw e; }
    return once();
  });
}
