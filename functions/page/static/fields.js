// Form fields with their label, hint and error tied to the input (for, aria-describedby), and
// the summary of errors at the top of a form. An error names the field the API named.

import { h, uid } from './dom.js';

export class Field {
  /**
   * label: visible text; name(): how the error summary calls it (rows add their number);
   * check(value): a message or null.
   */
  constructor({ label, input, hint = null, check = null, optional = false, required = false, name = null }) {
    this.id = uid('field');
    this.input = input;
    this.check = check;
    this.label = label;
    this.name = name || (() => label);
    this.message = null;
    input.id = this.id;
    this.hint = h('p', { id: `${this.id}-hint`, class: 'hint', hidden: !hint }, hint || '');
    this.error = h('p', { id: `${this.id}-error`, class: 'field-error', hidden: true });
    input.setAttribute('aria-describedby', `${this.id}-hint ${this.id}-error`);
    if (required) input.setAttribute('aria-required', 'true');
    this.labelEl = h('label', { for: this.id }, label, optional ? h('span', { class: 'optional' }, ' (optional)') : null);
    this.el = h('div', { class: 'field' }, this.labelEl, this.hint, input, this.error);
    // Checked when the user leaves the field; from then on, as they type.
    input.addEventListener('blur', () => this.validate());
    input.addEventListener('input', () => {
      if (this.message !== null) this.validate();
    });
    input.addEventListener('change', () => {
      if (this.message !== null) this.validate();
    });
  }

  get value() {
    return this.input.value;
  }

  setHint(text) {
    this.hint.textContent = text || '';
    this.hint.hidden = !text;
  }

  validate() {
    const message = this.check ? this.check(this.input.value) : null;
    this.show(message);
    return message === null;
  }

  show(message) {
    this.message = message || null;
    this.error.textContent = message || '';
    this.error.hidden = !message;
    if (message) this.input.setAttribute('aria-invalid', 'true');
    else this.input.removeAttribute('aria-invalid');
    this.el.classList.toggle('invalid', Boolean(message));
  }

  focus() {
    this.input.focus();
  }
}

/** A fieldset's own error (e.g. "recipients: at least one"), shown under its legend. */
export class Group {
  constructor({ legend, name = null, className = '', hideLegend = false }) {
    this.id = uid('group');
    this.name = name || (() => legend);
    this.error = h('p', { id: `${this.id}-error`, class: 'field-error', hidden: true });
    // A legend the card's title already shows stays for screen readers only.
    this.legend = h('legend', { class: hideLegend ? 'visually-hidden' : null }, legend);
    this.body = h('div', { class: 'group-body' });
    this.el = h('fieldset', { class: ['group', className], 'aria-describedby': `${this.id}-error` }, this.legend, this.error, this.body);
  }

  show(message) {
    this.error.textContent = message || '';
    this.error.hidden = !message;
    this.el.classList.toggle('invalid', Boolean(message));
  }

  focus() {
    (this.el.querySelector('input, select, textarea, button') || this.el).focus();
  }
}

export class ErrorSummary {
  constructor() {
    this.el = h('div', { class: 'error-summary', tabindex: '-1', hidden: true });
  }

  /** items: [{text, target?}]; a target is focused when its line is chosen. */
  show(title, items) {
    const list = h(
      'ul',
      {},
      items.map(({ text, target }) => {
        if (!target) return h('li', {}, text);
        // A link that wraps like text; the click focuses the field instead of changing the address.
        const link = h('a', { href: `#${target.id}` }, text);
        link.addEventListener('click', (event) => {
          event.preventDefault();
          target.focus();
        });
        return h('li', {}, link);
      }),
    );
    this.el.replaceChildren(h('h2', {}, title), list);
    this.el.setAttribute('role', 'alert');
    this.el.hidden = false;
    this.el.focus();
  }

  hide() {
    this.el.hidden = true;
    this.el.removeAttribute('role');
    this.el.replaceChildren();
  }
}

/** `recipients[1].to` -> `recipients[1]` -> `recipients`: the nearest thing the form can point at. */
export function nearest(map, path) {
  let current = path;
  while (current) {
    if (map.has(current)) return map.get(current);
    const shorter = current.replace(/(\.[^.[\]]+|\[\d+\])$/, '');
    if (shorter === current) break;
    current = shorter;
  }
  return null;
}

/** The API's words, with its refusal of a field it does not know made plain. */
export function serverMessage(detail) {
  if (detail.type === 'extra_forbidden') return 'This service does not accept this setting yet.';
  return detail.msg;
}
