"""Telnyx v2: JSON from/to/text, Bearer API key, POST {TELNYX_API_URL}/v2/messages."""

from __future__ import annotations

import json

from ..config import settings
from .base import Kind, ProviderError, Receipt, kind_for_status, post, retry_after

# Telnyx codes that mean the connector, not the recipient, is wrong (providers.md 5.2).
_CONFIG_CODES = {"10009", "10010", "40013"}


class Telnyx:
    name = "telnyx"

    def send(self, credentials: dict[str, str], sender: str, to: str, text: str) -> Receipt:
        headers = {
            "Authorization": f"Bearer {credentials['apiKey']}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        body = json.dumps({"from": sender, "to": to, "text": text}).encode()
        response = post(f"{settings().telnyx_api_url.rstrip('/')}/v2/messages", headers=headers, body=body)
        try:
            answer = json.loads(response.data) if response.data else {}
        except ValueError:
            answer = {}
        if response.status == 200:
            data = answer.get("data") if isinstance(answer, dict) else None
            if not isinstance(data, dict) or not data.get("id"):
                raise ProviderError("retry", "bad_answer", "Telnyx answered 200 without a message id")
            cost = data.get("cost") or {}
            return Receipt(
                message_id=str(data["id"]),
                segments=int(data["parts"]) if data.get("parts") is not None else None,
                cost=cost.get("amount"),
                currency=cost.get("currency"),
            )
        errors = answer.get("errors") if isinstance(answer, dict) else None
        first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
        code = str(first.get("code") or response.status)
        message = " - ".join(str(first[k]) for k in ("title", "detail") if first.get(k)) or f"HTTP {response.status}"
        kind: Kind = "config" if code in _CONFIG_CODES else kind_for_status(response.status)
        raise ProviderError(kind, code, message, status=response.status, retry_after=retry_after(response))
