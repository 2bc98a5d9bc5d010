// The page's entry point: the token, the header, and which view the address shows.
//   #/                      connectors          #/connectors/{id}        one connector
//   #/new/sms, #/new/email  create form         #/connectors/{id}/edit   edit form
//   #/token                 paste a token

import { onUnauthorized } from './api.js';
import { renderDetail } from './detail.js';
import { clear, clearFlash, flash, formatClock, h } from './dom.js';
import { renderForm } from './form.js';
import { renderList } from './list.js';
import { currentToken, expiresAt, forgetToken, setToken, takeTokenFromFragment } from './session.js';

const main = document.getElementById('main');
const sessionArea = document.getElementById('session');
let current = null; // the view on screen: {controller, cleanups}
let tokenProblem = null; // why the token panel is up: 'missing' | 'expired' | 'refused'
let pendingFlash = null;

const VIEWS = { list: renderList, form: renderForm, detail: renderDetail };

function parseRoute(hash) {
  const path = hash.replace(/^#\/?/, '');
  let parts;
  try {
    parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  } catch {
    return { view: 'missing' };
  }
  if (parts.length === 0) return { view: 'list' };
  if (parts[0] === 'token' && parts.length === 1) return { view: 'token' };
  if (parts[0] === 'new' && ['sms', 'email'].includes(parts[1]) && parts.length === 2) {
    return { view: 'form', type: parts[1] };
  }
  if (parts[0] === 'connectors' && parts[1]) {
    if (parts.length === 2) return { view: 'detail', id: parts[1] };
    if (parts.length === 3 && parts[2] === 'edit') return { view: 'form', id: parts[1] };
  }
  return { view: 'missing' };
}

/** Go to `hash`; `message` is shown on the next view (e.g. "Connector deleted"). */
function navigate(hash, message) {
  pendingFlash = message || null;
  if (window.location.hash === hash) render();
  else window.location.hash = hash;
}

function stopCurrent() {
  if (!current) return;
  current.controller.abort();
  for (const cleanup of current.cleanups) cleanup();
  current = null;
}

async function render({ moveFocus = true } = {}) {
  stopCurrent();
  clearFlash();
  renderSession();
  const route = parseRoute(window.location.hash);
  if (!currentToken()) tokenProblem = 'missing';
  if (!currentToken() || route.view === 'token') {
    renderTokenPanel();
    return;
  }
  const controller = new AbortController();
  const cleanups = [];
  current = { controller, cleanups };
  const ctx = { signal: controller.signal, navigate, onCleanup: (fn) => cleanups.push(fn) };
  clear(main);
  main.setAttribute('aria-busy', 'true');
  if (pendingFlash) {
    flash(pendingFlash.text, pendingFlash.kind);
    pendingFlash = null;
  }
  try {
    if (route.view === 'missing') renderMissing();
    else await VIEWS[route.view](main, ctx, route);
  } catch (error) {
    if (error.name === 'AbortError' || controller.signal.aborted) return;
    if (error.status === 401) return; // the token panel is already up
    renderFailure(error);
  } finally {
    if (!controller.signal.aborted) main.removeAttribute('aria-busy');
  }
  if (moveFocus && !controller.signal.aborted) main.querySelector('h1')?.focus();
}

function renderSession() {
  clear(sessionArea);
  if (!currentToken()) return;
  const expiry = expiresAt();
  const status =
    expiry === null
      ? 'Token set'
      : expiry <= new Date()
        ? 'Token expired'
        : `Token valid until ${formatClock(expiry)}`;
  sessionArea.append(
    h('span', { class: 'session-status' }, status),
    h('a', { class: 'btn btn-small btn-quiet', href: '#/token' }, 'Change token'),
  );
}

const PROBLEMS = {
  missing: () => 'No access token yet. Open this page with a link that carries one, or paste one below.',
  expired: () => {
    const expiry = expiresAt();
    return `Your access token expired${expiry ? ` at ${formatClock(expiry)}` : ''}. Paste a new one to carry on.`;
  },
  refused: () =>
    'The service refused the access token: it is not valid for this service, or it has expired. Paste a new one.',
};

function renderTokenPanel() {
  stopCurrent();
  clear(main);
  main.removeAttribute('aria-busy');
  const input = h('input', {
    id: 'token-input',
    type: 'password',
    autocomplete: 'off',
    spellcheck: 'false',
    autocapitalize: 'off',
    'aria-describedby': 'token-hint token-error',
  });
  const error = h('p', { id: 'token-error', class: 'field-error', hidden: true });
  const forget = h('button', { type: 'button', class: 'btn btn-quiet push-right' }, 'Forget the token');
  const form = h(
    'form',
    { class: 'token-form', novalidate: true },
    h(
      'div',
      { class: 'field' },
      h('label', { for: 'token-input' }, 'Access token'),
      h(
        'p',
        { id: 'token-hint', class: 'hint' },
        'A JWT from your platform, like eyJhbGciOi… (a leading “Bearer ” is fine). ',
        'It is kept in this browser tab only, and never put in the address.',
      ),
      input,
      error,
    ),
    h(
      'div',
      { class: 'actions' },
      h('button', { type: 'submit', class: 'btn btn-primary' }, 'Use this token'),
      currentToken() && tokenProblem === null ? h('a', { class: 'btn', href: '#/' }, 'Cancel') : null,
      currentToken() ? forget : null,
    ),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (!input.value.trim()) {
      error.textContent = 'Paste a token first.';
      error.hidden = false;
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      return;
    }
    setToken(input.value);
    input.value = '';
    tokenProblem = null;
    // Back to where the refused call was made, or to the list.
    const back = ['', '#', '#/token'].includes(window.location.hash) ? '#/' : window.location.hash;
    navigate(back, { text: 'Token saved for this tab.', kind: 'ok' });
  });
  forget.addEventListener('click', () => {
    forgetToken();
    tokenProblem = 'missing';
    render();
  });
  const problem = tokenProblem ? PROBLEMS[tokenProblem]() : null;
  main.append(
    h(
      'section',
      { class: 'card narrow token-panel' },
      h('h1', { tabindex: '-1' }, 'Access token'),
      problem ? h('p', { class: 'notice notice-error', role: 'alert' }, problem) : null,
      h(
        'p',
        {},
        'This page manages your SMS connectors through the connector API, with your access token. ',
        'Open it with a link that ends in #token=…, or paste a token below.',
      ),
      form,
    ),
  );
  renderSession();
  (problem ? input : main.querySelector('h1')).focus();
}

