"""Telnyx API v2 as the simulator plays it (providers.md section 2): `POST /v2/messages` with a
JSON body (`from`, `to`, `text`, optional `webhook_url` and `webhook_failover_url`), a Bearer API
key, an optional `Idempotency-Key` (section 2.11), `{"data": message}` with `parts`, `encoding`
and `cost` on success, `{"errors": [{code, title, detail, source}]}` on failure, and 429s with
`x-ratelimit-*` headers but no Retry-After. Also `GET /v2/messages/{id}` (section 8.3), the
balance check (`GET /v2/balance`, section 9) and the `message.sent` / `message.finalized` events
POSTed to the webhook URLs, signed with Ed25519 (section 2.8; the public key:
`ProviderSimulator.telnyx_public_key`).

Accounts: `add_telnyx_key(key, balance=, currency=, status=, credit_limit=)`; a suspended account
and a send its credit cannot pay for are refused with 403 + 10010 (our choice).
Magic recipients: see `server` (answers; an opted-out one gets 409 + 40300) and `base.OUTCOMES`
(how a message ends; +46700000008 is delivery_unconfirmed here).
"""

from __future__ import annotations

import base64
import copy
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .base import (
    E164,
    Answer,
    Callback,
    Notice,
    Received,
    Reply,
    Request,
    Segments,
    SimulatedProvider,
    Stored,
    segments,
)

if TYPE_CHECKING:
    from .server import ProviderSimulator

# Idempotency-Key (providers.md 2.11): 400 + 10015 for a malformed key; 409 while the first request
# with the key is in flight; 422 for the key with another body; scope: key, API key, method, path.
_KEY = re.compile(r"^[A-Za-z0-9_:-]{1,255}$")
_BAD_KEY = {
    "code": "10015",
    "title": "Bad Request",
    "detail": "The Idempotency-Key header must be 1 to 255 letters, numbers, hyphens, underscores or colons.",
    "source": {"parameter": "Idempotency-Key"},
}
_IN_FLIGHT = {  # code and wording are our choice: Telnyx documents only the 409
    "code": "10036",
    "title": "Request in progress",
    "detail": "A request with this Idempotency-Key is still being processed; retry later with the same key.",
}
_KEY_REUSED = {  # code and wording are our choice: Telnyx documents only the 422
    "code": "10037",
    "title": "Idempotency-Key reused",
    "detail": "This Idempotency-Key was used with a different request body.",
}
Scope = tuple[str, str, str, str]  # API key (our "organization"), method, path, Idempotency-Key

_AUTH_DETAIL = "The required authentication headers were either invalid or not included in the request."

# kind -> HTTP status, error code, title, detail (providers.md 2.5; a detail it does not quote is
# ours), the detail formatted with the request's `from_` and `to`
FAILURES = {
    "invalid_number": (400, "40310", "Invalid 'to' address", "The 'to' address should be a single valid number."),
    "opted_out": (
        409,
        "40300",
        "Blocked due to STOP message",
        "Messages cannot be sent from '{from_}' to '{to}' due to an existing block rule.",
    ),
    # Telnyx documents no code for a balance too low (providers.md 2.5): our choice
    "no_credit": (403, "10010", "Authorization failed", "The account's available credit cannot pay for this message."),
    "rate_limited": (429, "10011", "Too many requests", "You have exceeded the maximum number of allowed requests."),
    "server_error": (500, "10007", "Unexpected error", "An unexpected error occurred."),
    "unavailable": (503, "10007", "Unexpected error", "An unexpected error occurred."),
}

# outcome (base.OUTCOMES) -> final `to[].status` and `errors` (providers.md 2.6; the code for a
# message that failed before it was sent is our choice)
FINAL: dict[str, tuple[str, list[dict[str, str]]]] = {
    "delivered": ("delivered", []),
    "unconfirmed": ("delivery_unconfirmed", []),
    "undelivered": (
        "delivery_failed",
        [{"code": "40008", "title": "Undeliverable", "detail": "The message could not be delivered."}],
    ),
    "failed": (
        "sending_failed",
        [{"code": "40006", "title": "Recipient server unavailable", "detail": "The message could not be sent."}],
    ),
}

