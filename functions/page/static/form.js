// Create and edit forms for SMS and email connectors. The form checks the guide's rules as the
// user types; on save, the API's 422 names fields (`recipients[1].to`) and each message is shown
// next to the field it names. Secret credentials are never shown: blank means "keep the stored one".

import { connectorPath, get, post, put, query } from './api.js';
import { PROVIDERS, h, providerName } from './dom.js';
import { ErrorSummary, Field, Group, nearest, serverMessage } from './fields.js';
import {
  LIMITS,
  PROVIDER_FIELDS,
  checkE164,
  checkEmail,
  checkRequired,
  checkSender,
  checkWholeNumber,
} from './rules.js';

const MAX_RECIPIENTS = 100;

export async function renderForm(root, ctx, route) {
  const connector = route.id ? await get(connectorPath(route.id), { signal: ctx.signal }) : null;
  const type = connector ? connector.type : route.type;
  const emailConnectors = type === 'sms' ? await allEmailConnectors(ctx.signal) : [];
  const form = type === 'sms' ? new SmsForm(connector, emailConnectors) : new EmailForm(connector);
  const title = connector ? `Edit ${connector.name}` : type === 'sms' ? 'New SMS connector' : 'New email connector';
  const back = connector ? `#/${connectorPath(connector.id)}` : '#/';
  root.append(
    h('a', { class: 'back-link', href: back }, connector ? `Back to ${connector.name}` : 'Back to the connectors'),
    h('h1', { tabindex: '-1' }, title),
    form.render(back),
  );
  form.onSubmit(async (body) => {
    const saved = connector
      ? await put(connectorPath(connector.id), body, { signal: ctx.signal })
      : await post('connectors', body, { signal: ctx.signal });
    form.forgetSecrets();
    ctx.navigate(`#/${connectorPath(saved.id)}`, {
      text: connector ? `Saved the changes to ${saved.name}.` : `Created ${saved.name}.`,
      kind: 'ok',
    });
  });
}

async function allEmailConnectors(signal) {
  const found = [];
  let nextToken = null;
  for (let page = 0; page < 10; page += 1) {
    const answer = await get(`connectors${query({ type: 'email', limit: 100, nextToken })}`, { signal });
    found.push(...answer.items);
    nextToken = answer.nextToken;
    if (!nextToken) break;
  }
  return found;
}

/** What both forms share: the error summary, submit handling, mapping the API's 422 to fields. */
class BaseForm {
  constructor() {
    this.summary = new ErrorSummary();
    this.saveButton = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Save');
  }

  fields() {
    return [];
  }

  /** API field path -> the Field or Group that shows its error. */
  targets() {
    return new Map();
  }

  shell(back, ...sections) {
    this.form = h(
      'form',
      { class: 'connector-form', novalidate: true },
      this.summary.el,
      sections,
      h(
        'div',
        { class: 'actions form-actions' },
        this.saveButton,
        h('a', { class: 'btn btn-quiet', href: back }, 'Cancel'),
      ),
    );
    return this.form;
  }

  onSubmit(save) {
    this.form.addEventListener('submit', async (event) => {
      event.preventDefault();
      this.summary.hide();
      const invalid = this.fields().filter((f) => !f.validate());
      if (invalid.length) {
        this.summary.show(
          invalid.length === 1 ? 'Check this field' : `Check these ${invalid.length} fields`,
          invalid.map((f) => ({ text: `${f.name()}: ${f.message}`, target: f })),
        );
        return;
      }
      this.saveButton.disabled = true;
      this.saveButton.textContent = 'Saving…';
      try {
        await save(this.body());
      } catch (error) {
        if (error.name === 'AbortError' || error.status === 401) return;
        this.showRefusal(error);
      } finally {
        this.saveButton.disabled = false;
        this.saveButton.textContent = 'Save';
      }
    });
  }

  showRefusal(error) {
    if (error.status !== 422 || !error.detail.length) {
      this.summary.show('Not saved', [{ text: error.message }]);
      return;
    }
    const targets = this.targets();
    const items = error.detail.map((d) => {
      const target = nearest(targets, d.field || '');
      const message = serverMessage(d);
      if (!target) return { text: `${d.field}: ${message}` };
      target.show(message);
      return { text: `${target.name()}: ${message}`, target };
    });
    this.summary.show('The service did not accept the connector', items);
  }

  forgetSecrets() {}
}

