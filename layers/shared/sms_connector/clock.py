"""The service's clock, in one place so tests can move it (month boundaries, TTLs)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

_now: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731


def now() -> datetime:
    return _now()


def iso(moment: datetime) -> str:
    """ISO 8601 UTC with milliseconds: sorts as text, as the DynamoDB keys need."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def set_clock(source: Callable[[], datetime] | None) -> None:
    """Replace the clock (None restores the real one). For tests only."""
    global _now
    _now = source or (lambda: datetime.now(UTC))


def parse(value: str) -> datetime:
    """An ISO 8601 time as written by `iso` (or any with a zone) as an aware datetime."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
