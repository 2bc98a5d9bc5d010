// One saved connector: its settings, test send, credential check, statistics and error log.

import { connectorPath, del, get, missingRoutes, post, put } from './api.js';
import { confirmAction } from './dialog.js';
import { announce, describeChar, formatClock, formatCount, h, providerName, timeElement } from './dom.js';
import { logPanel } from './log.js';
import { countSegments } from './segments.js';
import { statsPanel } from './stats.js';

const REFRESH_SECONDS = 30;

export async function renderDetail(root, ctx, route) {
  const connector = await get(connectorPath(route.id), { signal: ctx.signal });
  const sms = connector.type === 'sms';
  const head = h(
    'div',
    { class: 'page-head' },
    h(
      'div',
      {},
      h('a', { class: 'back-link', href: '#/' }, 'Back to the connectors'),
      h('h1', { tabindex: '-1' }, connector.name),
      h(
        'p',
        { class: 'meta' },
        h('span', { class: ['badge', sms ? 'badge-sms' : 'badge-email'] }, sms ? 'SMS' : 'Email'),
        sms ? h('span', {}, providerName(connector.provider)) : null,
        h('span', {}, `From ${connector.from}`),
      ),
    ),
    h(
      'div',
      { class: 'actions' },
      h('a', { class: 'btn', href: `#/${connectorPath(connector.id, '/edit')}` }, 'Edit'),
      deleteButton(connector, ctx),
    ),
  );
  root.append(head);
  if (!sms) {
    root.append(emailSettings(connector));
    return;
  }
  const stats = statsPanel(connector, ctx);
  const log = logPanel(connector, ctx);
  const refresh = () => Promise.all([stats.refresh(), log.refreshIfOnFirstPage()]);
  root.append(
    h(
      'div',
      { class: 'columns' },
      h('div', { class: 'column' }, smsSettings(connector, ctx), recipientsCard(connector, ctx)),
      h('div', { class: 'column' }, testSendCard(connector, ctx, refresh)),
    ),
    stats.el,
    log.el,
  );
  await Promise.all([stats.refresh(), log.load()]);
  keepFresh(ctx, refresh);
}

/** Refresh every REFRESH_SECONDS while the tab is visible, and at once when it comes back. */
function keepFresh(ctx, refresh) {
  let last = Date.now();
  const tick = () => {
    if (document.visibilityState !== 'visible' || ctx.signal.aborted) return;
    last = Date.now();
    refresh().catch(() => {}); // each panel shows its own failure
  };
  const timer = setInterval(tick, REFRESH_SECONDS * 1000);
  const onVisible = () => {
    if (document.visibilityState === 'visible' && Date.now() - last > REFRESH_SECONDS * 1000) tick();
  };
  document.addEventListener('visibilitychange', onVisible);
  ctx.onCleanup(() => {
    clearInterval(timer);
    document.removeEventListener('visibilitychange', onVisible);
  });
}

function definitions(pairs) {
  return h(
    'dl',
    { class: 'definitions' },
    pairs.filter(Boolean).map(([term, value]) => h('div', {}, h('dt', {}, term), h('dd', {}, value))),
  );
}

function emailSettings(connector) {
  return h(
    'section',
    { class: 'card', 'aria-labelledby': 'settings-title' },
    h('h2', { id: 'settings-title', class: 'card-title' }, 'Settings'),
    definitions([
      ['From address', connector.from],
      ['Created', timeElement(connector.createdAt)],
      ['Updated', timeElement(connector.updatedAt)],
    ]),
  );
}

