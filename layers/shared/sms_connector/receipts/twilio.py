"""Twilio status callbacks: `X-Twilio-Signature` checked, the form read as a Report.

The signature is base64(HMAC-SHA1(auth token, full URL + each POST parameter sorted by name
as name+value)); like Twilio's own validator we also accept the URL with the default port
written out or left out, since Twilio is not consistent about it (providers.md 3.8).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import parse_qs, urlsplit, urlunsplit

from .. import clock
from ..sending.record import Report

FINAL = {"delivered": "delivered", "undelivered": "undelivered", "failed": "undelivered"}
# Delivery-time codes (providers.md 3.6), in our words; the callback carries only the code.
CODES = {
    "30001": "queue overflow at Twilio",
    "30002": "the Twilio account is suspended",
    "30003": "the handset is unreachable (switched off or out of coverage)",
    "30004": "the message was blocked by the recipient or the carrier",
    "30005": "the number is unknown or no longer exists",
    "30006": "a landline, or a carrier that cannot take SMS",
    "30007": "the carrier filtered the message",
    "30008": "an unknown error at the carrier",
}


def signature(auth_token: str, url: str, params: dict[str, list[str]]) -> str:
    payload = url + "".join(name + value for name in sorted(params) for value in sorted(params[name]))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _with_and_without_port(url: str) -> list[str]:
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    host = parts.hostname or ""
    variants = [url]
    if default and parts.port is None:
        variants.append(urlunsplit(parts._replace(netloc=f"{host}:{default}")))
    elif parts.port == default:
        variants.append(urlunsplit(parts._replace(netloc=host)))
    return variants


def verify(auth_token: str, url: str, body: bytes, header: str | None) -> bool:
    if not header:
        return False
    params = parse_qs(body.decode("utf-8", "strict"), keep_blank_values=True)
    return any(hmac.compare_digest(signature(auth_token, u, params), header) for u in _with_and_without_port(url))


def parse(body: bytes) -> Report | None:
    """The callback as a Report, or None when it is not a message status callback."""
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "strict"), keep_blank_values=True).items()}
    sid, status = form.get("MessageSid") or form.get("SmsSid"), form.get("MessageStatus") or form.get("SmsStatus")
    if not sid or not status:
        return None
    code = form.get("ErrorCode") or None
    return Report(
        message_id=sid,
        status=FINAL.get(status, "interim"),
        at=clock.iso(clock.now()),
        error_code=code,
        error_message=CODES.get(code or "", f"Twilio status {status}") if FINAL.get(status) == "undelivered" else None,
    )
