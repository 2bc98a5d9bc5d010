"""The provider interface, what a provider answers, its typed error, and the shared HTTP pool.

How an answer is classified (DESIGN.md, "Outcomes, unknowns and time"):
- `retry`: the provider surely did not take the message: no connection was made, or it
  answered 429 or 503. Safe to send again.
- `unknown`: the request left and no readable answer came back (read timeout, reset, another
  5xx, an unreadable 2xx). Never resent blindly: an idempotent provider (Telnyx, with the same
  key) may be asked again; the others are asked whether the message exists first.
- `permanent`: this message to this recipient will not go (invalid number, opted out).
- `config`: the connector itself is wrong (credentials, sender, account); permanent too.

Each adapter also checks an account without sending (`account`, providers.md 9): a verdict
when the provider judged the credentials, a ProviderError when it could not be asked (no
connection, no answer, a 5xx, a rate limit, an answer that is not its API's).
"""

from __future__ import annotations

import email.utils
import json
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, Protocol

import urllib3

from ..config import settings

Kind = Literal["retry", "unknown", "permanent", "config"]

CONNECT_TIMEOUT = 3.0
MAX_WAIT = 60.0  # the longest rate-limit pause we honour within one invocation
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
class Outbound:
    """One SMS as a provider is asked to send it."""

    sender: str
    to: str
    text: str
    sms_id: str  # stable for this SMS across retries and redeliveries (Telnyx's Idempotency-Key)
    callback_url: str | None = None  # where the provider posts delivery receipts, if asked


@dataclass(frozen=True)
class Accepted:
    """The provider took the message: its id, and what it reported about size and price."""

    message_id: str
    segments: int | None = None
    cost: str | None = None  # a positive decimal string, in `currency`
    currency: str | None = None


@dataclass(frozen=True)
class AccountCheck:
    """What a provider said about an account, in our words (never a credential in them)."""

    ok: bool  # the credentials work (a trial account's too)
    detail: str  # why not, or what to know: "the auth token is wrong", "trial account: ..."
    balance: Decimal | None = None  # as the provider shows it
    currency: str | None = None  # ISO 4217
    # what can still pay for SMS, when it differs from the balance (Telnyx: balance + credit limit)
    available: Decimal | None = None
    trial: bool = False


class ProviderError(Exception):
    def __init__(
        self,
        kind: Kind,
        code: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        opted_out: bool = False,
    ) -> None:
        super().__init__(f"{kind} {code}")  # never the provider's text: it may hold a number
        self.kind = kind
        self.code = code
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.opted_out = opted_out


class Provider(Protocol):
    name: str
    # True when sending the same SMS again cannot text twice (Telnyx's Idempotency-Key).
    idempotent: bool

    def send(self, credentials: dict[str, str], sms: Outbound) -> Accepted:
        """Send one SMS; returns what the provider accepted or raises ProviderError."""
        ...

    def lookup(self, credentials: dict[str, str], sms: Outbound, since: datetime) -> Accepted | None:
        """Whether the provider has this SMS, created at or after `since`: found, or None.
        Raises ProviderError when the provider cannot tell."""
        ...

    def account(self, credentials: dict[str, str], deadline: float) -> AccountCheck:
        """Check the credentials with the provider's free account endpoint; no call starts that
        could end after `deadline` (time.monotonic()). Raises ProviderError when the provider
        could not be asked or did not judge them."""
        ...


def kind_for_status(status: int) -> Kind:
    if status in (429, 503):
        return "retry"
    if status >= 500 or status == 408:
        return "unknown"
    if status in (401, 402, 403):
        return "config"
    return "permanent"


def wait_hint(response: urllib3.BaseHTTPResponse) -> float | None:
    """Seconds the provider asks us to wait: `Retry-After` (seconds or an HTTP date), else
    Telnyx's `x-ratelimit-reset` (seconds until the limit resets; providers.md 2.5)."""
    value = response.headers.get("Retry-After")
    if value is not None:
        try:
            return min(MAX_WAIT, max(0.0, float(value)))
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
                return min(MAX_WAIT, max(0.0, when.timestamp() - time.time()))
            except (TypeError, ValueError):
                return None
    reset = response.headers.get("x-ratelimit-reset")
    try:
        return min(MAX_WAIT, max(0.0, float(reset))) if reset is not None else None
    except ValueError:
        return None


def unreadable(provider: str, response: urllib3.BaseHTTPResponse) -> ProviderError:
    """A success status whose body is not the provider's answer (a proxy's HTML page, say):
    the message may well have been taken."""
    return ProviderError(
        "unknown",
        "unreadable_answer",
        f"{provider} answered {response.status} with a body that is not its API's answer",
        status=response.status,
    )


def request(method: str, url: str, *, headers: dict[str, str], body: bytes | None = None) -> urllib3.BaseHTTPResponse:
    """One HTTP call with the shared pool. A failure to connect is retry-safe; a failure after
    the request left (no answer, a broken answer) leaves the outcome unknown."""
    try:
        return pool().request(method, url, body=body, headers=headers, redirect=False)
    except (urllib3.exceptions.ConnectTimeoutError, urllib3.exceptions.SSLError) as exc:
        # NewConnectionError and name resolution failures are ConnectTimeoutErrors too.
        raise ProviderError("retry", "no_connection", f"could not connect ({type(exc).__name__})") from None
    except urllib3.exceptions.HTTPError as exc:
        reason = type(getattr(exc, "reason", None) or exc).__name__
        raise ProviderError(
            "unknown", "no_answer", f"the request was sent but no answer came back ({reason})"
        ) from None


def in_time(provider: str, deadline: float) -> None:
    """Refuse to start a call that could outlast `deadline`."""
    if time.monotonic() + attempt_budget() > deadline:
        raise ProviderError("retry", "no_time", f"no time was left to ask {provider} before the request's deadline")


def no_verdict(response: urllib3.BaseHTTPResponse) -> ProviderError:
    """An answer to an account check that says nothing about the credentials (a 5xx, a 429, a
    proxy's page): the check could not be made."""
    if response.status == 429:
        why = "it is rate limiting us"
    elif response.status >= 500:
        why = f"it answered {response.status}, a fault on its side"
    elif 200 <= response.status < 300:
        why = f"it answered {response.status} with a body that is not its API's answer"
    else:
        why = f"it answered {response.status}, which says nothing about the credentials"
    return ProviderError("unknown", "no_verdict", why)


def json_object(response: urllib3.BaseHTTPResponse) -> dict[str, Any]:
    """The answer's JSON object, or {} when it is something else."""
    try:
        answer = json.loads(response.data) if response.data else {}
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def decimal(value: Any) -> Decimal | None:
    """A provider's decimal string (or number) as a Decimal; None when it is not one."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def currency_code(value: Any) -> str | None:
    """A provider's currency (ISO 4217) upper-cased; None when it gave none."""
    return value.strip().upper() or None if isinstance(value, str) else None


def amount_text(value: Decimal) -> str:
    """A money amount for people: at least two decimals, no exponent (`200.00`, `0.0051`)."""
    if value == value.quantize(Decimal("0.01")):
        return f"{value:.2f}"
    return format(value.normalize(), "f")


def header_safe(*values: str) -> None:
    """Refuse a credential that cannot go into an HTTP header (a pasted newline, say): the HTTP
    library would raise with the whole header, secret included, in its message."""
    if any(not v or any(ord(c) < 0x20 or ord(c) == 0x7F for c in v) for v in values):
        raise ProviderError(
            "config", "bad_credentials", "a stored credential holds a control character; save the credentials again"
        )
