"""Identifiers: ULIDs (time-sortable, 26 characters of Crockford base32)."""

from __future__ import annotations

import os

from . import clock

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid() -> str:
    millis = int(clock.now().timestamp() * 1000)
    value = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))