function renderMissing() {
  main.append(
    h(
      'section',
      { class: 'card narrow' },
      h('h1', { tabindex: '-1' }, 'Page not found'),
      h('p', {}, 'There is nothing at this address.'),
      h('a', { class: 'btn', href: '#/' }, 'Back to the connectors'),
    ),
  );
}

function renderFailure(error) {
  clear(main);
  const notFound = error.status === 404;
  main.append(
    h(
      'section',
      { class: 'card narrow' },
      h('h1', { tabindex: '-1' }, notFound ? 'Connector not found' : 'Could not load this page'),
      h(
        'p',
        { class: notFound ? '' : 'notice notice-error', role: notFound ? null : 'alert' },
        notFound ? 'It may have been deleted, or it belongs to another tenant.' : error.message,
      ),
      h(
        'div',
        { class: 'actions' },
        h('a', { class: 'btn', href: '#/' }, 'Back to the connectors'),
        error.status === 403 ? h('a', { class: 'btn', href: '#/token' }, 'Use another token') : null,
      ),
    ),
  );
}

onUnauthorized(() => {
  const expiry = expiresAt();
  tokenProblem = !currentToken() ? 'missing' : expiry && expiry <= new Date() ? 'expired' : 'refused';
  if (!main.querySelector('.token-panel')) renderTokenPanel();
});

window.addEventListener('hashchange', () => render());
takeTokenFromFragment();
render({ moveFocus: false });