class EmailForm extends BaseForm {
  constructor(connector) {
    super();
    this.name = new Field({
      label: 'Name',
      input: h('input', { type: 'text', maxlength: '100', value: connector?.name || '', autocomplete: 'off' }),
      check: checkRequired,
      required: true,
      hint: 'Shown in the list and in the SMS connectors that use it.',
    });
    this.from = new Field({
      label: 'From address',
      input: h('input', { type: 'email', value: connector?.from || '', autocomplete: 'off', spellcheck: 'false' }),
      check: (v) => checkEmail(v, { required: true }),
      required: true,
      hint: 'An address of the sender identity your operator allowed, like alerts@example.com.',
    });
  }

  fields() {
    return [this.name, this.from];
  }

  targets() {
    return new Map([
      ['name', this.name],
      ['from', this.from],
    ]);
  }

  render(back) {
    return this.shell(
      back,
      h(
        'section',
        { class: 'card form-section' },
        h('h2', { class: 'card-title' }, 'Email connector'),
        h('p', { class: 'hint' }, 'Backup emails for recipients whose SMS could not be sent go out from this address.'),
        this.name.el,
        this.from.el,
      ),
    );
  }

  body() {
    return { type: 'email', name: this.name.value.trim(), from: this.from.value.trim() };
  }
}

class SmsForm extends BaseForm {
  constructor(connector, emailConnectors) {
    super();
    this.connector = connector;
    this.emailConnectors = emailConnectors;
    this.provider = connector?.provider || '46elks';
    this.rows = [];
    // What the user typed per provider, so switching provider and back loses nothing (memory only).
    this.typed = { '46elks': {}, telnyx: {}, twilio: {} };
    this.credentialFields = [];
    this.credentialsTitle = h('h2', { class: 'card-title' });

    this.name = new Field({
      label: 'Name',
      input: h('input', { type: 'text', maxlength: '100', value: connector?.name || '', autocomplete: 'off' }),
      check: checkRequired,
      required: true,
      hint: 'For you: it tells this connector apart in lists and rule actions.',
    });
    this.providerGroup = new Group({ legend: 'Provider' });
    this.credentials = new Group({ legend: 'Credentials', hideLegend: true });
    this.webhookKey = new Field({
      label: 'Webhook public key',
      optional: true,
      input: h('input', {
        type: 'text',
        value: connector?.webhookPublicKey || '',
        autocomplete: 'off',
        spellcheck: 'false',
      }),
      hint:
        'For delivery receipts: the public key of your Telnyx account (Mission Control, Keys & Credentials), ' +
        'base64. Without it, Telnyx SMS ask for no receipts.',
    });
    this.from = new Field({
      label: 'From',
      input: h('input', { type: 'text', value: connector?.from || '', autocomplete: 'off', spellcheck: 'false' }),
      check: (v) => checkSender(v, this.provider),
      required: true,
    });
    this.recipients = new Group({ legend: 'Recipients', className: 'recipients', hideLegend: true });
    this.addButton = h('button', { type: 'button', class: 'btn btn-small' }, 'Add recipient');
    this.addButton.addEventListener('click', () => {
      this.addRow({}).to.focus();
    });
    this.emailConnector = new Field({
      label: 'Email connector for backup emails',
      input: this.emailSelect(),
      hint: emailConnectors.length
        ? 'Backup emails go out through this connector.'
        : 'No email connector yet: backup emails need one. Add an email connector first to use them.',
    });
    this.limitFields = LIMITS.map(
      (limit) =>
        new Field({
          label: limit.label,
          optional: true,
          hint: limit.hint,
          input: h('input', {
            type: 'text',
            inputmode: 'numeric',
            value: connector?.limits?.[limit.key] ?? '',
            autocomplete: 'off',
          }),
          check: checkWholeNumber,
        }),
    );
    this.limitsGroup = new Group({ legend: 'Limits for alert storms', className: 'limits', hideLegend: true });
    for (const recipient of connector?.recipients || [{}]) this.addRow(recipient);
  }

  emailSelect() {
    const chosen = this.connector?.emailConnectorId || '';
    const options = [h('option', { value: '' }, 'Choose automatically (the only one)')];
    for (const c of this.emailConnectors) {
      options.push(h('option', { value: c.id, selected: c.id === chosen }, `${c.name} (${c.from})`));
    }
    if (chosen && !this.emailConnectors.some((c) => c.id === chosen)) {
      options.push(h('option', { value: chosen, selected: true }, `Unknown connector ${chosen}`));
    }
    return h('select', {}, options);
  }

