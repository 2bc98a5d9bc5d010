// The month's SMS as a small bar chart: sent and failed per day, stacked. Drawn as SVG from the
// API's `daily` ([{date, sent, failed}]); the same figures are in a table for screen readers.

import { formatCount, h, svg } from './dom.js';

const WIDTH = 640;
const HEIGHT = 160;
const PAD = { top: 12, right: 8, bottom: 22, left: 34 };

export function monthChart(daily) {
  const days = daily
    .filter((d) => typeof d?.date === 'string')
    .map((d) => ({ date: d.date, sent: Number(d.sent) || 0, failed: Number(d.failed) || 0 }))
    .sort((a, b) => a.date.localeCompare(b.date));
  if (!days.length) return null;
  const [year, month] = days[0].date.split('-').map(Number);
  const length = new Date(Date.UTC(year, month, 0)).getUTCDate();
  const byDay = new Map(days.map((d) => [Number(d.date.slice(8, 10)), d]));
  const top = Math.max(1, ...days.map((d) => d.sent + d.failed));
  const scale = niceCeiling(top);
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const slot = plotW / length;
  const barW = Math.max(2, slot * 0.68);
  const y = (v) => PAD.top + plotH - (v / scale) * plotH;

  const bars = [];
  for (let day = 1; day <= length; day += 1) {
    const d = byDay.get(day);
    if (!d) continue;
    const x = PAD.left + (day - 1) * slot + (slot - barW) / 2;
    const label = `${d.date}: ${d.sent} sent, ${d.failed} failed`;
    if (d.sent) bars.push(svg('rect', { class: 'bar-sent', x, y: y(d.sent), width: barW, height: y(0) - y(d.sent) }, svg('title', {}, label)));
    if (d.failed) {
      bars.push(
        svg(
          'rect',
          { class: 'bar-failed', x, y: y(d.sent + d.failed), width: barW, height: y(d.sent) - y(d.sent + d.failed) },
          svg('title', {}, label),
        ),
      );
    }
  }
  const ticks = [1, 8, 15, 22, length].map((day) =>
    svg('text', { class: 'axis', x: PAD.left + (day - 0.5) * slot, y: HEIGHT - 6, 'text-anchor': 'middle' }, String(day)),
  );
  const grid = [0, scale / 2, scale].map((v) => [
    svg('line', { class: 'grid', x1: PAD.left, x2: WIDTH - PAD.right, y1: y(v), y2: y(v) }),
    svg('text', { class: 'axis', x: PAD.left - 6, y: y(v) + 4, 'text-anchor': 'end' }, formatCount(v)),
  ]);
  const totalSent = days.reduce((n, d) => n + d.sent, 0);
  const totalFailed = days.reduce((n, d) => n + d.failed, 0);
  const monthName = new Date(Date.UTC(year, month - 1, 1)).toLocaleDateString(undefined, {
    month: 'long',
    year: 'numeric',
    timeZone: 'UTC',
  });
  const picture = svg(
    'svg',
    {
      class: 'chart',
      viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
      role: 'img',
      'aria-label': `SMS per day in ${monthName}: ${totalSent} sent, ${totalFailed} failed in all.`,
    },
    grid,
    bars,
    ticks,
  );
  return h(
    'figure',
    { class: 'month-chart' },
    h(
      'figcaption',
      {},
      h('span', { class: 'subhead' }, `${monthName}, per day`),
      h(
        'span',
        { class: 'legend' },
        h('span', { class: 'key key-sent' }, 'Sent'),
        h('span', { class: 'key key-failed' }, 'Failed'),
      ),
    ),
    picture,
    h(
      'table',
      { class: 'visually-hidden' },
      h('caption', {}, `SMS per day in ${monthName}`),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Day'), h('th', { scope: 'col' }, 'Sent'), h('th', { scope: 'col' }, 'Failed'))),
      h('tbody', {}, days.map((d) => h('tr', {}, h('th', { scope: 'row' }, d.date), h('td', {}, String(d.sent)), h('td', {}, String(d.failed))))),
    ),
  );
}

function niceCeiling(value) {
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) {
    if (step * magnitude >= value) return Math.max(2, step * magnitude);
  }
  return value;
}
