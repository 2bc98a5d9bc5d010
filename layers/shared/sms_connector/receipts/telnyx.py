"""Telnyx messaging webhooks: the Ed25519 signature checked, the event read as a Report.

Signed message: `{telnyx-timestamp}|{raw body}`, header `telnyx-signature-ed25519` (base64
of 64 bytes), key: the account's public key (base64 of 32 bytes, the connector's
`webhookPublicKey`). A timestamp more than 300 s from now is refused (providers.md 2.8).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Any

from .. import clock
from ..providers.base import currency_code
from ..sending.record import Report

TOLERANCE_SECONDS = 300
FINAL = {
    "delivered": "delivered",
    "delivery_failed": "undelivered",
    "sending_failed": "undelivered",
    "expired": "undelivered",
    "delivery_unconfirmed": "unconfirmed",
}


def public_key_valid(value: str) -> bool:
    try:
        return len(base64.b64decode(value, validate=True)) == 32
    except (binascii.Error, ValueError):
        return False


def verify(public_key: str, body: bytes, signature: str | None, timestamp: str | None, now: float | None = None) -> str:
    """'' when the receipt is Telnyx's, else why not (never the signature itself)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if not signature or not timestamp:
        return "no signature headers"
    try:
        moment = int(timestamp)
    except ValueError:
        return "a timestamp that is not a number"
    if abs((time.time() if now is None else now) - moment) > TOLERANCE_SECONDS:
        return f"a timestamp more than {TOLERANCE_SECONDS} s from now"
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key, validate=True))
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return "a signature or key that is not base64 of the right length"
    if len(raw) != 64:
        return "a signature of the wrong length"
    try:
        key.verify(raw, timestamp.encode() + b"|" + body)
    except InvalidSignature:
        return "a signature that does not match"
    return ""


def parse(body: bytes) -> Report | None:
    """The event as a Report, or None for events that are not about an outbound message's
    delivery."""
    event = json.loads(body)
    data = event.get("data") if isinstance(event, dict) else None
    if not isinstance(data, dict) or data.get("event_type") not in ("message.sent", "message.finalized"):
        return None
    payload = data.get("payload")
    if not isinstance(payload, dict) or not payload.get("id"):
        return None
    to = payload.get("to")
    first = to[0] if isinstance(to, list) and to and isinstance(to[0], dict) else {}
    status = FINAL.get(str(first.get("status")), "interim") if data["event_type"] == "message.finalized" else "interim"
    errors = payload.get("errors")
    error = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    raw_cost = payload.get("cost")
    cost: dict[str, Any] = raw_cost if isinstance(raw_cost, dict) else {}
    return Report(
        message_id=str(payload["id"]),
        status=status,
        at=clock.iso(clock.now()),
        error_code=str(error["code"]) if error.get("code") else None,
        error_message=" - ".join(str(error[k]) for k in ("title", "detail") if error.get(k)) or None,
        cost=str(cost["amount"]) if cost.get("amount") not in (None, "") else None,
        currency=currency_code(cost.get("currency")),
    )