# Telnyx's own 7-bit set (providers.md 2.9): no `€ ¤ § Ç`, form feed or Greek capitals; `~^|\{}[]`
# are escaped and count 2; anything else sends the whole text as UTF-16.
TELNYX_BASIC = frozenset(
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    "\n\r !\"#$%&'()*+,-./:;<=>?@_£¥èéùìòØøÅåÆæßÉ¡ÄÖÑÜ¿äöñüà"
)
TELNYX_ESCAPED = frozenset("~^|\\{}[]")
MAX_PARTS = 10


def count(text: str) -> Segments:
    return segments(text, TELNYX_BASIC, TELNYX_ESCAPED)


def _limits(answer: Answer) -> dict[str, str]:
    """Telnyx's rate-limit headers (providers.md 2.5): the reset is a delay in seconds, and there is
    no Retry-After. A scripted `retry_after` sets the reset; else 1 s. The limit is our own figure."""
    reset = answer.retry_after if answer.retry_after is not None else 1
    return {"x-ratelimit-limit": "100", "x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)}


def errors(status: int, *errors: dict[str, Any], headers: dict[str, str] | None = None) -> Reply:
    return Reply.json(status, {"errors": list(errors)}, headers)


# The price of one part (the spec example's "0.0051"), in the account's currency. The simulator
# never debits the balance; a send the available credit cannot pay for is refused (our choice).
PRICE_PER_PART = Decimal("0.0051")


@dataclass
class Account:
    balance: str = "20.00"  # decimal strings, as in GET /v2/balance
    currency: str = "USD"
    status: str = "active"  # or "suspended"
    credit_limit: str = "0.00"

    def available_credit(self) -> Decimal:
        return Decimal(self.balance) + Decimal(self.credit_limit)


@dataclass
class _Kept:
    """What an Idempotency-Key holds: its body, and its success answer once the first request is over."""

    body: bytes
    at: float = field(default_factory=time.time)
    success: Reply | None = None  # None while the first request is in flight
    message_id: str | None = None


class Telnyx(SimulatedProvider):
    name = "telnyx"

    def __init__(self, sim: ProviderSimulator) -> None:
        super().__init__(sim)
        self.accounts: dict[str, Account] = {}  # by API key
        self._kept: dict[Scope, _Kept] = {}
        self._signing_key = Ed25519PrivateKey.generate()
        raw = self._signing_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.public_key = base64.b64encode(raw).decode()  # as the portal shows it
        self.idempotency_seconds = 24 * 3600.0  # successes are replayed this long

    def handle(self, request: Request) -> Reply | None:
        if request.method == "POST" and request.path == "/v2/messages":
            return self.send(request)
        if request.method == "GET" and request.path == "/v2/balance":
            return self.balance(request)
        if request.method == "GET" and request.path.startswith("/v2/messages/"):
            return self.one(request, request.path.removeprefix("/v2/messages/"))
        return None

    def reset(self) -> None:
        super().reset()  # and forget every Idempotency-Key
        with self._lock:
            self._kept.clear()

    def _account(self, request: Request) -> Account | Reply:
        """The caller's account, or the refusal it gets."""
        account = self.accounts.get(request.bearer())
        if account is None:
            return errors(401, {"code": "10009", "title": "Authentication failed", "detail": _AUTH_DETAIL})
        if account.status != "active":  # a suspended key: 403 + 10010 is our choice
            return errors(
                403, {"code": "10010", "title": "Authorization failed", "detail": "The account is suspended."}
            )
        return account

    def send(self, request: Request) -> Reply:
        try:
            payload = json.loads(request.body)
            if not isinstance(payload, dict):
                raise ValueError
        except ValueError:
            self.sim.record(self.name, request, {}, status=400)
            return errors(
                400,
                {
                    "code": "10015",
                    "title": "Bad Request",
                    "detail": "The request failed because it was not well-formed.",
                },
            )
        fields = {"from": payload.get("from"), "to": payload.get("to"), "text": payload.get("text")}
        received = self.sim.record(self.name, request, fields)
        key = request.headers.get("idempotency-key")
        if key is None or isinstance(self._account(request), Reply):
            return self._send(request, payload, received)
        scope = (request.bearer(), request.method, request.path, key)
        early = self._idempotent(key, scope, request, received)
        if early is not None:
            return early
        try:
            reply = self._send(request, payload, received)
        except BaseException:
            self._settle(scope, None, None)
            raise
        reply.done = lambda: self._settle(scope, reply.success, received.message_id)
        return reply

    def _idempotent(self, key: str, scope: Scope, request: Request, received: Received) -> Reply | None:
        """The answer a used key gets at once (providers.md 2.11), or None: then the key is in flight."""
        if not _KEY.match(key):
            received.answer = "bad_key"
            return self.answered(received, errors(400, _BAD_KEY))
        with self._lock:
            kept = self._kept.get(scope)
            if kept and time.time() - kept.at > self.idempotency_seconds:
                del self._kept[scope]
                kept = None
            if kept is None:
                self._kept[scope] = _Kept(request.body)
                return None
            if kept.body != request.body:
                received.answer = "key_reused"
                return self.answered(received, errors(422, _KEY_REUSED))
            if kept.success is None:
                received.answer = "in_flight"
                return self.answered(received, errors(409, _IN_FLIGHT))
            received.answer = "replayed"
            replay = kept.success
            return self.answered(
                received, Reply(replay.status, replay.body, replay.content_type, dict(replay.headers)), kept.message_id
            )

    def _settle(self, scope: Scope, success: Reply | None, message_id: str | None) -> None:
        """The first request with a key is over: keep its success for replays, or forget a failure."""
        with self._lock:
            kept = self._kept.get(scope)
            if kept is not None and kept.success is None:
                if success is None:
                    del self._kept[scope]
                else:
                    kept.success, kept.message_id = success, message_id

    def _send(self, request: Request, payload: dict[str, Any], received: Received) -> Reply:
        answer = self.sim.answer_for(received)
        account = self._account(request)
        if isinstance(account, Reply):
            return self.answered(received, account)
        if answer.kind == "reset":
            return self.answered(received, Reply.drop())
        for required in ("to", "text"):
            if not payload.get(required):
                missing = {
                    "code": "10004",
                    "title": "Missing required parameter",
                    "source": {"pointer": f"/{required}"},
                }
                return self.answered(received, errors(422, missing))
        to = payload["to"]
        to = str(to[0] if isinstance(to, list) and len(to) == 1 else to)  # one destination only
        if not E164.match(to):
            answer = Answer("invalid_number")
        counted = count(str(payload["text"]))
        if counted.parts > MAX_PARTS:  # the error is not documented (providers.md 2.3): our choice
            detail = f"The message needs {counted.parts} parts; at most {MAX_PARTS} are sent."
            too_long = {"code": "10015", "title": "Bad Request", "detail": detail, "source": {"pointer": "/text"}}
            return self.answered(received, errors(400, too_long))
        cost = PRICE_PER_PART * counted.parts
        if answer.kind == "ok" and account.available_credit() < cost:
            answer = Answer("no_credit")
        if answer.kind in FAILURES:
            status, code, title, detail = FAILURES[answer.kind]
            error: dict[str, Any] = {
                "code": code,
                "title": title,
                "detail": detail.format(from_=payload.get("from"), to=to),
            }
            if code == "40310":
                error["source"] = {"pointer": "/to"}
            return self.answered(received, errors(status, error, headers=_limits(answer) if status == 429 else None))
        message_id = str(uuid.uuid4())
        now = _timestamp(time.time())
        message = {
            "record_type": "message",
            "direction": "outbound",
            "id": message_id,
            "type": "SMS",
            "from": {"phone_number": payload.get("from"), "carrier": "TELNYX LLC", "line_type": "VoIP"},
            "to": [{"phone_number": to, "status": "queued", "carrier": "SIM", "line_type": "Wireless"}],
            "text": payload.get("text"),
            "encoding": counted.encoding,
            "parts": counted.parts,
            "cost": {"amount": str(cost), "currency": account.currency},
            "received_at": now,
            "sent_at": None,
            "completed_at": None,
            "valid_until": None,
            "wait_seconds": 0,
            "webhook_url": payload.get("webhook_url"),
            "webhook_failover_url": payload.get("webhook_failover_url"),
            "errors": [],
        }
        callbacks = tuple(str(payload[k]) for k in ("webhook_url", "webhook_failover_url") if payload.get(k))
        self.keep(Stored(message_id, request.bearer(), to, copy.deepcopy(message), callbacks))
        return self.taken(received, answer, Reply.json(200, {"data": message}), message_id)

    def progress(self, stored: Stored, step: str) -> Notice | None:
        """queued -> sent (`message.sent`) -> a final status (`message.finalized`), providers.md 2.4,
        2.8; the event for each change, signed with Ed25519 over `{timestamp}|{raw body}`."""
        outcome, now = stored.outcome, time.time()
        with self._lock:
            message, recipient = stored.resource, stored.resource["to"][0]
            if step == "sent" and outcome != "failed":
                recipient["status"], message["sent_at"] = "sent", _timestamp(now)
                event_type = "message.sent"
            elif step == "final" and outcome != "no_final":
                recipient["status"], problems = FINAL[outcome]
                message["completed_at"], message["errors"] = _timestamp(now), problems
                event_type = "message.finalized"
            else:
                return None
            payload, status = copy.deepcopy(message), recipient["status"]
        event = {
            "record_type": "event",
            "id": str(uuid.uuid4()),
            "event_type": event_type,
            "occurred_at": _timestamp(now),
            "payload": payload,
        }

        def render(url: str, attempt: int) -> Callback:
            body = json.dumps({"data": event, "meta": {"attempt": attempt, "delivered_to": url}}).encode()
            timestamp = str(int(time.time()))
            signed = self._signing_key.sign(timestamp.encode() + b"|" + body)
            headers = {
                "Content-Type": "application/json",
                "telnyx-signature-ed25519": base64.b64encode(signed).decode(),
                "telnyx-timestamp": timestamp,
            }
            return Callback(self.name, stored.id, status, url, "POST", headers, body, attempt)

        return Notice(self.name, stored.callbacks, render)

    def one(self, request: Request, message_id: str) -> Reply:
        """`GET /v2/messages/{id}` (providers.md 8.3)."""
        received = self.looking(request)
        account = self._account(request)
        if isinstance(account, Reply):
            return self.answered(received, account)
        message = self.found(request.bearer(), message_id)
        if message is None:  # code and wording our choice
            missing = {"code": "10005", "title": "Resource not found", "detail": "No message with this id."}
            return self.answered(received, errors(404, missing))
        return self.answered(received, Reply.json(200, {"data": message}))

    def balance(self, request: Request) -> Reply:
        """`GET /v2/balance`, the free credential check (providers.md 9)."""
        received = self.looking(request)
        account = self._account(request)
        if isinstance(account, Reply):
            return self.answered(received, account)
        balance = {
            "record_type": "balance",
            "balance": account.balance,
            "credit_limit": account.credit_limit,
            "available_credit": str(account.available_credit()),
            "pending": "0.00",
            "currency": account.currency,
        }
        return self.answered(received, Reply.json(200, {"data": balance}))


def _timestamp(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")
