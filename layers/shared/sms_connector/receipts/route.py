"""The receipt routes: a provider's receipt checked against its own proof, then applied to
the SMS's record (`sending.record.receipt_change` says what a receipt changes).

    POST /receipts/twilio/{connectorId}?sms={smsId}          X-Twilio-Signature
    POST /receipts/telnyx/{connectorId}?sms={smsId}          Ed25519 (the connector's webhookPublicKey)
    POST /receipts/46elks/{connectorId}/{token}?sms={smsId}  the connector's secret token

No JWT: the provider's proof instead, checked against the URL rebuilt from PUBLIC_API_URL
(never from the Host header). A failed check is a 403 that changes nothing; a body that is
too big or malformed is a 413 or 400; every correctly proven receipt answers 200 (the
providers retry anything else), also when it changes nothing (a duplicate, a late one, one
for an SMS we do not know or another connector's). A receipt we could not record answers
503, so the provider tries again.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from typing import Any
from urllib.parse import parse_qs

from aws_lambda_powertools import Logger

from .. import connector_store, credentials, ids
from ..config import settings
from ..errors import MAX_BODY_BYTES, error_body
from ..providers.twilio import Twilio
from ..sending import emails
from ..sending import record as sms_record
from . import PREVIOUS_TOKEN_FIELD, PREVIOUS_UNTIL_FIELD, TOKEN_FIELD
from . import elks46 as elks46_receipts
from . import telnyx as telnyx_receipts
from . import twilio as twilio_receipts

logger = Logger()
_SMS_ID = re.compile(r"[0-9a-f]{32}")


def _answer(status: int, message: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": error_body(status, message),
    }


def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    parts = str(event.get("rawPath", "")).strip("/").split("/")
    if len(parts) not in (3, 4) or parts[0] != "receipts" or parts[1] not in ("twilio", "telnyx", "46elks"):
        return _answer(404, "no such route")
    provider, connector_id = parts[1], parts[2]
    if (len(parts) == 4) != (provider == "46elks") or not ids.is_connector_id(connector_id):
        return _answer(404, "no such route")
    raw = event.get("body") or ""
    try:
        body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode("utf-8")
    except (binascii.Error, ValueError):
        return _answer(400, "the body is not readable")
    if len(body) > MAX_BODY_BYTES:
        return _answer(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    query = parse_qs(str(event.get("rawQueryString") or ""))
    sms = (query.get("sms") or [""])[0]
    if not _SMS_ID.fullmatch(sms):
        return _answer(400, "the receipt URL names no SMS")
    where = {"provider": provider, "connector_id": connector_id}
    connector = connector_store.get(connector_id)
    if connector is None or connector.get("type") != "sms" or connector.get("provider") != provider:
        logger.warning("receipt for a connector we do not have", extra=where)
        return _answer(404, "no such connector")
    secret = credentials.read(connector["secretArn"], connector["secretVersion"])
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    why = _proof_problem(provider, connector, secret, event, body, headers, parts)
    if why:
        logger.warning("receipt refused", extra=where | {"reason": why})
        return _answer(403, "the receipt's proof is not valid")
    try:
        report = _report(provider, body)
    except (ValueError, UnicodeDecodeError):
        return _answer(400, "the receipt is not in the provider's format")
    if report is None:
        return _answer(200, "nothing to record")
    return _apply(connector, secret, sms, report, where)


def _proof_problem(
    provider: str,
    connector: dict[str, Any],
    secret: dict[str, str],
    event: dict[str, Any],
    body: bytes,
    headers: dict[str, str],
    parts: list[str],
) -> str:
    """'' when the receipt carries its provider's proof, else why not (no secret in it)."""
    if provider == "twilio":
        base = settings().public_api_url.rstrip("/")
        query = str(event.get("rawQueryString") or "")
        url = f"{base}{event.get('rawPath', '')}" + (f"?{query}" if query else "")
        try:
            ok = twilio_receipts.verify(secret["authToken"], url, body, headers.get("x-twilio-signature"))
        except UnicodeDecodeError:
            return "a body that is not UTF-8"
        return "" if ok else "a signature that does not match"
    if provider == "telnyx":
        key = connector.get("webhookPublicKey")
        if not key:
            return "the connector has no webhookPublicKey: receipts are off"
        return telnyx_receipts.verify(
            key, body, headers.get("telnyx-signature-ed25519"), headers.get("telnyx-timestamp")
        )
    token = parts[3]
    if elks46_receipts.token_matches(token, secret.get(TOKEN_FIELD)):
        return ""
    if elks46_receipts.token_matches(token, secret.get(PREVIOUS_TOKEN_FIELD)) and time.time() < float(
        secret.get(PREVIOUS_UNTIL_FIELD) or 0
    ):
        return ""
    return "a token that does not match"


def _report(provider: str, body: bytes) -> sms_record.Report | None:
    if provider == "twilio":
        return twilio_receipts.parse(body)
    if provider == "telnyx":
        return telnyx_receipts.parse(body)
    return elks46_receipts.parse(body)


def _apply(
    connector: dict[str, Any], secret: dict[str, str], sms: str, report: sms_record.Report, where: dict[str, str]
) -> dict[str, Any]:
    stored = sms_record.read(sms)
    if stored is None or stored.get("connectorId") != connector["id"]:
        # An SMS we do not know (expired, or never ours), or another connector's: changes nothing.
        logger.warning("receipt for an SMS this connector does not have", extra=where | {"status": report.status})
        return _answer(200, "unknown SMS; nothing changed")
    if stored.get("messageId") and stored["messageId"] != report.message_id:
        logger.warning("receipt for another message id", extra=where | {"status": report.status})
        return _answer(200, "another message; nothing changed")
    if (
        connector["provider"] == "twilio"
        and report.status != "interim"
        and report.cost is None
        and not stored.get("costCounted")
    ):
        price = Twilio().message(secret, report.message_id)  # the callback carries no price
        if price and price.cost is not None:
            report = sms_record.Report(**(vars(report) | {"cost": price.cost, "currency": price.currency}))
    # What the receipt does to the record as it is when written: if the sender records the
    # outcome (or another receipt lands) between the read and the write, it is worked out again.
    applied: tuple[dict[str, Any], sms_record.Change] | None = None  # the last one worked out

    def write_for(record: dict[str, Any]) -> sms_record.Write | None:
        nonlocal applied
        change = sms_record.receipt_change(record, report)
        applied = (record, change) if change is not None else None
        if change is None:
            return None
        if change.owes_email:  # owed in the same write; queued after it (or by the sweep)
            change.sets |= sms_record.email_due(report.at)
        write = sms_record.change_write(sms, connector["id"], change)
        write.retry = write_for
        return write

    write = write_for(stored)
    if write is None:
        return _answer(200, "nothing changed")
    if sms_record.commit([write]):
        return _answer(503, "the receipt could not be recorded; try again")
    if applied is None:
        return _answer(200, "nothing changed")
    record, change = applied
    if change.owes_email:
        owed = record | {
            "outcome": "undelivered",
            "errorCode": report.error_code,
            "reason": report.error_message,
            "at": report.at,
        }
        [queued] = emails.queue([emails.message(connector, owed)])
        if queued:  # else the sweep finds it due and queues it
            sms_record.commit([sms_record.change_write(sms, connector["id"], sms_record.email_queued())])
    logger.info("receipt recorded", extra=where | {"status": report.status})
    return _answer(200, "recorded")