function smsSettings(connector, ctx) {
  const credentials = connector.credentials || {};
  const shown = [];
  if (credentials.username) shown.push(`username ${credentials.username}`);
  if (credentials.accountSid) shown.push(`Account SID ${credentials.accountSid}`);
  const limits = connector.limits && Object.keys(connector.limits).length ? connector.limits : null;
  const verify = verifyControl(connector, ctx);
  return h(
    'section',
    { class: 'card', 'aria-labelledby': 'settings-title' },
    h('div', { class: 'card-head' }, h('h2', { id: 'settings-title', class: 'card-title' }, 'Settings'), verify.button),
    verify.result,
    definitions([
      ['Provider', providerName(connector.provider)],
      ['Credentials', shown.length ? `${shown.join(', ')}; secret stored` : 'Stored'],
      ['From', connector.from],
      ['Backup emails through', connector.emailConnectorId ? emailConnectorName(connector, ctx) : 'No email connector'],
      typeof connector.receipts === 'boolean' ? ['Delivery receipts', connector.receipts ? 'On' : 'Off'] : null,
      connector.webhookPublicKey ? ['Webhook public key', h('code', { class: 'wrap' }, connector.webhookPublicKey)] : null,
      limits
        ? [
            'Limits',
            h(
              'ul',
              { class: 'plain' },
              limits.duplicateWindowMinutes != null ? h('li', {}, `Repeats held for ${limits.duplicateWindowMinutes} min`) : null,
              limits.maxPerRecipientPerHour != null ? h('li', {}, `At most ${limits.maxPerRecipientPerHour} per recipient per hour`) : null,
              limits.monthlySegmentBudget != null ? h('li', {}, `${formatCount(limits.monthlySegmentBudget)} segments a month`) : null,
            ),
          ]
        : null,
      ['Updated', timeElement(connector.updatedAt)],
    ]),
  );
}

function emailConnectorName(connector, ctx) {
  const el = h('span', {}, connector.emailConnectorId);
  get(connectorPath(connector.emailConnectorId), { signal: ctx.signal })
    .then((email) => el.replaceChildren(h('a', { href: `#/${connectorPath(email.id)}` }, email.name), ` (${email.from})`))
    .catch(() => {}); // the id stays shown
  return el;
}

function verifyControl(connector, ctx) {
  const result = h('div', { class: 'inline-result', role: 'status', hidden: true });
  if (missingRoutes.has('verify')) return { button: null, result };
  const button = h('button', { type: 'button', class: 'btn btn-small' }, 'Verify credentials');
  button.addEventListener('click', async () => {
    button.disabled = true;
    button.textContent = 'Checking…';
    const show = (kind, ...text) => {
      result.className = `inline-result notice notice-${kind}`;
      result.replaceChildren(...text);
      result.hidden = false;
    };
    try {
      const answer = await post(connectorPath(connector.id, '/verify'), {}, { signal: ctx.signal });
      const balance =
        answer.balance != null ? ` Balance: ${answer.balance}${answer.currency ? ` ${answer.currency}` : ''}.` : '';
      // the detail says more when it matters (a trial account, a low balance)
      const detail = answer.detail ? `: ${String(answer.detail).replace(/\.$/, '')}` : '';
      if (answer.ok) show('ok', `${providerName(connector.provider)} accepted the credentials${detail}.${balance}`);
      else show('error', `${providerName(connector.provider)} refused the credentials: ${answer.detail || 'no reason given'}.`);
    } catch (error) {
      if (error.name === 'AbortError' || error.status === 401) return;
      if (error.status === 404) {
        missingRoutes.add('verify'); // this service cannot check credentials yet
        button.remove();
        announce('Checking credentials is not available on this service.');
        return;
      }
      show('error', error.message);
    } finally {
      button.disabled = false;
      button.textContent = 'Verify credentials';
    }
  });
  return { button, result };
}

