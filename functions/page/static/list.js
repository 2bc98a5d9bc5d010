// The connectors list: name, type, provider, recipients, receipts; paged with limit and nextToken.

import { connectorPath, get, query } from './api.js';
import { formatCount, h, providerName } from './dom.js';

const PAGE_SIZES = [5, 10, 20, 50];
// Kept while the tab lives, so coming back from a connector shows the same page.
const state = { type: '', limit: 20, tokens: [null] };

export async function renderList(root, ctx) {
  const heading = h('h1', { tabindex: '-1' }, 'Connectors');
  const tableArea = h('div', { class: 'table-area' });
  const pager = h('nav', { class: 'pager', 'aria-label': 'Connector pages' });
  const filter = typeFilter(() => {
    state.tokens = [null];
    load();
  });
  root.append(
    h(
      'div',
      { class: 'page-head' },
      h(
        'div',
        {},
        heading,
        h(
          'p',
          { class: 'lede' },
          'SMS connectors send the rule actions of your platform as text messages. ',
          'Email connectors carry backup emails when an SMS cannot be sent.',
        ),
      ),
      h(
        'div',
        { class: 'actions' },
        h('a', { class: 'btn btn-primary', href: '#/new/sms' }, 'Add SMS connector'),
        h('a', { class: 'btn', href: '#/new/email' }, 'Add email connector'),
      ),
    ),
    h('section', { class: 'card', 'aria-labelledby': 'list-caption' }, filter, tableArea, pager),
  );

  async function load(focus) {
    tableArea.setAttribute('aria-busy', 'true');
    const token = state.tokens[state.tokens.length - 1];
    const page = await get(`connectors${query({ type: state.type, limit: state.limit, nextToken: token })}`, {
      signal: ctx.signal,
    });
    tableArea.removeAttribute('aria-busy');
    tableArea.replaceChildren(page.items.length ? table(page.items) : empty());
    renderPager(page.nextToken, focus);
  }

  // The pager is drawn anew for each page; `focus` puts the keyboard back on the button used.
  function renderPager(nextToken, focus) {
    const pageNumber = state.tokens.length;
    const previous = h('button', { type: 'button', class: 'btn btn-small', disabled: pageNumber === 1 }, 'Previous');
    const next = h('button', { type: 'button', class: 'btn btn-small', disabled: !nextToken }, 'Next');
    previous.addEventListener('click', () => {
      state.tokens.pop();
      load('previous');
    });
    next.addEventListener('click', () => {
      state.tokens.push(nextToken);
      load('next');
    });
    const sizeId = 'page-size';
    const size = h(
      'select',
      { id: sizeId },
      PAGE_SIZES.map((n) => h('option', { value: String(n), selected: n === state.limit }, String(n))),
    );
    size.addEventListener('change', () => {
      state.limit = Number(size.value);
      state.tokens = [null];
      load();
    });
    pager.replaceChildren(
      h('div', { class: 'page-size' }, h('label', { for: sizeId }, 'Per page'), size),
      h(
        'div',
        { class: 'page-moves' },
        h('span', { class: 'page-number', 'aria-live': 'polite' }, `Page ${pageNumber}`),
        previous,
        next,
      ),
    );
    const wanted = focus === 'next' ? next : focus === 'previous' ? previous : null;
    if (wanted) (wanted.disabled ? (wanted === next ? previous : next) : wanted).focus();
  }

  await load();
}

function typeFilter(onChange) {
  const options = [
    ['', 'All'],
    ['sms', 'SMS'],
    ['email', 'Email'],
  ];
  const group = h(
    'fieldset',
    { class: 'segmented' },
    h('legend', { class: 'visually-hidden' }, 'Show'),
    options.map(([value, label]) => {
      const id = `type-${value || 'all'}`;
      const input = h('input', { type: 'radio', name: 'type', id, value, checked: state.type === value });
      input.addEventListener('change', () => {
        state.type = value;
        onChange();
      });
      return [input, h('label', { for: id }, label)];
    }),
  );
  return h('div', { class: 'list-tools' }, h('h2', { id: 'list-caption', class: 'card-title' }, 'Your connectors'), group);
}

function table(items) {
  return h(
    'table',
    { class: 'table stack-on-phone' },
    h('caption', { class: 'visually-hidden' }, 'Connectors'),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ['Name', 'Type', 'Provider', 'Recipients', 'Receipts'].map((t) => h('th', { scope: 'col' }, t)),
        h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')),
      ),
    ),
    h('tbody', {}, items.map(row)),
  );
}

function row(connector) {
  const sms = connector.type === 'sms';
  return h(
    'tr',
    { 'data-connector-id': connector.id },
    h(
      'th',
      { scope: 'row', 'data-label': 'Name' },
      h(
        'div',
        {},
        h('a', { href: `#/${connectorPath(connector.id)}`, class: 'strong-link' }, connector.name),
        h('span', { class: 'sub' }, connector.from),
      ),
    ),
    h('td', { 'data-label': 'Type' }, h('span', { class: ['badge', sms ? 'badge-sms' : 'badge-email'] }, sms ? 'SMS' : 'Email')),
    h('td', { 'data-label': 'Provider' }, sms ? providerName(connector.provider) : '—'),
    h('td', { 'data-label': 'Recipients', class: 'num' }, sms ? formatCount(connector.recipients?.length ?? 0) : '—'),
    h('td', { 'data-label': 'Receipts' }, receipts(connector)),
    h(
      'td',
      { class: 'row-actions' },
      h(
        'a',
        { href: `#/${connectorPath(connector.id, '/edit')}`, class: 'btn btn-small' },
        'Edit',
        h('span', { class: 'visually-hidden' }, ` ${connector.name}`),
      ),
    ),
  );
}

function receipts(connector) {
  if (connector.type !== 'sms' || typeof connector.receipts !== 'boolean') return h('span', { class: 'muted' }, '—');
  return connector.receipts ? h('span', { class: 'badge badge-ok' }, 'On') : h('span', { class: 'badge' }, 'Off');
}

function empty() {
  const filtered = state.type ? `${state.type === 'sms' ? 'SMS' : 'email'} ` : '';
  return h(
    'div',
    { class: 'empty' },
    h('p', { class: 'empty-title' }, `No ${filtered}connectors yet.`),
    h('p', {}, 'Add an SMS connector to send rule actions as text messages.'),
  );
}
