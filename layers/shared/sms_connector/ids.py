"""Identifiers: ULIDs (time-sortable, 26 characters of Crockford base32), and what a connector
id may look like wherever one arrives (a path, a receipt URL, the OpenAPI document)."""

from __future__ import annotations

import os
import re

from . import clock

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CONNECTOR_ID = r"[0-9A-Za-z_-]{1,64}"  # ULIDs, and ids a platform brought along
CONNECTOR_ID_PATTERN = f"^{_CONNECTOR_ID}$"  # for the models and the OpenAPI document
_CONNECTOR_ID_RE = re.compile(_CONNECTOR_ID)


def is_connector_id(text: str) -> bool:
    return _CONNECTOR_ID_RE.fullmatch(text) is not None


def ulid() -> str:
    millis = int(clock.now().timestamp() * 1000)
    value = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))
