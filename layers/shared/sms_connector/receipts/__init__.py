"""Delivery receipts: where the providers are asked to post them, and what they change.

The receipt URL names the provider and the connector, and carries the SMS's own id as the
`sms` query parameter, so a receipt finds its record with one read, and a receipt for an SMS
whose send answer was lost still settles it (providers.md 5.3).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from ..config import settings

# Fields of the connector's secret (beside the credentials) that hold the 46elks receipt token,
# and the previous one with the time until which it is still accepted.
TOKEN_FIELD = "_receiptToken"  # noqa: S105 - a field name, not a secret
PREVIOUS_TOKEN_FIELD = "_previousReceiptToken"  # noqa: S105 - a field name, not a secret
PREVIOUS_UNTIL_FIELD = "_previousReceiptTokenUntil"


def callback_url(connector: dict[str, Any], secret: dict[str, str], sms_id: str) -> str | None:
    """The URL this SMS's provider should post its receipt to, or None when no receipt can
    be asked for (no public URL configured, or a Telnyx connector without its public key)."""
    base = settings().public_api_url.rstrip("/")
    provider = connector["provider"]
    if not base:
        return None
    path = f"{base}/receipts/{provider}/{quote(connector['id'], safe='')}"
    if provider == "telnyx" and not connector.get("webhookPublicKey"):
        return None
    if provider == "46elks":
        token = secret.get(TOKEN_FIELD)
        if not token:
            return None
        path += f"/{token}"
    return f"{path}?sms={sms_id}"
