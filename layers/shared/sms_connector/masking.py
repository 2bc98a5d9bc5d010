"""Masking, in one place: every writer of CloudWatch lines, error-log entries and `lastError`
goes through here. A phone number keeps at most its country code and last two digits, for
every country (`+46701234567` -> `+46 *******67`), and numbers inside free text (a provider's
error message) are masked the same way. Email addresses keep their first letter and domain.
"""

from __future__ import annotations

import re

# A number in free text: international form (a '+', digits with single spaces or dashes
# between), or a bare run of 8+ digits (Twilio writes `5551234567`). Dates (`2024-05-04`),
# times and error codes (`21211`) stay readable.
_IN_TEXT = re.compile(r"\+\d(?:[ \-]?\d){5,15}|(?<![\w.])\d{8,16}(?![\w.])")
_EMAIL = re.compile(r"([A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]*@([A-Za-z0-9.\-]+\.[A-Za-z]{2,})")


def number(value: str) -> str:
    """`+46701234567` -> `+46 *******67`; anything unparseable keeps only its last two digits."""
    digits = "".join(c for c in value if c.isdigit())
    if len(digits) < 4:
        return "*" * len(digits)
    code = _country_code(digits) if value.lstrip().startswith("+") else ""
    rest = digits[len(code) :]
    hidden = "*" * max(0, len(rest) - 2) + rest[-2:]
    return f"+{code} {hidden}" if code else hidden


def text(value: str) -> str:
    """`value` with every phone number and email address in it masked."""
    masked = _IN_TEXT.sub(lambda m: number(m.group(0)), value)
    return _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", masked)


def email(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


def _country_code(digits: str) -> str:
    from phonenumbers import COUNTRY_CODE_TO_REGION_CODE  # here: only failures are masked on the hot path

    for length in (1, 2, 3):
        if int(digits[:length]) in COUNTRY_CODE_TO_REGION_CODE and len(digits) > length + 2:
            return digits[:length]
    return ""