function recipientsCard(connector, ctx) {
  const rows = (connector.recipients || []).map((r, i) => {
    let state = h('span', { class: 'muted' }, 'Active');
    if (r.optedOut) {
      const clearButton = h('button', { type: 'button', class: 'btn btn-small' }, 'Clear opt-out');
      clearButton.addEventListener('click', () => clearOptOut(connector, i, clearButton, ctx));
      state = h('span', { class: 'opt-out-cell' }, h('span', { class: 'badge badge-warn' }, 'Opted out'), clearButton);
    }
    return h(
      'tr',
      {},
      h('td', { 'data-label': 'Number' }, h('span', { class: 'mono' }, r.to)),
      h('td', { 'data-label': 'Backup email' }, r.backupEmail || h('span', { class: 'muted' }, 'None')),
      h('td', { 'data-label': 'Status' }, state),
    );
  });
  return h(
    'section',
    { class: 'card', 'aria-labelledby': 'recipients-title' },
    h('h2', { id: 'recipients-title', class: 'card-title' }, `Recipients (${rows.length})`),
    h(
      'table',
      { class: 'table stack-on-phone compact' },
      h('thead', {}, h('tr', {}, ['Number', 'Backup email', 'Status'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows),
    ),
  );
}

/** The user says the person opted back in: the same connector, that recipient with optedOut false. */
async function clearOptOut(connector, index, button, ctx) {
  button.disabled = true;
  const body = {
    type: 'sms',
    name: connector.name,
    provider: connector.provider,
    from: connector.from,
    recipients: connector.recipients.map((r, i) => {
      const recipient = { to: r.to };
      if (r.backupEmail) recipient.backupEmail = r.backupEmail;
      if (i === index) recipient.optedOut = false;
      return recipient;
    }),
  };
  if (connector.emailConnectorId) body.emailConnectorId = connector.emailConnectorId;
  if (connector.webhookPublicKey) body.webhookPublicKey = connector.webhookPublicKey;
  if (connector.limits) body.limits = connector.limits;
  try {
    await put(connectorPath(connector.id), body, { signal: ctx.signal });
    ctx.navigate(`#/${connectorPath(connector.id)}`, {
      text: `${connector.recipients[index].to} gets SMS again.`,
      kind: 'ok',
    });
  } catch (error) {
    if (error.name === 'AbortError' || error.status === 401) return;
    button.disabled = false;
    button.after(h('span', { class: 'field-error', role: 'alert' }, error.message));
  }
}

function deleteButton(connector, ctx) {
  const button = h('button', { type: 'button', class: 'btn btn-danger-quiet' }, 'Delete');
  button.addEventListener('click', async () => {
    const body =
      connector.type === 'sms'
        ? [
            h('p', {}, `Delete the SMS connector “${connector.name}”? This cannot be undone.`),
            h(
              'ul',
              {},
              h('li', {}, 'Its statistics and error log are deleted.'),
              h('li', {}, 'Its stored provider credentials are deleted (recoverable by an operator for 7 days).'),
              h('li', {}, 'Rule actions that still use it will fail.'),
            ),
          ]
        : [
            h('p', {}, `Delete the email connector “${connector.name}”? This cannot be undone.`),
            h('p', {}, 'SMS connectors that send backup emails through it can no longer do so; the service may refuse while some still use it.'),
          ];
    const deleted = await confirmAction({
      title: 'Delete connector',
      body,
      confirmLabel: 'Delete connector',
      action: () => del(connectorPath(connector.id), { signal: ctx.signal }),
    });
    if (deleted) ctx.navigate('#/', { text: `Deleted ${connector.name}.`, kind: 'ok' });
  });
  return button;
}

// --- test send ------------------------------------------------------------------------------

const STATUS = {
  sent: ['Sent', 'badge-ok'],
  failed: ['Failed', 'badge-error'],
  unknown: ['Unknown outcome', 'badge-warn'],
  suppressed: ['Suppressed', 'badge-warn'],
  'not attempted': ['Not attempted', ''],
};

function testSendCard(connector, ctx, refresh) {
  const recipients = connector.recipients || [];
  const select = h(
    'select',
    { id: 'test-to' },
    h('option', { value: '' }, `All recipients (${recipients.length})`),
    recipients.map((r) => h('option', { value: r.to }, r.optedOut ? `${r.to} (opted out)` : r.to)),
  );
  const message = h('textarea', {
    id: 'test-message',
    rows: '4',
    'aria-describedby': 'test-meter',
    value: 'Test message from the SMS connector control panel',
  });
  const meter = h('p', { id: 'test-meter', class: 'meter' });
  const button = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Send test SMS');
  const results = h('div', { class: 'results', 'aria-live': 'polite' });
  const form = h(
    'form',
    { class: 'test-form', novalidate: true },
    h('div', { class: 'field' }, h('label', { for: 'test-to' }, 'Send to'), select),
    h('div', { class: 'field' }, h('label', { for: 'test-message' }, 'Message'), message, meter),
    h('div', { class: 'actions' }, button),
    results,
  );
  const updateMeter = messageMeter(connector, message, meter, ctx);
  updateMeter();

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!message.value.trim()) {
      results.replaceChildren(h('p', { class: 'notice notice-error' }, 'Write a message first.'));
      message.focus();
      return;
    }
    button.disabled = true;
    button.textContent = 'Sending…';
    const body = { message: message.value };
    if (select.value) body.to = select.value;
    let hold = null;
    try {
      const answer = await post(connectorPath(connector.id, '/test'), body, { signal: ctx.signal });
      results.replaceChildren(outcomeList(answer.results || []));
      const sent = answer.results.filter((r) => r.status === 'sent').length;
      announce(`Test send: ${sent} of ${answer.results.length} sent.`);
      refresh().catch(() => {});
    } catch (error) {
      if (error.name === 'AbortError' || error.status === 401) return;
      if (error.status === 429) {
        hold = retryAt(error.retryAfter);
        results.replaceChildren(
          h(
            'p',
            { class: 'notice notice-warn', role: 'alert' },
            `The test-send limit of this connector is reached. ${hold ? `Try again at ${formatClock(hold)}.` : 'Try again later.'}`,
          ),
        );
      } else {
        results.replaceChildren(h('p', { class: 'notice notice-error', role: 'alert' }, error.message));
      }
    } finally {
      button.textContent = 'Send test SMS';
      const wait = hold ? hold.getTime() - Date.now() : 0;
      if (wait > 0) {
        const timer = setTimeout(() => {
          button.disabled = false;
        }, Math.min(wait, 2 ** 31 - 1));
        ctx.onCleanup(() => clearTimeout(timer));
      } else {
        button.disabled = false;
      }
    }
  });

  return h(
    'section',
    { class: 'card', 'aria-labelledby': 'test-title' },
    h('h2', { id: 'test-title', class: 'card-title' }, 'Test send'),
    h('p', { class: 'hint' }, 'Sends now through the provider. Counted and logged like any SMS; no backup emails.'),
    form,
  );
}

