"""Text types shared by the API models and the rule-action model (kept light: no phonenumbers,
no email validation, so the sender does not import what only the connector API needs)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, StringConstraints

MAX_MESSAGE_CHARS = 1600


def not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or only whitespace")
    return value


Message = Annotated[str, StringConstraints(min_length=1, max_length=MAX_MESSAGE_CHARS), AfterValidator(not_blank)]
