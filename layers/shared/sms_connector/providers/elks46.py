"""46elks: form-encoded from/to/message, Basic auth, POST {ELKS46_API_URL}/a1/sms.

46elks has no idempotency key: after a lost answer the message is looked up in the SMS
history by recipient and matched on sender, text and creation time (providers.md 8.2).

The account check is `GET /a1/me` (providers.md 9): its `balance`, like every 46elks amount,
is an integer in 1/10000 of the account's `currency`. 46elks documents no refusal for it; a
401 is taken to mean wrong credentials and a 403 a blocked account.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import urllib3

from ..config import settings
from .base import (
    Accepted,
    AccountCheck,
    Outbound,
    ProviderError,
    currency_code,
    header_safe,
    in_time,
    json_object,
    kind_for_status,
    no_verdict,
    request,
    unreadable,
    wait_hint,
)

UNITS_PER_CURRENCY = 10000  # `cost` and `balance` are in 1/10000 of the account currency


class Elks46:
    name = "46elks"
    idempotent = False

    def _headers(self, credentials: dict[str, str]) -> dict[str, str]:
        header_safe(credentials["username"], credentials["password"])
        headers = urllib3.make_headers(basic_auth=f"{credentials['username']}:{credentials['password']}")
        headers["Accept"] = "application/json"
        return headers

    def _url(self, path: str) -> str:
        return f"{settings().elks46_api_url.rstrip('/')}{path}"

    def send(self, credentials: dict[str, str], sms: Outbound) -> Accepted:
        headers = self._headers(credentials)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        fields = {"from": sms.sender, "to": sms.to, "message": sms.text}
        if sms.callback_url:
            fields["whendelivered"] = sms.callback_url
        response = request("POST", self._url("/a1/sms"), headers=headers, body=urlencode(fields).encode())
        if 200 <= response.status < 300:
            answer = json_object(response)
            if not answer.get("id"):
                raise unreadable("46elks", response)
            return _accepted(answer)
        # 46elks errors are plain text; classify by status only (providers.md 1.5).
        text = response.data.decode("utf-8", "replace").strip()[:300]
        if text.lstrip().startswith("<"):  # a proxy's HTML page, not 46elks' words
            text = ""
        raise ProviderError(
            kind_for_status(response.status),
            str(response.status),
            text or response.reason or f"HTTP {response.status}",
            status=response.status,
            retry_after=wait_hint(response),
        )

    def lookup(self, credentials: dict[str, str], sms: Outbound, since: datetime) -> Accepted | None:
        after = since.astimezone(UTC) - timedelta(seconds=1)
        query = urlencode({"to": sms.to, "end": after.strftime("%Y-%m-%dT%H:%M:%S.%f"), "limit": "100"})
        response = request("GET", self._url(f"/a1/sms?{query}"), headers=self._headers(credentials))
        items = json_object(response).get("data")
        if response.status != 200 or not isinstance(items, list):
            raise ProviderError("unknown", "lookup_failed", f"46elks could not list messages (HTTP {response.status})")
        for item in items:
            if (
                isinstance(item, dict)
                and item.get("id")
                and item.get("direction", "outgoing") == "outgoing"
                and item.get("from") == sms.sender
                and item.get("message") == sms.text
                and _created(item) >= since
            ):
                return _accepted(item)
        return None

    def account(self, credentials: dict[str, str], deadline: float) -> AccountCheck:
        headers = self._headers(credentials)
        in_time(self.name, deadline)
        response = request("GET", self._url("/a1/me"), headers=headers)
        if response.status == 401:
            return AccountCheck(False, "the API username or password is wrong (46elks answered 401)")
        if response.status == 403:
            return AccountCheck(False, "the account is suspended or blocked (46elks answered 403)")
        answer = json_object(response)
        if response.status != 200 or not answer.get("id"):
            raise no_verdict(response)
        balance, currency = answer.get("balance"), answer.get("currency")
        return AccountCheck(
            True,
            "the credentials work",
            balance=Decimal(balance) / UNITS_PER_CURRENCY if isinstance(balance, int) else None,
            currency=currency_code(currency),
        )


def _created(item: dict[str, Any]) -> datetime:
    """46elks times are UTC without a zone (`2017-03-14T09:52:07.302000`)."""
    try:
        return datetime.fromisoformat(str(item.get("created")).removesuffix("Z")).replace(tzinfo=UTC)
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)


def _accepted(answer: dict[str, Any]) -> Accepted:
    parts, cost = answer.get("parts"), answer.get("cost")
    return Accepted(
        message_id=str(answer["id"]),
        segments=int(parts) if isinstance(parts, int) and parts > 0 else None,
        # 1/10000 of the account's currency, which the answer does not name (providers.md 1.4)
        cost=str(Decimal(int(cost)) / UNITS_PER_CURRENCY) if isinstance(cost, int) else None,
        currency=None,
    )
