"""SMS length: 7-bit / UCS-2 segments per provider (providers.md section 4) and each provider's limit.

The sizes are the same everywhere (160/153 septets, 70/67 UTF-16 units); what differs is which
characters keep a message in 7-bit: Twilio uses GSM 03.38 with its extension table (two septets
each), Telnyx its own smaller set (no `€ ¤ § Ç`, no Greek capitals), and 46elks the GSM basic
set only (an extension character is taken to force UCS-2: providers.md says "not found").
Without a provider, the standard GSM 03.38 count is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("\f^{}\\[~]|€")
TELNYX_BASIC = frozenset(
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    "\n\r !\"#$%&'()*+,-./:;<=>?@_£¥èéùìòØøÅåÆæßÉ¡ÄÖÑÜ¿äöñüà"
)
TELNYX_EXTENSION = frozenset("~^|\\{}[]")

# provider -> (characters of one septet, characters of two septets)
CHARACTER_SETS: dict[str | None, tuple[frozenset[str], frozenset[str]]] = {
    None: (GSM_BASIC, GSM_EXTENSION),
    "twilio": (GSM_BASIC, GSM_EXTENSION),
    "telnyx": (TELNYX_BASIC, TELNYX_EXTENSION),
    "46elks": (GSM_BASIC, frozenset()),
}

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
    characters: int  # as a person counts them (code points)
    ucs2_characters: tuple[str, ...] = ()  # the characters that forced UCS-2, each once, in order


def count(text: str, provider: str | None = None) -> Segments:
    basic, extension = CHARACTER_SETS[provider]
    forcing = tuple(dict.fromkeys(c for c in text if c not in basic and c not in extension))
    if not forcing:
        units = sum(2 if c in extension else 1 for c in text)
        single, multi, encoding = 160, 153, "GSM-7"
    else:
        units = len(text.encode("utf-16-be", "surrogatepass")) // 2
        single, multi, encoding = 70, 67, "UCS-2"
    parts = 1 if units <= single else math.ceil(units / multi)
    return Segments(encoding, units, parts, len(text), forcing)


def too_long_for(provider: str, text: str) -> str | None:
    """Why `provider` would reject `text` for its length, or None when it fits."""
    if provider == "twilio" and len(text) > TWILIO_MAX_CHARS:
        return f"message has {len(text)} characters; Twilio accepts at most {TWILIO_MAX_CHARS}"
    if provider == "46elks" and len(text) > ELKS46_MAX_CHARS:
        return f"message has {len(text)} characters; at most {ELKS46_MAX_CHARS} are sent through 46elks"
    if provider == "telnyx":
        parts = count(text, "telnyx")
        if parts.parts > TELNYX_MAX_PARTS:
            return (
                f"message needs {parts.parts} {parts.encoding} parts at Telnyx, which sends at most {TELNYX_MAX_PARTS}"
            )
    return None
