// The connector's error log, newest first, a page at a time (limit, nextToken).

import { connectorPath, get, query } from './api.js';
import { h, providerName, timeElement } from './dom.js';

const PAGE_SIZE = 10;
const COLUMNS = ['When', 'Level', 'Message', 'Recipient', 'Provider', 'Code'];

export function logPanel(connector, ctx) {
  const tokens = [null]; // tokens[i] opens page i + 1
  const area = h('div', { class: 'log-area' });
  const pageLabel = h('span', { class: 'page-number', 'aria-live': 'polite' });
  const newer = h('button', { type: 'button', class: 'btn btn-small', disabled: true }, 'Newer');
  const older = h('button', { type: 'button', class: 'btn btn-small', disabled: true }, 'Older');
  const refreshButton = h('button', { type: 'button', class: 'btn btn-small' }, 'Refresh');
  const el = h(
    'section',
    { class: 'card', 'aria-labelledby': 'log-title' },
    h(
      'div',
      { class: 'card-head' },
      h('h2', { id: 'log-title', class: 'card-title' }, 'Error log'),
      h('div', { class: 'card-tools' }, refreshButton),
    ),
    area,
    h('nav', { class: 'pager', 'aria-label': 'Error log pages' }, h('span'), h('div', { class: 'page-moves' }, pageLabel, newer, older)),
  );

  async function load() {
    area.setAttribute('aria-busy', 'true');
    try {
      const token = tokens[tokens.length - 1];
      const page = await get(connectorPath(connector.id, `/logs${query({ limit: PAGE_SIZE, nextToken: token })}`), {
        signal: ctx.signal,
      });
      area.replaceChildren(page.items.length ? table(page.items) : empty(tokens.length));
      pageLabel.textContent = `Page ${tokens.length}`;
      newer.disabled = tokens.length === 1;
      older.disabled = !page.nextToken;
      older.dataset.next = page.nextToken || '';
    } catch (error) {
      if (error.name === 'AbortError' || error.status === 401) throw error;
      area.replaceChildren(h('p', { class: 'notice notice-error', role: 'alert' }, `Error log: ${error.message}`));
    } finally {
      area.removeAttribute('aria-busy');
    }
  }

  const move = (button, change) => {
    button.addEventListener('click', () => {
      change();
      load()
        .then(() => (button.disabled ? (button === older ? newer : older) : button).focus())
        .catch(() => {});
    });
  };
  move(older, () => tokens.push(older.dataset.next));
  move(newer, () => tokens.pop());
  refreshButton.addEventListener('click', () => {
    tokens.splice(1);
    load().catch(() => {});
  });

  // The automatic refresh leaves a reader of older pages where they are.
  const refreshIfOnFirstPage = () => (tokens.length === 1 ? load() : Promise.resolve());
  return { el, load, refreshIfOnFirstPage };
}

function table(items) {
  return h(
    'table',
    { class: 'table stack-on-phone log-table' },
    h('caption', { class: 'visually-hidden' }, 'Error log, newest first'),
    h('thead', {}, h('tr', {}, COLUMNS.map((c) => h('th', { scope: 'col' }, c)))),
    h(
      'tbody',
      {},
      items.map((e) =>
        h(
          'tr',
          {},
          h('td', { 'data-label': 'When', class: 'nowrap' }, timeElement(e.at)),
          h('td', { 'data-label': 'Level' }, h('span', { class: ['badge', e.level === 'error' ? 'badge-error' : 'badge-warn'] }, e.level)),
          h(
            'td',
            { 'data-label': 'Message', class: 'message' },
            h(
              'div',
              {},
              e.message,
              e.actionId || e.kind
                ? h(
                    'span',
                    { class: 'sub' },
                    e.kind ? `${e.kind === 'email' ? 'Backup email' : e.kind.toUpperCase()}` : null,
                    e.kind && e.actionId ? ' · ' : null,
                    e.actionId ? ['action ', h('span', { class: 'mono' }, e.actionId)] : null,
                  )
                : null,
            ),
          ),
          h('td', { 'data-label': 'Recipient', class: 'mono nowrap' }, e.recipient || '—'),
          h('td', { 'data-label': 'Provider' }, e.provider ? providerName(e.provider) : '—'),
          h('td', { 'data-label': 'Code', class: 'mono' }, e.errorCode || '—'),
        ),
      ),
    ),
  );
}

function empty(pageNumber) {
  return h(
    'div',
    { class: 'empty' },
    h('p', { class: 'empty-title' }, pageNumber === 1 ? 'Nothing logged.' : 'No older entries.'),
    pageNumber === 1 ? h('p', {}, 'Failed sends and warnings appear here, newest first.') : null,
  );
}
