"""Twilio: form-encoded To/From/Body, Basic sid:token, POST .../Accounts/{sid}/Messages.json.

Twilio has no idempotency key on Messages (providers.md 5.3): after a lost answer the message
is looked up by To and From and matched on its body and creation time (providers.md 8.1).

The account check is `GET .../Accounts/{sid}.json` (`status` active/suspended/closed, `type`
Trial/Full), then `.../Balance.json` for the money (providers.md 9). A wrong token is 401 +
20003, and so is a suspended or closed account: Twilio does not tell them apart. The account
answer carries the auth token: only `status` and `type` are read from it, and it goes nowhere.
"""

from __future__ import annotations

import time
from datetime import datetime
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlencode

import urllib3

from ..config import settings
from .base import (
    Accepted,
    AccountCheck,
    Kind,
    Outbound,
    ProviderError,
    attempt_budget,
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

# providers.md 3.6: codes that mean the connector or account is wrong, and the queue-full
# code that clears by itself.
_CONFIG_CODES = {20003, 20005, 10001, 21408, 21606, 21659, 21660, 21661, 21212, 21608, 30002}
_RETRY_CODES = {20429, 21611}
OPTED_OUT = 21610


class Twilio:
    name = "twilio"
    idempotent = False

    def _account(self, credentials: dict[str, str]) -> tuple[str, dict[str, str]]:
        sid, token = credentials["accountSid"], credentials["authToken"]
        header_safe(sid, token)
        headers = urllib3.make_headers(basic_auth=f"{sid}:{token}")
        headers["Accept"] = "application/json"
        return f"{settings().twilio_api_url.rstrip('/')}/2010-04-01/Accounts/{quote(sid, safe='')}", headers

    def send(self, credentials: dict[str, str], sms: Outbound) -> Accepted:
        base, headers = self._account(credentials)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        fields = {"To": sms.to, "From": sms.sender, "Body": sms.text}
        if sms.callback_url:
            fields["StatusCallback"] = sms.callback_url
        response = request("POST", f"{base}/Messages.json", headers=headers, body=urlencode(fields).encode())
        answer = json_object(response)
        if 200 <= response.status < 300:
            if not answer.get("sid"):
                raise unreadable("Twilio", response)
            return _accepted(answer)
        code = answer.get("code")
        kind: Kind = kind_for_status(response.status)
        if code in _CONFIG_CODES:
            kind = "config"
        elif code in _RETRY_CODES:
            kind = "retry"
        message = str(answer.get("message") or f"HTTP {response.status}")
        raise ProviderError(
            kind,
            str(code or response.status),
            message,
            status=response.status,
            retry_after=wait_hint(response),
            opted_out=code == OPTED_OUT,
        )

    def lookup(self, credentials: dict[str, str], sms: Outbound, since: datetime) -> Accepted | None:
        base, headers = self._account(credentials)
        query = urlencode({"To": sms.to, "From": sms.sender, "PageSize": "50"})
        response = request("GET", f"{base}/Messages.json?{query}", headers=headers)
        answer = json_object(response)
        messages = answer.get("messages")
        if response.status != 200 or not isinstance(messages, list):
            raise ProviderError("unknown", "lookup_failed", f"Twilio could not list messages (HTTP {response.status})")
        for message in messages:
            if not isinstance(message, dict) or message.get("body") != sms.text or not message.get("sid"):
                continue
            try:
                created = parsedate_to_datetime(str(message.get("date_created")))
            except (TypeError, ValueError):
                continue
            if created >= since:
                return _accepted(message)
        return None

    def message(self, credentials: dict[str, str], message_id: str) -> Accepted | None:
        """One message as Twilio has it now (its `price` is filled in after sending; status
        callbacks carry none: providers.md 12); None when Twilio cannot say."""
        base, headers = self._account(credentials)
        try:
            response = request("GET", f"{base}/Messages/{quote(message_id, safe='')}.json", headers=headers)
        except ProviderError:
            return None
        answer = json_object(response)
        return _accepted(answer) if response.status == 200 and answer.get("sid") else None

    def account(self, credentials: dict[str, str], deadline: float) -> AccountCheck:
        base, headers = self._account(credentials)
        in_time("Twilio", deadline)
        response = request("GET", f"{base}.json", headers=headers)
        answer = json_object(response)
        code = answer.get("code") if isinstance(answer.get("code"), int) else None
        if response.status == 401:
            return AccountCheck(
                False,
                f"the Account SID or auth token is wrong, or the account is suspended or closed (Twilio {code or 401})",
            )
        if response.status == 404:
            return AccountCheck(False, f"no Twilio account has this Account SID (Twilio {code or 404})")
        if response.status == 403:
            return AccountCheck(False, f"this account may not be used with these credentials (Twilio {code or 403})")
        status, kind = answer.get("status"), answer.get("type")
        if response.status != 200 or not isinstance(status, str):
            raise no_verdict(response)
        if status != "active":
            return AccountCheck(
                False, f"the account is {status}" if status in ("suspended", "closed") else "the account is not active"
            )
        balance, currency = self._balance(base, headers, deadline)
        trial = kind == "Trial"
        return AccountCheck(
            True,
            "trial account: can text verified numbers only" if trial else "the credentials work",
            balance=balance,
            currency=currency,
            trial=trial,
        )

    def _balance(self, base: str, headers: dict[str, str], deadline: float) -> tuple[Decimal | None, str | None]:
        """The account's balance, when Twilio gives one (child accounts have none) in time; the
        verdict does not depend on it."""
        if time.monotonic() + attempt_budget() > deadline:
            return None, None
        try:
            response = request("GET", f"{base}/Balance.json", headers=headers)
        except ProviderError:
            return None, None
        answer = json_object(response)
        currency = answer.get("currency")
        if response.status != 200 or decimal(answer.get("balance")) is None:
            return None, None
        return decimal(answer.get("balance")), currency_code(currency)


def _accepted(answer: dict[str, Any]) -> Accepted:
    segments = str(answer.get("num_segments") or "")
    price = answer.get("price")
    cost = None
    if price not in (None, ""):
        try:
            cost = str(abs(Decimal(str(price))))  # Twilio shows charges as negative amounts
        except InvalidOperation:
            cost = None
    return Accepted(
        message_id=str(answer["sid"]),
        segments=int(segments) if segments.isdigit() and segments != "0" else None,
        cost=cost,
        currency=currency_code(answer.get("price_unit")) if cost else None,
    )
