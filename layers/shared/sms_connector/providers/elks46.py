"""46elks: form-encoded from/to/message, Basic auth, POST {ELKS46_API_URL}/a1/sms."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import urllib3

from ..config import settings
from .base import ProviderError, Receipt, kind_for_status, post, retry_after


class Elks46:
    name = "46elks"

    def send(self, credentials: dict[str, str], sender: str, to: str, text: str) -> Receipt:
        headers = urllib3.make_headers(basic_auth=f"{credentials['username']}:{credentials['password']}")
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        headers["Accept"] = "application/json"
        body = urlencode({"from": sender, "to": to, "message": text}).encode()
        response = post(f"{settings().elks46_api_url.rstrip('/')}/a1/sms", headers=headers, body=body)
        if response.status == 200:
            try:
                answer = json.loads(response.data)
                return Receipt(
                    message_id=str(answer["id"]),
                    segments=int(answer["parts"]) if answer.get("parts") is not None else None,
                    cost=f"{int(answer['cost']) / 10000:.4f}" if answer.get("cost") is not None else None,
                )
            except (ValueError, KeyError, TypeError):
                raise ProviderError("retry", "bad_answer", "46elks answered 200 without a message id") from None
        # 46elks errors are plain text; classify by status only (providers.md 1.5).
        text_answer = response.data.decode("utf-8", "replace").strip()[:300] or response.reason or "error"
        raise ProviderError(
            kind_for_status(response.status),
            str(response.status),
            text_answer,
            status=response.status,
            retry_after=retry_after(response),
        )
