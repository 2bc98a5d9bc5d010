"""Text types shared by the API models and the rule-action model (kept light: no phonenumbers,
no email validation, so the sender does not import what only the connector API needs).

Free text is checked for hygiene: no control characters (C0, C1, U+2028/U+2029), no
bidirectional overrides or isolates (which make a name read differently from what it is), and,
in names, no invisible formatting characters. A message keeps its line breaks and tabs and
must hold at least one visible character.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING, Annotated, Any

MAX_MESSAGE_CHARS = 1600
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_LINE_BREAKS = frozenset("\u2028\u2029")
_MESSAGE_WHITESPACE = frozenset("\n\r\t")


def _describe(character: str) -> str:
    return f"U+{ord(character):04X}"


def _check(value: str, *, allowed: frozenset[str], invisible_ok: bool) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\ud800" in JSON): no provider can send it
        raise ValueError("must be valid Unicode text (it holds a lone surrogate)") from None
    for c in value:
        if c in allowed:
            continue
        category = unicodedata.category(c)
        if category == "Cc" or c in _LINE_BREAKS:
            raise ValueError(f"must not contain control characters or line breaks (found {_describe(c)})")
        if c in _BIDI:
            raise ValueError(f"must not contain bidirectional override characters (found {_describe(c)})")
        if category == "Cf" and not invisible_ok:
            raise ValueError(f"must not contain invisible formatting characters (found {_describe(c)})")
    if not any(unicodedata.category(c)[0] not in "ZC" for c in value):
        raise ValueError("must contain at least one visible character")
    return value


def clean_line(value: str) -> str:
    """A one-line name or label."""
    return _check(value, allowed=frozenset(), invisible_ok=False)


def clean_message(value: str) -> str:
    """An SMS text: line breaks and tabs allowed; emoji sequences keep their joiners."""
    return _check(value, allowed=_MESSAGE_WHITESPACE, invisible_ok=True)


def not_blank(value: str) -> str:
    """A credential or identifier: something visible, no control character (checked elsewhere)."""
    if not value.strip():
        raise ValueError("must not be empty or only whitespace")
    return value


def plain_line(value: str) -> str:
    """`value` made safe for a one-line header (an email subject): control characters and
    bidirectional overrides become spaces. For names stored before the checks existed."""
    return "".join(" " if unicodedata.category(c) == "Cc" or c in _BIDI or c in _LINE_BREAKS else c for c in value)


def _message_type() -> Any:
    from pydantic import AfterValidator, StringConstraints

    return Annotated[str, StringConstraints(min_length=1, max_length=MAX_MESSAGE_CHARS), AfterValidator(clean_message)]


if TYPE_CHECKING:
    Message = Annotated[str, "an SMS text: 1 to MAX_MESSAGE_CHARS characters, clean_message"]


def __getattr__(name: str) -> Any:
    # `Message`, the API models' type of an SMS text, is made on first use: the sender checks
    # its messages with `clean_message` alone and imports no pydantic (README, Performance).
    if name == "Message":
        globals()["Message"] = message = _message_type()
        return message
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
