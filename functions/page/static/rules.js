// The guide's field rules, checked as the user types. They are a subset of what the API checks
// (it also knows which country codes exist and which lengths are possible): the API is the judge.

const E164_EXAMPLE = '+46701234567';
const SEPARATORS = /[\s\-.()]/g;

export function checkRequired(value) {
  return value.trim() ? null : 'Required.';
}

export function checkE164(value) {
  const compact = value.replace(SEPARATORS, '');
  if (!compact) return 'Required.';
  if (!compact.startsWith('+')) return `Start with + and the country code, like ${E164_EXAMPLE}.`;
  if (!/^\+[0-9]{2,16}$/.test(compact)) return `Use only + and digits, like ${E164_EXAMPLE}.`;
  return null;
}

const ALPHA_SENDER = /^[A-Za-z][A-Za-z0-9]{2,10}$/;

export function checkSender(value, provider) {
  const trimmed = value.trim();
  if (!trimmed) return 'Required.';
  if (provider === '46elks') {
    if (ALPHA_SENDER.test(trimmed)) return null;
    if (!trimmed.startsWith('+')) {
      return 'Use an E.164 number, or 3 to 11 letters and digits that do not start with a digit.';
    }
  }
  return checkE164(trimmed);
}

export function checkEmail(value, { required = false } = {}) {
  const trimmed = value.trim();
  if (!trimmed) return required ? 'Required.' : null;
  return /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(trimmed) ? null : 'Enter an email address, like oncall@example.com.';
}

export function checkAccountSid(value) {
  const trimmed = value.trim();
  if (!trimmed) return 'Required.';
  return trimmed.startsWith('AC') ? null : 'A Twilio Account SID starts with AC.';
}

export function checkCredential(value) {
  if (!value.trim()) return 'Required.';
  return /\s/.test(value.trim()) ? 'Remove the spaces or line breaks (a pasted key often carries one).' : null;
}

export function checkWholeNumber(value) {
  const trimmed = value.trim();
  if (!trimmed) return null;
  return /^[0-9]+$/.test(trimmed) ? null : 'A whole number, or empty for no limit.';
}

// What each provider needs. `secret` fields are never shown back by the API: in the edit form
// they stay blank, and a blank one keeps the stored value.
export const PROVIDER_FIELDS = {
  '46elks': {
    credentials: [
      { key: 'username', label: 'API username', check: checkCredential, autocomplete: 'off' },
      { key: 'password', label: 'API password', check: checkCredential, secret: true },
    ],
    fromHint:
      'An E.164 number (like +46701234567) or a text sender: 3 to 11 letters and digits, ' +
      'not starting with a digit (like MyCompany). Nobody can reply to a text sender.',
  },
  telnyx: {
    credentials: [{ key: 'apiKey', label: 'API key', check: checkCredential, secret: true }],
    fromHint: 'A number of your Telnyx account in E.164 form, like +46701234567.',
  },
  twilio: {
    credentials: [
      {
        key: 'accountSid',
        label: 'Account SID',
        check: checkAccountSid,
        autocomplete: 'off',
        hint: 'Starts with AC; on the Twilio Console home page.',
      },
      { key: 'authToken', label: 'Auth token', check: checkCredential, secret: true },
    ],
    fromHint: 'A number of your Twilio account in E.164 form, like +46701234567.',
  },
};

export const LIMITS = [
  {
    key: 'duplicateWindowMinutes',
    label: 'Hold repeats for (minutes)',
    hint: 'The same message to the same recipient within this many minutes is sent once.',
  },
  {
    key: 'maxPerRecipientPerHour',
    label: 'At most SMS per recipient per hour',
    hint: 'Further alerts are held back; the recipient gets one summary SMS when the hour ends.',
  },
  {
    key: 'monthlySegmentBudget',
    label: 'Monthly segment budget',
    hint: 'No more SMS segments are sent this calendar month once the budget is spent.',
  },
];
