// SMS length as the service counts it (layers/shared/sms_connector/segments.py): used when the
// API has no POST /preview, so the message box can still show encoding and segments.

const GSM_BASIC = new Set(
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?' +
    '¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà',
);
const GSM_EXTENSION = new Set('\f^{}\\[~]|€');
const MAX_CHARS = { twilio: 1600, '46elks': 1600 };
const TELNYX_MAX_PARTS = 10;

/** {encoding, characters, segments, tooLong, ucs2Characters}, the shape POST /preview answers. */
export function countSegments(text, provider) {
  const chars = Array.from(text);
  const ucs2Characters = [...new Set(chars.filter((c) => !GSM_BASIC.has(c) && !GSM_EXTENSION.has(c)))];
  let encoding;
  let units;
  let single;
  let multi;
  if (ucs2Characters.length === 0) {
    encoding = 'GSM-7';
    units = chars.reduce((n, c) => n + (GSM_EXTENSION.has(c) ? 2 : 1), 0);
    [single, multi] = [160, 153];
  } else {
    encoding = 'UCS-2';
    units = text.length; // UTF-16 code units: an emoji takes two
    [single, multi] = [70, 67];
  }
  const segments = units === 0 ? 0 : units <= single ? 1 : Math.ceil(units / multi);
  let tooLong = false;
  if (provider === 'telnyx') tooLong = segments > TELNYX_MAX_PARTS;
  else if (provider in MAX_CHARS) tooLong = chars.length > MAX_CHARS[provider];
  return { encoding, characters: chars.length, segments, tooLong, ucs2Characters };
}
