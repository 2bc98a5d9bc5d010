// Building the page without HTML strings: every text goes in as a text node, never as markup.

const PROPERTIES = new Set(['value', 'checked', 'disabled', 'selected', 'hidden', 'open', 'indeterminate']);

/** h('button', {class: 'btn', onClick: fn}, 'Save'): an element with attributes, listeners and children. */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  append(el, children);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

export function svg(tag, props, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setProps(el, props);
  append(el, children);
  return el;
}

function setProps(el, props) {
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (PROPERTIES.has(key)) {
      el[key] = value;
    } else if (key === 'class') {
      el.setAttribute('class', Array.isArray(value) ? value.filter(Boolean).join(' ') : value);
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

let unique = 0;
/** An id no other element has: labels, hints and errors point at inputs by id. */
export function uid(prefix) {
  unique += 1;
  return `${prefix}-${unique}`;
}

// --- announcing --------------------------------------------------------------------------

/** Say `text` to screen readers (the polite live region), without showing it twice. */
export function announce(text) {
  const region = document.getElementById('announcer');
  if (!region) return;
  region.textContent = '';
  // A fresh text node in a later task is what makes readers speak the same text twice.
  setTimeout(() => {
    region.textContent = text;
  }, 50);
}

/** A message at the top of the view: kind 'ok' | 'error' | 'info'. Errors are alerts. */
export function flash(text, kind = 'info') {
  const area = document.getElementById('flash');
  if (!area) return;
  const close = h('button', { type: 'button', class: 'flash-close', 'aria-label': 'Dismiss message' }, '×');
  const box = h(
    'div',
    { class: ['flash', `flash-${kind}`], role: kind === 'error' ? 'alert' : 'status' },
    h('p', {}, text),
    close,
  );
  close.addEventListener('click', () => box.remove());
  area.replaceChildren(box);
}

export function clearFlash() {
  document.getElementById('flash')?.replaceChildren();
}

// --- formatting ---------------------------------------------------------------------------

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const timeOnly = new Intl.DateTimeFormat(undefined, { timeStyle: 'short' });
const timeWithSeconds = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });
const integer = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const percent = new Intl.NumberFormat(undefined, { style: 'percent', maximumFractionDigits: 1 });
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

export function formatCount(value) {
  return typeof value === 'number' ? integer.format(value) : '—';
}

export function formatPercent(value) {
  return typeof value === 'number' ? percent.format(value / 100) : '—'; // the API says 95.2 for 95.2 %
}

export function formatMoney(amount, currency) {
  // 46elks names no currency until a credential check has told the account's (API: null)
  if (!currency) return `${amount} (account currency; verify the credentials to name it)`;
  try {
    return new Intl.NumberFormat(undefined, { style: 'currency', currency }).format(Number(amount));
  } catch {
    return `${amount} ${currency}`; // a currency code Intl does not know
  }
}

export function formatClock(date, { seconds = false } = {}) {
  return (seconds ? timeWithSeconds : timeOnly).format(date);
}

/** A <time> for an ISO 8601 instant, in the reader's time zone; '—' for none. */
export function timeElement(iso, { withAge = false } = {}) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return h('span', {}, iso);
  const el = h('time', { datetime: iso, title: date.toISOString() }, dateTime.format(date));
  if (!withAge) return el;
  return h('span', { class: 'stacked' }, el, h('span', { class: 'age' }, ago(date)));
}

export function ago(date) {
  const seconds = Math.round((date.getTime() - Date.now()) / 1000);
  const steps = [
    [60, 'second'],
    [60, 'minute'],
    [24, 'hour'],
    [30, 'day'],
    [12, 'month'],
  ];
  let value = seconds;
  for (const [size, unit] of steps) {
    if (Math.abs(value) < size) return relative.format(value, unit);
    value = Math.round(value / size);
  }
  return relative.format(value, 'year');
}

/** Characters that are hard to see are named by their code point. */
export function describeChar(c) {
  if (/^[\p{L}\p{N}\p{P}\p{S}]$/u.test(c)) return `“${c}”`;
  return `U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
}

export const PROVIDERS = { '46elks': '46elks', telnyx: 'Telnyx', twilio: 'Twilio' };

export function providerName(provider) {
  return PROVIDERS[provider] || provider || '—';
}
