"""Telnyx v2: JSON from/to/text, Bearer API key, POST {TELNYX_API_URL}/v2/messages.

Every send carries an `Idempotency-Key` (the SMS's id: the same on every retry and
redelivery) and byte-identical JSON, so a resend after a lost answer cannot text twice:
Telnyx replays the first success for 24 hours (providers.md 2.11).

The account check is `GET /v2/balance` (providers.md 9): decimal strings, `available_credit`
being the balance plus the credit limit; a wrong key is 401 + 10009, a key whose account may
not act 403 + 10010.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from ..config import settings
from .base import (
    Accepted,
    AccountCheck,
    Kind,
    Outbound,
    ProviderError,
    currency_code,
    decimal,
    header_safe,
    in_time,
    json_object,
    kind_for_status,
    no_verdict,
    request,
    unreadable,
    wait_hint,
)

# Telnyx codes that mean the connector, not the recipient, is wrong (providers.md 5.2).
_CONFIG_CODES = {"10009", "10010", "40013"}
OPTED_OUT = "40300"
REPLAY_HOURS = 24  # how long Telnyx replays a success for the same key
# A 409 for a key still in flight carries no wait hint (providers.md 2.11), and the first request
# may still be running for as long as our read timeout: ask again no sooner than this, never
# after a jittered pause that may be zero.
IN_FLIGHT_WAIT = 1.0


class Telnyx:
    name = "telnyx"
    idempotent = True

    def _headers(self, credentials: dict[str, str]) -> dict[str, str]:
        key = credentials["apiKey"]
        header_safe(key)
        return {"Authorization": f"Bearer {key}", "Accept": "application/json"}

    def send(self, credentials: dict[str, str], sms: Outbound) -> Accepted:
        headers = self._headers(credentials) | {"Content-Type": "application/json", "Idempotency-Key": sms.sms_id}
        fields = {"from": sms.sender, "to": sms.to, "text": sms.text}
        if sms.callback_url:
            fields["webhook_url"] = sms.callback_url
        body = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()  # the same bytes every time
        response = request("POST", f"{settings().telnyx_api_url.rstrip('/')}/v2/messages", headers=headers, body=body)
        answer = json_object(response)
        if 200 <= response.status < 300:
            data = answer.get("data")
            if not isinstance(data, dict) or not data.get("id"):
                raise unreadable("Telnyx", response)
            return accepted(data)
        errors = answer.get("errors")
        first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
        code = str(first.get("code") or response.status)
        message = " - ".join(str(first[k]) for k in ("title", "detail") if first.get(k)) or f"HTTP {response.status}"
        kind: Kind = "config" if code in _CONFIG_CODES else kind_for_status(response.status)
        retry_after = wait_hint(response)
        if response.status == 409 and code != OPTED_OUT:
            kind = "retry"  # the same key is still in flight: ask again later with it (providers.md 2.11)
            retry_after = max(retry_after or 0.0, IN_FLIGHT_WAIT)
        raise ProviderError(
            kind,
            code,
            message,
            status=response.status,
            retry_after=retry_after,
            opted_out=code == OPTED_OUT,
        )

    def lookup(self, credentials: dict[str, str], sms: Outbound, since: datetime) -> Accepted | None:
        # Telnyx lists no messages by recipient, and its detail records carry no text
        # (providers.md 8.3): without the lost id it cannot tell.
        raise ProviderError("unknown", "no_lookup", "Telnyx cannot look a message up without its id")

    def account(self, credentials: dict[str, str], deadline: float) -> AccountCheck:
        headers = self._headers(credentials)
        in_time("Telnyx", deadline)
        response = request("GET", f"{settings().telnyx_api_url.rstrip('/')}/v2/balance", headers=headers)
        answer = json_object(response)
        errors = answer.get("errors")
        first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
        code = str(first.get("code") or "")
        code = code if code.isdigit() else str(response.status)
        if response.status == 401:
            return AccountCheck(False, f"the API key is wrong or was deleted (Telnyx {code})")
        if response.status == 403:
            return AccountCheck(False, f"the account is suspended or may not use the API (Telnyx {code})")
        data = answer.get("data")
        if response.status != 200 or not isinstance(data, dict):
            raise no_verdict(response)
        currency = data.get("currency")
        return AccountCheck(
            True,
            "the credentials work",
            balance=decimal(data.get("balance")),
            currency=currency_code(currency),
            available=decimal(data.get("available_credit")),
        )


def accepted(data: dict[str, Any]) -> Accepted:
    """A Telnyx message object (send answer or receipt payload) as what was accepted."""
    raw_cost = data.get("cost")
    cost: dict[str, Any] = raw_cost if isinstance(raw_cost, dict) else {}
    parts = data.get("parts")
    return Accepted(
        message_id=str(data["id"]),
        segments=int(parts) if isinstance(parts, int) and parts > 0 else None,
        cost=str(cost["amount"]) if cost.get("amount") not in (None, "") else None,
        currency=currency_code(cost.get("currency")) if cost.get("amount") not in (None, "") else None,
    )
