"""Twilio: form-encoded To/From/Body, Basic sid:token, POST .../Accounts/{sid}/Messages.json."""

from __future__ import annotations

import json
from urllib.parse import quote, urlencode

import urllib3

from ..config import settings
from .base import Kind, ProviderError, Receipt, kind_for_status, post, retry_after

# providers.md 3.6: codes that mean the connector or account is wrong, and the queue-full
# code that clears by itself.
_CONFIG_CODES = {20003, 20005, 10001, 21408, 21606, 21659, 21661, 21212, 21608, 30002}
_RETRY_CODES = {20429, 21611}


class Twilio:
    name = "twilio"

    def send(self, credentials: dict[str, str], sender: str, to: str, text: str) -> Receipt:
        sid = credentials["accountSid"]
        headers = urllib3.make_headers(basic_auth=f"{sid}:{credentials['authToken']}")
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        headers["Accept"] = "application/json"
        url = f"{settings().twilio_api_url.rstrip('/')}/2010-04-01/Accounts/{quote(sid, safe='')}/Messages.json"
        response = post(url, headers=headers, body=urlencode({"To": to, "From": sender, "Body": text}).encode())
        try:
            answer = json.loads(response.data) if response.data else {}
        except ValueError:
            answer = {}
        if not isinstance(answer, dict):
            answer = {}
        if response.status == 201:
            if not answer.get("sid"):
                raise ProviderError("retry", "bad_answer", "Twilio answered 201 without a message sid")
            segments = answer.get("num_segments")
            return Receipt(
                message_id=str(answer["sid"]),
                segments=int(segments) if segments not in (None, "", "0") else None,
                cost=answer.get("price"),
                currency=answer.get("price_unit"),
            )
        code = answer.get("code")
        kind: Kind = kind_for_status(response.status)
        if code in _CONFIG_CODES:
            kind = "config"
        elif code in _RETRY_CODES:
            kind = "retry"
        message = str(answer.get("message") or f"HTTP {response.status}")
        raise ProviderError(
            kind, str(code or response.status), message, status=response.status, retry_after=retry_after(response)
        )
