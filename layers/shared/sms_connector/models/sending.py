"""The test send's models."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from ..phone import E164
from ..text import Message
from .common import Strict


class TestSendIn(Strict):
    to: E164 | None = Field(default=None, description="one of the connector's recipients; all when left out")
    message: Message | None = None


class SendResult(BaseModel, defer_build=True):
    to: str
    status: Literal["sent", "failed", "unknown", "suppressed", "not attempted"]
    error: str | None = Field(default=None, description="why it was not (surely) sent; numbers masked")


class TestSendOut(BaseModel, defer_build=True):
    results: list[SendResult]
