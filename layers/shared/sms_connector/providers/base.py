"""The provider interface, its receipt and its typed error, and the shared HTTP pool."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import urllib3

from ..config import settings

# Retry-safe: the provider did not take the message (429, 5xx, no connection). Permanent: this
# message to this recipient will not go (invalid number, opted out). Config: the connector itself
# is wrong (credentials, sender, account); permanent too, and worth an operator's attention.
Kind = Literal["retry", "permanent", "config"]

CONNECT_TIMEOUT = 3.0
_pool: urllib3.PoolManager | None = None


def attempt_budget() -> float:
    """The longest one provider call may take: connect plus read timeout."""
    return CONNECT_TIMEOUT + settings().provider_read_timeout


def pool() -> urllib3.PoolManager:
    """One connection pool for the life of the process: warm invocations reuse TLS sessions."""
    global _pool
    if _pool is None:
        size = settings().send_concurrency
        timeout = urllib3.Timeout(connect=CONNECT_TIMEOUT, read=settings().provider_read_timeout)
        _pool = urllib3.PoolManager(num_pools=8, maxsize=size, timeout=timeout, retries=False)
    return _pool


def reset() -> None:
    """Forget the pool (tests change timeouts between cases)."""
    global _pool
    _pool = None


@dataclass(frozen=True)
class Receipt:
    message_id: str
    segments: int | None = None
    cost: str | None = None  # decimal string, in `currency`
    currency: str | None = None


class ProviderError(Exception):
    def __init__(
        self,
        kind: Kind,
        code: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.kind = kind
        self.code = code
        self.message = message
        self.status = status
        self.retry_after = retry_after


class Provider(Protocol):
    name: str

    def send(self, credentials: dict[str, str], sender: str, to: str, text: str) -> Receipt:
        """Send one SMS; returns the provider's receipt or raises ProviderError."""
        ...


def retry_after(response: urllib3.BaseHTTPResponse) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form only), or None."""
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def kind_for_status(status: int) -> Kind:
    if status in (408, 429) or status >= 500:
        return "retry"
    if status in (401, 402, 403):
        return "config"
    return "permanent"


def post(url: str, *, headers: dict[str, str], body: bytes) -> urllib3.BaseHTTPResponse:
    """POST with the shared pool; a failure to connect or to get an answer is retry-safe."""
    try:
        return pool().request("POST", url, body=body, headers=headers, redirect=False)
    except urllib3.exceptions.HTTPError as exc:
        reason = type(getattr(exc, "reason", None) or exc).__name__
        raise ProviderError("retry", "network", f"no answer from the provider ({reason})") from exc
