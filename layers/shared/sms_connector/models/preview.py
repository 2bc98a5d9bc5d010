"""The message preview's models."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from ..text import clean_message
from .common import Provider, Strict

# Longer than any provider sends, so that a preview can say "too long" rather than refuse.
PREVIEW_MAX_CHARS = 10_000
PreviewMessage = Annotated[
    str, StringConstraints(min_length=1, max_length=PREVIEW_MAX_CHARS), AfterValidator(clean_message)
]


class PreviewIn(Strict):
    message: PreviewMessage
    provider: Provider | None = Field(
        default=None, description="count with this provider's character set and limits; standard GSM 03.38 without"
    )


class PreviewOut(BaseModel, defer_build=True):
    encoding: Literal["GSM-7", "UCS-2"]
    characters: int = Field(description="characters as a person counts them (code points)")
    segments: int = Field(description="SMS parts the message is sent as")
    tooLong: bool = Field(
        description="more than the provider sends (Twilio and 46elks 1,600 characters, Telnyx 10 parts); "
        "without a provider, more than the service's 1,600 characters"
    )
    ucs2Characters: list[str] = Field(
        description="the characters that forced UCS-2, each once, in order of appearance; empty for GSM-7"
    )
