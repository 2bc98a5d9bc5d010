"""What the three simulated providers share: the request as read, the reply given, the answer
kinds, the log entry of one request, a taken message and how it ends, a receipt, and the
arithmetic of SMS parts (each provider brings its own character set).

Each provider module (`elks46`, `telnyx`, `twilio`) subclasses `SimulatedProvider` and turns a
`Request` into a `Reply` in its own wire format; `server` owns the socket, the log, the faults and
the timeline that moves taken messages on and posts their receipts.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qs

if TYPE_CHECKING:
    from .server import ProviderSimulator

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
# The GSM 03.38 basic table (without the escape itself); 46elks and Twilio count with it (providers.md 4)
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)


# Answers that refuse the message with the provider's own error (not taken).
REFUSALS = ("invalid_number", "opted_out", "no_credit", "rate_limited", "server_error", "unavailable")
# Answers after which the message IS taken (sent, billed, receipts follow), though the client
# never reads the success: the connection hangs then closes, closes at once, or a proxy answers.
TAKEN_FAULTS = ("accept_then_hang", "accept_then_reset", "unreadable", "accept_then_500")
# Every kind an answer may have: "slow" is "ok" late; "reset" and "timeout" (a reset after
# `timeout_seconds`) close the connection before the message is taken.
KINDS = ("ok", "slow", "reset", "timeout", *REFUSALS, *TAKEN_FAULTS)


@dataclass
class Answer:
    """A scripted answer: 'ok', or a fault of `kind` (see KINDS), optionally after a delay.

    `retry_after` asks for a wait in the provider's own way: a `Retry-After` header at 46elks and
    Twilio, `x-ratelimit-reset` at Telnyx (which documents no `Retry-After`)."""

    kind: str = "ok"
    delay: float = 0.0
    retry_after: int | None = None


@dataclass
class Received:
    """One request as the simulator saw it, and how it answered."""

    provider: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    fields: dict[str, Any]
    status: int = 0
    message_id: str | None = None
    # the answer kind it got (KINDS; a look-up "ok"), or what Telnyx's Idempotency-Key made of it:
    # "replayed", "in_flight", "key_reused", "bad_key"
    answer: str = "ok"
    at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # names in lower case
    body: bytes

    def form(self) -> dict[str, str]:
        """The form-encoded body, first value of each field."""
        return {k: v[0] for k, v in parse_qs(self.body.decode("utf-8", "replace")).items()}

    def basic_auth(self) -> tuple[str, str] | None:
        header = self.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return user, password

    def bearer(self) -> str:
        return self.headers.get("authorization", "").removeprefix("Bearer ")


@dataclass
class Reply:
    """What the simulator does with one request: answer it, or close the connection unanswered."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    dropped: bool = False  # close without answering; the client sees a reset / no response
    drop_after: float = 0.0  # ... after keeping the connection open this long
    # runs once the exchange is decided: just before the answer is written, or once the dropped
    # connection is closed
    done: Callable[[], None] | None = None
    # the provider's success answer when the message was taken, though a fault may hide it
    success: Reply | None = field(default=None, repr=False, compare=False)

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> Reply:
        return cls(status, json.dumps(payload).encode(), "application/json", headers or {})

    @classmethod
    def text(cls, status: int, text: str, headers: dict[str, str] | None = None) -> Reply:
        return cls(status, text.encode(), "text/plain; charset=utf-8", headers or {})

    @classmethod
    def html(cls, status: int, page: str) -> Reply:
        return cls(status, page.encode(), "text/html; charset=utf-8")

    @classmethod
    def drop(cls, after: float = 0.0) -> Reply:
        return cls(0, dropped=True, drop_after=after)


# How a taken message ends, by recipient (our own triggers; everyone else: "delivered"):
# +46700000006 undelivered (Twilio undelivered 30003, Telnyx delivery_failed 40008, 46elks failed),
# +46700000007 sent but never a final state, +46700000008 Telnyx delivery_unconfirmed (delivered
# elsewhere), +46700000009 failed before it was sent (Twilio failed, Telnyx sending_failed, 46elks
# failed).
OUTCOMES = {
    "+46700000006": "undelivered",
    "+46700000007": "no_final",
    "+46700000008": "unconfirmed",
    "+46700000009": "failed",
}


@dataclass
class Stored:
    """A message a provider took: its resource as the provider's look-ups show it, kept up to date as
    the message moves on ("sent", then final), and the callback URLs its receipts go to."""

    id: str
    account: str  # the 46elks API username, Telnyx API key or Twilio account SID that sent it
    to: str
    resource: dict[str, Any]
    callbacks: tuple[str, ...] = ()  # a primary URL, then a failover (Telnyx)
    created: float = field(default_factory=time.time)

    @property
    def outcome(self) -> str:
        return OUTCOMES.get(self.to, "delivered")


