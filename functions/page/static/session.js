// The access token: read once from the URL fragment (never sent to the server) or pasted, kept in
// this tab's sessionStorage only. A frame whose storage is blocked keeps it in memory instead.

const KEY = 'sms-connector.token';
let inMemory = null;

function storage() {
  try {
    return window.sessionStorage;
  } catch {
    return null; // storage blocked (a sandboxed frame, strict privacy settings)
  }
}

export function currentToken() {
  try {
    return storage()?.getItem(KEY) ?? inMemory;
  } catch {
    return inMemory;
  }
}

export function setToken(token) {
  const clean = (token || '').trim().replace(/^Bearer\s+/i, '');
  inMemory = clean || null;
  try {
    if (clean) storage()?.setItem(KEY, clean);
    else storage()?.removeItem(KEY);
  } catch {
    // kept in memory only
  }
  return inMemory;
}

export function forgetToken() {
  setToken('');
}

/**
 * `#token=...` (optionally `&connector=ID`): take the token, then rewrite the address so the
 * token is neither in the address bar nor in the history. Returns the route to open, or null.
 */
export function takeTokenFromFragment() {
  const fragment = window.location.hash.replace(/^#/, '');
  if (!/(^|&)token=/.test(fragment)) return null;
  const params = new URLSearchParams(fragment);
  setToken(params.get('token') || '');
  const connector = params.get('connector');
  const route = connector ? `#/connectors/${encodeURIComponent(connector)}` : '#/';
  window.history.replaceState(window.history.state, '', `${window.location.pathname}${window.location.search}${route}`);
  return route;
}

/** The token's claims, read without checking the signature (the API does that): for display only. */
export function claims(token = currentToken()) {
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const json = decodeURIComponent(
      Array.from(atob(payload), (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`).join(''),
    );
    const value = JSON.parse(json);
    return value && typeof value === 'object' ? value : null;
  } catch {
    return null;
  }
}

export function expiresAt(token = currentToken()) {
  const exp = claims(token)?.exp;
  return typeof exp === 'number' ? new Date(exp * 1000) : null;
}