  render(back) {
    this.renderProviderChoice();
    this.renderCredentials();
    this.renderRecipients();
    const limitsOpen = Boolean(this.connector?.limits);
    this.limitsGroup.body.append(
      h(
        'details',
        { open: limitsOpen },
        h('summary', {}, 'Set limits'),
        this.limitFields.map((f) => f.el),
      ),
    );
    return this.shell(
      back,
      h('section', { class: 'card form-section' }, h('h2', { class: 'card-title' }, 'Connector'), this.name.el, this.providerGroup.el),
      h('section', { class: 'card form-section' }, this.credentialsTitle, this.credentials.el, this.from.el),
      h(
        'section',
        { class: 'card form-section' },
        h('h2', { class: 'card-title' }, 'Recipients'),
        this.recipients.el,
        this.emailConnector.el,
      ),
      h(
        'section',
        { class: 'card form-section' },
        h('h2', { class: 'card-title' }, 'Limits for alert storms ', h('span', { class: 'optional' }, '(optional)')),
        h('p', { class: 'hint' }, 'Hold back repeated alerts and floods, so one fault does not text everyone a hundred times.'),
        this.limitsGroup.el,
      ),
    );
  }

  renderProviderChoice() {
    const group = this.providerGroup;
    group.body.classList.add('provider-choice');
    for (const [value, label] of Object.entries(PROVIDERS)) {
      const id = `provider-${value}`;
      const input = h('input', { type: 'radio', name: 'provider', id, value, checked: value === this.provider });
      input.addEventListener('change', () => {
        this.keepTyped();
        this.provider = value;
        this.renderCredentials();
        if (this.from.value) this.from.validate();
      });
      group.body.append(h('div', { class: 'choice' }, input, h('label', { for: id }, label)));
    }
  }

  keepTyped() {
    for (const { key, field } of this.credentialFields) this.typed[this.provider][key] = field.value;
    this.typed[this.provider].webhookPublicKey = this.webhookKey.value;
  }

  /** Is a stored credential there to keep? Only for the provider the connector already has. */
  keepsStored() {
    return Boolean(this.connector) && this.connector.provider === this.provider;
  }

  renderCredentials() {
    const spec = PROVIDER_FIELDS[this.provider];
    const stored = this.keepsStored() ? this.connector.credentials || {} : {};
    const typed = this.typed[this.provider];
    this.credentials.legend.textContent = `${providerName(this.provider)} credentials`;
    this.credentialsTitle.textContent = `${providerName(this.provider)} account`;
    this.credentialFields = spec.credentials.map((c) => {
      const value = typed[c.key] ?? (c.secret ? '' : stored[c.key] || '');
      const optional = this.keepsStored();
      const input = h('input', {
        type: c.secret ? 'password' : 'text',
        value,
        spellcheck: 'false',
        autocapitalize: 'off',
        // new-password: a browser must not fill a saved password into a provider credential.
        autocomplete: c.secret ? 'new-password' : c.autocomplete || 'off',
        placeholder: c.secret && optional ? 'Stored; leave blank to keep it' : null,
      });
      const hint = c.secret && optional ? 'Stored and never shown. Fill it in only to replace it.' : c.hint || null;
      const field = new Field({
        label: c.label,
        input,
        hint,
        check: (v) => (optional && !v.trim() ? null : c.check(v)),
        required: !optional,
        name: () => `${providerName(this.provider)} ${c.label}`,
      });
      return { key: c.key, field };
    });
    const note =
      this.connector && !this.keepsStored()
        ? h('p', { class: 'notice notice-info' }, `A new provider needs all of its credentials.`)
        : null;
    if (this.provider === 'telnyx') this.webhookKey.input.value = typed.webhookPublicKey ?? (this.connector?.webhookPublicKey || '');
    this.credentials.body.replaceChildren(
      ...(note ? [note] : []),
      ...this.credentialFields.map((c) => c.field.el),
      ...(this.provider === 'telnyx' ? [this.webhookKey.el] : []),
    );
    this.from.setHint(spec.fromHint);
  }

  addRow(recipient) {
    const row = {};
    const position = () => this.rows.indexOf(row) + 1;
    row.to = new Field({
      label: 'Phone number',
      input: h('input', { type: 'tel', value: recipient.to || '', autocomplete: 'off', inputmode: 'tel' }),
      check: checkE164,
      required: true,
      name: () => `Recipient ${position()}, phone number`,
    });
    row.email = new Field({
      label: 'Backup email',
      optional: true,
      input: h('input', { type: 'email', value: recipient.backupEmail || '', autocomplete: 'off', spellcheck: 'false' }),
      check: (v) =>
        checkEmail(v) ||
        (v.trim() && !this.emailConnectors.length ? 'Backup emails need an email connector: add one first.' : null),
      name: () => `Recipient ${position()}, backup email`,
    });
    row.heading = h('span', { class: 'row-title' });
    row.remove = h('button', { type: 'button', class: 'btn btn-small btn-quiet' }, 'Remove');
    row.remove.addEventListener('click', () => this.removeRow(row));
    row.optedOut = recipient.optedOut === true;
    row.optIn = null;
    let optOut = null;
    if (row.optedOut) {
      const id = `${row.to.id}-optin`;
      row.optIn = h('input', { type: 'checkbox', id });
      optOut = h(
        'div',
        { class: 'opt-out' },
        h('span', { class: 'badge badge-warn' }, 'Opted out'),
        h('span', { class: 'hint' }, 'SMS to this number are skipped; backup emails still go out.'),
        h('span', { class: 'check' }, row.optIn, h('label', { for: id }, 'They opted back in: clear the mark')),
      );
    }
    row.el = h(
      'div',
      { class: 'recipient-row' },
      h('div', { class: 'row-head' }, row.heading, row.remove),
      h('div', { class: 'row-fields' }, row.to.el, row.email.el),
      optOut,
    );
    this.rows.push(row);
    if (this.recipients.body.isConnected || this.recipientList) this.renderRecipients();
    return row;
  }