@dataclass
class Callback:
    """One receipt request to a client's callback URL: what the simulator posted (or holds), and the
    HTTP status the endpoint answered."""

    provider: str
    message_id: str
    event: str  # the status the receipt carries: "sent", "delivered", "delivery_failed", ...
    url: str
    method: str
    headers: dict[str, str]
    body: bytes
    attempt: int = 1
    status: int | None = None  # the endpoint's answer; 0 when none came; None while held
    at: float = field(default_factory=time.time)


@dataclass
class Notice:
    """A receipt a provider owes its client: rendered afresh for each URL and attempt (a Telnyx
    event carries both, and is signed with a fresh timestamp)."""

    provider: str
    urls: tuple[str, ...]  # the primary URL, then a failover
    render: Callable[[str, int], Callback]  # url, attempt
    accepted: range = range(200, 300)  # the endpoint's answers that end the retries


class SimulatedProvider:
    """One provider's routes. `handle` answers None for a request that is not its own."""

    name: ClassVar[str]

    def __init__(self, sim: ProviderSimulator) -> None:
        self.sim = sim
        self._lock = threading.Lock()
        self.messages: dict[str, Stored] = {}  # by message id, oldest first

    def handle(self, request: Request) -> Reply | None:
        raise NotImplementedError

    def progress(self, stored: Stored, step: str) -> Notice | None:
        """Move a taken message to its "sent" or "final" step (at the times the server chooses);
        the receipt it owes for the change, if any."""
        raise NotImplementedError

    def reset(self) -> None:
        """Forget messages and anything else but the accounts."""
        with self._lock:
            self.messages.clear()

    def keep(self, stored: Stored) -> None:
        """Remember a taken message for look-ups; the server moves it on from here."""
        with self._lock:
            self.messages[stored.id] = stored
        self.sim.follow(self, stored)

    def found(self, account: str, message_id: str) -> dict[str, Any] | None:
        """One of `account`'s messages, as it is now."""
        with self._lock:
            stored = self.messages.get(message_id)
            return copy.deepcopy(stored.resource) if stored and stored.account == account else None

    def listed(self, account: str, wanted: Callable[[Stored], bool]) -> list[dict[str, Any]]:
        """`account`'s messages newest first, but those younger than the listing delay."""
        newest = time.time() - self.sim.listing_delay
        with self._lock:
            return [
                copy.deepcopy(m.resource)
                for m in reversed(self.messages.values())
                if m.account == account and m.created <= newest and wanted(m)
            ]

    def looking(self, request: Request) -> Received:
        """Log a look-up or account check: latency applies to them, scripts and faults do not."""
        received = self.sim.record(self.name, request, {})
        self.sim.pause(self.sim.latency)
        return received

    def answered(self, received: Received, reply: Reply, message_id: str | None = None) -> Reply:
        """Note on the log entry what the client got."""
        received.status = reply.status
        received.message_id = message_id
        return reply

    def taken(self, received: Received, answer: Answer, success: Reply, message_id: str) -> Reply:
        """The message is taken; what reaches the client depends on the answer's fault, if any."""
        if answer.kind == "accept_then_hang":
            reply = Reply.drop(after=self.sim.hang_seconds)
        elif answer.kind == "accept_then_reset":
            reply = Reply.drop()
        elif answer.kind == "unreadable":  # the provider's success status, a proxy's page
            reply = Reply.html(success.status, _PROXY_PAGE)
        elif answer.kind == "accept_then_500":
            reply = Reply.html(502, _BAD_GATEWAY_PAGE)
        else:
            reply = success
        reply.success = success
        return self.answered(received, reply, message_id)


_PROXY_PAGE = """<!DOCTYPE html>
<html><head><title>One moment, please...</title></head>
<body><h1>Checking your connection</h1><p>This page is served by an edge proxy.</p></body></html>
"""
_BAD_GATEWAY_PAGE = """<html>
<head><title>502 Bad Gateway</title></head>
<body><center><h1>502 Bad Gateway</h1></center><hr><center>edge-proxy</center></body>
</html>
"""


@dataclass(frozen=True)
class Segments:
    encoding: str  # "GSM-7" (a 7-bit set) or "UCS-2"
    parts: int


def segments(text: str, seven_bit: frozenset[str], escaped: frozenset[str]) -> Segments:
    """Parts of `text` for a provider whose 7-bit set is `seven_bit` plus `escaped` (2 septets each);
    any other character sends the whole text as UCS-2, counted in UTF-16 code units (providers.md 4).
    Sizes are the same at all three: 160 alone or 153 per part, 70 or 67 in UCS-2."""
    if all(c in seven_bit or c in escaped for c in text):
        units = sum(2 if c in escaped else 1 for c in text)
        single, multi, encoding = 160, 153, "GSM-7"
    else:
        units = len(text.encode("utf-16-be", "surrogatepass")) // 2
        single, multi, encoding = 70, 67, "UCS-2"
    return Segments(encoding, 1 if units <= single else math.ceil(units / multi))
