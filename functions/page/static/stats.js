// The statistics panel: the guide's eight figures, the newer delivery, fallback and cost figures
// when the service answers them, and a chart of the month when it answers `daily`.

import { connectorPath, get } from './api.js';
import { monthChart } from './chart.js';
import { formatClock, formatCount, formatMoney, formatPercent, h, timeElement } from './dom.js';

export function statsPanel(connector, ctx) {
  const body = h('div', { class: 'stats-body', 'aria-busy': 'true' }, h('p', { class: 'muted' }, 'Loading…'));
  const updated = h('span', { class: 'updated', 'aria-live': 'off' });
  const refreshButton = h('button', { type: 'button', class: 'btn btn-small' }, 'Refresh');
  const el = h(
    'section',
    { class: 'card stats', 'aria-labelledby': 'stats-title' },
    h(
      'div',
      { class: 'card-head' },
      h('h2', { id: 'stats-title', class: 'card-title' }, 'Messaging statistics'),
      h('div', { class: 'card-tools' }, updated, refreshButton),
    ),
    body,
  );

  async function refresh() {
    body.setAttribute('aria-busy', 'true');
    try {
      const stats = await get(connectorPath(connector.id, '/stats'), { signal: ctx.signal });
      body.replaceChildren(...render(stats));
      updated.textContent = `Updated ${formatClock(new Date(), { seconds: true })}`;
    } catch (error) {
      if (error.name === 'AbortError' || error.status === 401) throw error;
      body.replaceChildren(h('p', { class: 'notice notice-error', role: 'alert' }, `Statistics: ${error.message}`));
    } finally {
      body.removeAttribute('aria-busy');
    }
  }

  refreshButton.addEventListener('click', () => {
    refresh().catch(() => {});
  });
  return { el, refresh };
}

function tile(label, value, { tone = '', key = '' } = {}) {
  return h(
    'div',
    { class: ['tile', tone && `tile-${tone}`], 'data-figure': key || null },
    h('dt', {}, label),
    h('dd', {}, value),
  );
}

const has = (stats, key) => Object.hasOwn(stats, key) && stats[key] !== undefined;

function render(stats) {
  const lastError = stats.lastError
    ? h('span', { class: 'stacked' }, h('span', { class: 'error-text' }, stats.lastError.message), timeElement(stats.lastError.at))
    : h('span', { class: 'muted' }, 'None');
  const primary = h(
    'dl',
    { class: 'tiles' },
    tile('Total sent', formatCount(stats.totalSent), { key: 'totalSent' }),
    tile('Total fails', formatCount(stats.totalFails), { tone: stats.totalFails ? 'bad' : '', key: 'totalFails' }),
    tile('Sent this month', formatCount(stats.sentThisMonth), { key: 'sentThisMonth' }),
    tile('Success rate', formatPercent(stats.successRate), { key: 'successRate' }),
    tile('Attempts', formatCount(stats.attempts), { key: 'attempts' }),
    tile('Last sent', timeElement(stats.lastSentAt, { withAge: true }), { key: 'lastSentAt' }),
    tile('Last failed', timeElement(stats.lastFailedAt, { withAge: true }), { key: 'lastFailedAt' }),
    tile('Last error', lastError, { key: 'lastError' }),
  );
  const out = [primary];

  // Newer figures: each shown only when the service answers it.
  const more = [
    ['totalDelivered', 'Delivered', formatCount],
    ['totalUndelivered', 'Undelivered', formatCount],
    ['deliveryRate', 'Delivery rate', formatPercent],
    ['pendingReceipts', 'Waiting for a receipt', formatCount],
    ['totalNoReceipt', 'No receipt', formatCount],
    ['lastDeliveredAt', 'Last delivered', (v) => timeElement(v)],
    ['totalUnknown', 'Outcome unknown', formatCount],
    ['totalSuppressed', 'Suppressed by limits or opt-outs', formatCount],
    ['fallbackEmailsSent', 'Backup emails sent', formatCount],
    ['fallbackEmailsFailed', 'Backup emails failed', formatCount],
    ['segmentsThisMonth', 'Segments this month', formatCount],
    ['costThisMonth', 'Cost this month', cost],
  ].filter(([key]) => has(stats, key));
  if (more.length) {
    out.push(
      h('h3', { class: 'subhead' }, 'Delivery, backup emails and cost'),
      h(
        'dl',
        { class: 'figures' },
        more.map(([key, label, format]) => h('div', { 'data-figure': key }, h('dt', {}, label), h('dd', {}, format(stats[key])))),
      ),
    );
  }
  if (Array.isArray(stats.daily) && stats.daily.length) out.push(monthChart(stats.daily));
  return out;
}

function cost(list) {
  if (!Array.isArray(list) || !list.length) return h('span', { class: 'muted' }, 'None reported');
  return list.map((c) => formatMoney(c.amount, c.currency)).join(', ');
}
