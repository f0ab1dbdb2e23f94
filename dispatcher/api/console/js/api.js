// The one way the console talks to the service: the public /v1 API, nothing else.
//
// Two kinds of session. With an API key (signed in on the page) the key lives in
// sessionStorage only — never in a URL, a cookie or a log — and goes in the Authorization
// header. In a partner portal the service has set an HttpOnly session cookie: the page holds
// no key, the browser sends the cookie (same origin only), and every non-GET request carries
// the CSRF token that GET /v1/whoami handed out.

const KEY = 'layers-webhooks.api-key';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let session = null; // {mode: 'key' | 'portal', key?, csrfToken?, who}

export function current() {
  return session;
}

function headersFor(method, key, csrfToken, org) {
  const headers = { Accept: 'application/json' };
  if (key) headers.Authorization = `Bearer ${key}`;
  if (csrfToken && method !== 'GET') headers['X-CSRF-Token'] = csrfToken;
  if (org) headers['X-Layers-Organization'] = org;
  return headers;
}

async function send(method, path, { key, csrfToken, body, query, org } = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value === undefined || value === null || value === '') continue;
    for (const one of Array.isArray(value) ? value : [value]) url.searchParams.append(name, one);
  }
  const headers = headersFor(method, key, csrfToken, org);
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store', redirect: 'error' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    throw new ApiError(0, 'NETWORK', `the service did not answer (${error.message})`);
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = data && data.error ? data.error : {};
    throw new ApiError(response.status, error.code || 'HTTP', error.message || `HTTP ${response.status}`);
  }
  return data;
}

// Every call of a page: the session's credentials, and a signed-out session on a 401.
export async function api(method, path, options = {}) {
  if (!session) throw new ApiError(401, 'UNAUTHENTICATED', 'sign in first');
  try {
    return await send(method, path, { ...options, key: session.key, csrfToken: session.csrfToken });
  } catch (error) {
    if (error.status === 401) {
      const portal = session && session.mode === 'portal';
      signOut();
      window.dispatchEvent(new CustomEvent('console:signed-out', { detail: { message: error.message, portal } }));
    }
    throw error;
  }
}

export async function signIn(key) {
  const who = await send('GET', '/v1/whoami', { key });
  sessionStorage.setItem(KEY, key);
  session = { mode: 'key', key, who };
  return session;
}

// At start-up: the key of this tab's session, else a portal cookie, else nobody.
export async function resume() {
  const key = sessionStorage.getItem(KEY);
  if (key) {
    try {
      return await signIn(key);
    } catch (error) {
      if (error.status === 401) sessionStorage.removeItem(KEY);
      else throw error;
    }
  }
  try {
    const who = await send('GET', '/v1/whoami');
    if (who && who.session === 'portal') {
      session = { mode: 'portal', csrfToken: who.csrfToken, who };
      return session;
    }
  } catch (error) {
    if (error.status !== 401) throw error;
  }
  return null;
}

export function signOut() {
  sessionStorage.removeItem(KEY);
  session = null;
}

// A portal session ends on the server too (its cookie is HttpOnly: only the server can
// forget it).
export async function endPortalSession() {
  try {
    await api('DELETE', '/v1/portal-sessions/current');
  } finally {
    session = null;
  }
}

// What the signed-in principal may do, from its kind and scopes.
export function abilities(who) {
  const scopes = new Set(who.scopes || []);
  const operator = who.kind === 'operator';
  return {
    operator,
    portal: who.session === 'portal',
    read: operator ? scopes.has('ops:read') : scopes.has('webhooks:read'),
    write: !operator && scopes.has('webhooks:write'),
    replay: operator ? scopes.has('ops:replay') : scopes.has('webhooks:write'),
    orgs: operator && (scopes.has('platform:orgs') || scopes.has('ops:read')),
  };
}