  removeRow(row) {
    const index = this.rows.indexOf(row);
    this.rows.splice(index, 1);
    this.renderRecipients();
    const next = this.rows[Math.min(index, this.rows.length - 1)];
    (next ? next.to : this.addButton).focus();
  }

  renderRecipients() {
    this.recipientList = this.recipientList || h('div', { class: 'recipient-list' });
    this.rows.forEach((row, i) => {
      row.heading.textContent = `Recipient ${i + 1}`;
      row.remove.setAttribute('aria-label', `Remove recipient ${i + 1}`);
      row.remove.disabled = this.rows.length === 1;
    });
    this.recipientList.replaceChildren(...this.rows.map((r) => r.el));
    this.addButton.disabled = this.rows.length >= MAX_RECIPIENTS;
    if (!this.recipients.body.firstChild) {
      this.recipients.body.append(
        h('p', { class: 'hint' }, 'Numbers in E.164 form, like +46710000001. A backup email gets the message when the SMS cannot be sent.'),
        this.recipientList,
        this.addButton,
      );
    }
  }

  fields() {
    return [
      this.name,
      ...this.credentialFields.map((c) => c.field),
      ...(this.provider === 'telnyx' ? [this.webhookKey] : []),
      this.from,
      ...this.rows.flatMap((r) => [r.to, r.email]),
      ...this.limitFields,
    ];
  }

  targets() {
    const map = new Map([
      ['name', this.name],
      ['provider', this.providerGroup],
      ['credentials', this.credentials],
      ['webhookPublicKey', this.webhookKey],
      ['from', this.from],
      ['recipients', this.recipients],
      ['emailConnectorId', this.emailConnector],
      ['limits', this.limitsGroup],
    ]);
    for (const { key, field } of this.credentialFields) map.set(`credentials.${key}`, field);
    this.rows.forEach((row, i) => {
      map.set(`recipients[${i}]`, row.to);
      map.set(`recipients[${i}].to`, row.to);
      map.set(`recipients[${i}].backupEmail`, row.email);
    });
    LIMITS.forEach((limit, i) => map.set(`limits.${limit.key}`, this.limitFields[i]));
    return map;
  }

  body() {
    const body = {
      type: 'sms',
      name: this.name.value.trim(),
      provider: this.provider,
      from: this.from.value.trim(),
      recipients: this.rows.map((row) => {
        const recipient = { to: row.to.value.trim() };
        if (row.email.value.trim()) recipient.backupEmail = row.email.value.trim();
        if (row.optIn?.checked) recipient.optedOut = false;
        return recipient;
      }),
    };
    const credentials = {};
    const stored = this.keepsStored() ? this.connector.credentials || {} : {};
    for (const { key, field } of this.credentialFields) {
      const value = field.value.trim();
      if (value && value !== stored[key]) credentials[key] = value; // an unchanged username need not go
    }
    // Left out entirely, the stored credentials stay as they are.
    if (!this.keepsStored() || Object.keys(credentials).length) body.credentials = credentials;
    if (this.emailConnector.value) body.emailConnectorId = this.emailConnector.value;
    // Newer fields go only when set, so a service that does not know them yet is not asked to.
    if (this.provider === 'telnyx' && this.webhookKey.value.trim()) body.webhookPublicKey = this.webhookKey.value.trim();
    const limits = {};
    LIMITS.forEach((limit, i) => {
      const value = this.limitFields[i].value.trim();
      if (value) limits[limit.key] = Number(value);
    });
    if (Object.keys(limits).length) body.limits = limits;
    return body;
  }

  forgetSecrets() {
    for (const { field } of this.credentialFields) field.input.value = '';
    this.typed = { '46elks': {}, telnyx: {}, twilio: {} };
  }
}
