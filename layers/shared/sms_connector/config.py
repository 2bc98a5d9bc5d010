"""The service's settings, read from the environment once and cached.

Checked by hand, not with pydantic: every function reads its settings, and the functions that
serve no HTTP API (the sender, the fallback, the receipts, the sweep) then import no pydantic
at all, which is about 45 ms of each of their cold starts (README, Performance).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class Settings:
    table_name: str
    tenant_claim: str = "tenant_id"
    secret_prefix: str = "sms-connector/"  # noqa: S105 - a name prefix, not a secret
    secret_recovery_days: int = 7
    send_queue_url: str = ""
    fallback_queue_url: str = ""
    log_retention_days: int = 90
    elks46_api_url: str = "https://api.46elks.com"
    telnyx_api_url: str = "https://api.telnyx.com"
    twilio_api_url: str = "https://api.twilio.com"
    # Seconds to wait for a provider's answer; a timeout is retried (providers.md 5.3 explains
    # the duplicate risk, which is why it is generous).
    provider_read_timeout: float = 10.0
    # Enough for a full batch (10 actions x 3 recipients) in about one provider round trip.
    send_concurrency: int = 32
    # The public origin of the receipt routes; without it no receipt is asked for.
    public_api_url: str = ""
    receipt_deadline_minutes: int = 120
    email_identity: str = ""
    test_sends_per_hour: int = 10


# The bounds of the numeric settings: (lowest, highest, whether the lowest itself is allowed).
_BOUNDS: dict[str, tuple[float, float, bool]] = {
    "secret_recovery_days": (7, 30, True),
    "log_retention_days": (1, math.inf, True),
    "provider_read_timeout": (0, 60, False),
    "send_concurrency": (1, 64, True),
    "receipt_deadline_minutes": (1, 7 * 24 * 60, True),
    "test_sends_per_hour": (0, 10000, True),
}


def _read(field: dataclasses.Field[object], text: str) -> object:
    name = field.name.upper()
    kind = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "")
    if kind == "str":
        return text
    try:
        value: float = int(text) if kind == "int" else float(text)
    except ValueError:
        raise ValueError(f"{name} must be {'a whole number' if kind == 'int' else 'a number'}") from None
    low, high, low_allowed = _BOUNDS[field.name]
    if not (value >= low if low_allowed else value > low) or value > high or math.isnan(value):
        above = f"at least {low}" if low_allowed else f"more than {low}"
        raise ValueError(f"{name} must be {above}" + (f" and at most {high}" if high != math.inf else ""))
    return value


def load(environ: dict[str, str]) -> Settings:
    """The settings in `environ` (each named as its field, in capitals); ValueError when one is
    missing or out of its bounds."""
    values = {}
    for field in dataclasses.fields(Settings):
        text = environ.get(field.name.upper())
        if text is not None:
            values[field.name] = _read(field, text)
        elif field.default is dataclasses.MISSING:
            raise ValueError(f"{field.name.upper()} must be set")
    return Settings(**values)  # type: ignore[arg-type]


@cache
def settings() -> Settings:
    return load(dict(os.environ))


def reset() -> None:
    """Forget the cached settings (tests change the environment between cases)."""
    settings.cache_clear()
