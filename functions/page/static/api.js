// The service's public HTTP API, on this page's own origin. Paths are relative to the page, so
// the page also works under a base path (a custom domain's API mapping).

import { currentToken } from './session.js';

export class ApiError extends Error {
  constructor(status, body, headers) {
    super(describe(status, body));
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
    this.detail = Array.isArray(body?.detail) ? body.detail : [];
    this.retryAfter = headers?.get('Retry-After') ?? null;
  }
}

function describe(status, body) {
  if (status === 0) return 'The service could not be reached. Check the connection and try again.';
  if (status === 401) return 'The service refused the access token.';
  const message = typeof body?.message === 'string' ? body.message : '';
  if (status >= 500) return `The service failed (${status}). Try again in a moment.${message ? ` ${message}` : ''}`;
  return message || `The service answered ${status}.`;
}

let unauthorized = () => {};

/** Called on every 401 (missing, invalid or expired token), before the caller's own handling. */
export function onUnauthorized(callback) {
  unauthorized = callback;
}

export async function request(method, path, { body, signal } = {}) {
  const token = currentToken();
  if (!token) {
    const error = new ApiError(401, { message: 'no token' });
    unauthorized(error);
    throw error;
  }
  const headers = { Accept: 'application/json', Authorization: `Bearer ${token}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(new URL(path, document.baseURI), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new ApiError(0, null);
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { message: text.slice(0, 300) };
    }
  }
  if (response.ok) return data;
  const error = new ApiError(response.status, data, response.headers);
  if (response.status === 401) unauthorized(error);
  throw error;
}

export const get = (path, options) => request('GET', path, options);
export const post = (path, body, options) => request('POST', path, { ...options, body });
export const put = (path, body, options) => request('PUT', path, { ...options, body });
export const del = (path, options) => request('DELETE', path, options);

/** `connectors/{id}/...` with the id encoded: ids come from the API but are still data. */
export function connectorPath(id, rest = '') {
  return `connectors/${encodeURIComponent(id)}${rest}`;
}

/** A query string; nextToken is opaque and may hold + / = : always encoded. */
export function query(params) {
  const parts = Object.entries(params)
    .filter(([, v]) => v !== null && v !== undefined && v !== '')
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  return parts.length ? `?${parts.join('&')}` : '';
}

/** Routes this deployment may not have yet (POST /preview, POST .../verify): remembered once seen missing. */
export const missingRoutes = new Set();