/** Retry-After is seconds or an HTTP date. */
function retryAt(value) {
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return new Date(Date.now() + Number(value) * 1000);
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

function outcomeList(results) {
  return h(
    'ul',
    { class: 'outcomes' },
    results.map((r) => {
      const [label, badge] = STATUS[r.status] || [r.status, ''];
      return h(
        'li',
        { 'data-status': r.status },
        h('span', { class: 'mono' }, r.to),
        h('span', { class: ['badge', badge] }, label),
        r.error ? h('span', { class: 'outcome-error' }, r.error) : null,
      );
    }),
  );
}

/** Encoding and segments as the user types: POST /preview when the service has it, else counted here. */
function messageMeter(connector, textarea, meter, ctx) {
  let timer = null;
  let asked = 0;
  const show = (figures) => {
    const parts = [
      `${figures.encoding}`,
      `${formatCount(figures.characters)} character${figures.characters === 1 ? '' : 's'}`,
      `${formatCount(figures.segments)} segment${figures.segments === 1 ? '' : 's'}`,
    ];
    const children = [h('span', {}, parts.join(' · '))];
    const wide = figures.ucs2Characters || [];
    if (figures.encoding === 'UCS-2' && wide.length) {
      const listed = wide.slice(0, 8).map(describeChar).join(' ');
      children.push(h('span', { class: 'meter-note' }, `UCS-2 because of ${listed}${wide.length > 8 ? ' …' : ''}`));
    }
    if (figures.tooLong) {
      children.push(
        h('span', { class: 'meter-warn' }, `Too long for ${providerName(connector.provider)}: shorten the message.`),
      );
    }
    meter.replaceChildren(...children);
  };
  const update = () => {
    const text = textarea.value;
    show(countSegments(text, connector.provider)); // at once; the service's answer follows
    clearTimeout(timer);
    if (missingRoutes.has('preview') || !text) return;
    timer = setTimeout(async () => {
      asked += 1;
      const mine = asked;
      try {
        const figures = await post('preview', { message: text, provider: connector.provider }, { signal: ctx.signal });
        if (mine === asked && textarea.value === text) show(figures);
      } catch (error) {
        if (error.status === 404) missingRoutes.add('preview');
        // otherwise the local count stays: it is the same rule
      }
    }, 400);
  };
  textarea.addEventListener('input', update);
  ctx.onCleanup(() => clearTimeout(timer));
  return update;
}
