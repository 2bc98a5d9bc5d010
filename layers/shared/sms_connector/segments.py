"""SMS length: GSM-7 / UCS-2 segments (providers.md section 4) and each provider's limit."""

from __future__ import annotations

import math
from dataclasses import dataclass

GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("\f^{}\\[~]|€")

TWILIO_MAX_CHARS = 1600  # Body limit, error 21617
TELNYX_MAX_PARTS = 10
# 46elks publishes no maximum (providers.md 1.3: "not found"); we hold it to Twilio's 1,600
# characters, the message limit of the whole service, rather than guess a bigger one.
ELKS46_MAX_CHARS = 1600


@dataclass(frozen=True)
class Segments:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    parts: int


def count(text: str) -> Segments:
    if all(c in GSM_BASIC or c in GSM_EXTENSION for c in text):
        units = sum(2 if c in GSM_EXTENSION else 1 for c in text)
        single, multi, encoding = 160, 153, "GSM-7"
    else:
        units = len(text.encode("utf-16-be", "surrogatepass")) // 2
        single, multi, encoding = 70, 67, "UCS-2"
    parts = 1 if units <= single else math.ceil(units / multi)
    return Segments(encoding, units, parts)


def too_long_for(provider: str, text: str) -> str | None:
    """Why `provider` would reject `text` for its length, or None when it fits."""
    if provider == "twilio" and len(text) > TWILIO_MAX_CHARS:
        return f"message has {len(text)} characters; Twilio accepts at most {TWILIO_MAX_CHARS}"
    if provider == "46elks" and len(text) > ELKS46_MAX_CHARS:
        return f"message has {len(text)} characters; at most {ELKS46_MAX_CHARS} are sent through 46elks"
    if provider == "telnyx":
        parts = count(text)
        if parts.parts > TELNYX_MAX_PARTS:
            return f"message needs {parts.parts} {parts.encoding} parts; Telnyx sends at most {TELNYX_MAX_PARTS}"
    return None
