"""Text types shared by the API models and the rule-action model (kept light: no phonenumbers,
no email validation, so the sender does not import what only the connector API needs)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, StringConstraints

MAX_MESSAGE_CHARS = 1600


def not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or only whitespace")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\ud800" in JSON): no provider can send it
        raise ValueError("must be valid Unicode text (it holds a lone surrogate)") from None
    return value


Message = Annotated[str, StringConstraints(min_length=1, max_length=MAX_MESSAGE_CHARS), AfterValidator(not_blank)]
