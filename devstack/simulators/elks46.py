"""46elks as the simulator plays it (providers.md section 1): `POST /a1/sms` (any case), a form
with `from`, `to`, `message` and optional `whendelivered` and `dontlog`, HTTP Basic auth, a JSON answer with
`parts` and `cost` on success, plain-text errors. Also the history (`GET /a1/sms`, `GET
/a1/sms/{id}`, section 8.2), the account check (`GET /a1/me`, section 9) and the delivery reports
POSTed to `whendelivered` (unsigned: the URL carries the secret; section 1.8).

Accounts: `add_elks46_account(username, password, balance=, currency=, status=)`; a suspended
account is refused with 403, a send the balance cannot pay for with 402 (our choices).
Magic recipients: see `server` (answers) and `base.OUTCOMES` (how a message ends).
"""

from __future__ import annotations

import base64
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlencode, urlsplit

from .base import (
    E164,
    GSM_BASIC,
    Answer,
    Callback,
    Notice,
    Reply,
    Request,
    Segments,
    SimulatedProvider,
    Stored,
    segments,
)

if TYPE_CHECKING:
    from .server import ProviderSimulator

# kind -> status, plain-text body. 46elks documents neither the codes nor the wording
# (providers.md 1.5), nor any answer for an opted-out recipient (section 11): all our own choice.
FAILURES = {
    "invalid_number": (400, "Invalid to number"),
    "opted_out": (400, "Recipient has opted out"),
    "no_credit": (402, "Not enough credits"),
    "rate_limited": (429, "Too many requests"),
    "server_error": (500, "Internal server error"),
    "unavailable": (503, "Service unavailable"),
}

# The price of one part in 1/10000 of the account's currency: 0.35 (providers.md 1.4, 12). The
# simulator never debits the balance (a long local run must not run dry); a send the balance
# cannot pay for is refused.
PRICE_PER_PART = 3500


# 46elks counts the GSM 03.38 basic table only: `€` is not in it (providers.md 1.9), so we take it
# that every extension character (`€ [ ] { } ^ ~ | \`) sends the whole text as UCS-2 (section 4).
def count(text: str) -> Segments:
    return segments(text, GSM_BASIC, frozenset())


@dataclass
class Account:
    password: str
    balance: int = 2_000_000  # 1/10000 of `currency`, like `cost` (providers.md 9: unit inferred)
    currency: str = "SEK"
    status: str = "active"  # or "suspended": our own word, 46elks documents no account states
    id: str = field(default_factory=lambda: "u" + uuid.uuid4().hex)


class Elks46(SimulatedProvider):
    name = "46elks"

    def __init__(self, sim: ProviderSimulator) -> None:
        super().__init__(sim)
        self.accounts: dict[str, Account] = {}  # by API username

    def handle(self, request: Request) -> Reply | None:
        path = request.path.lower()
        if request.method == "POST" and path == "/a1/sms":
            return self.send(request)
        if request.method == "GET" and path == "/a1/sms":
            return self.history(request)
        if request.method == "GET" and path.startswith("/a1/sms/"):
            return self.one(request, request.path[len("/a1/sms/") :])
        if request.method == "GET" and path == "/a1/me":
            return self.me(request)
        return None

    def _account(self, request: Request) -> tuple[str, Account] | Reply:
        """The caller's account, or the plain-text refusal it gets."""
        auth = request.basic_auth()
        account = self.accounts.get(auth[0]) if auth else None
        if not auth or not account or account.password != auth[1]:
            return Reply.text(401, "Unauthorized")
        if account.status != "active":
            return Reply.text(403, "Account suspended")  # status and wording our own choice
        return auth[0], account

    def send(self, request: Request) -> Reply:
        form = request.form()
        fields = {"from": form.get("from"), "to": form.get("to"), "text": form.get("message")}
        received, answer = self.sim.begin(self.name, request, fields)
        caller = self._account(request)
        if isinstance(caller, Reply):
            return self.answered(received, caller)
        username, account = caller
        if answer.kind == "reset":
            return self.answered(received, Reply.drop())
        missing = [k for k in ("from", "to", "message") if not form.get(k)]
        if missing:
            return self.answered(received, Reply.text(400, f"Missing key {missing[0]}"))
        if not E164.match(form["to"]):
            answer = Answer("invalid_number")
        parts = count(form["message"]).parts
        if answer.kind == "ok" and account.balance < PRICE_PER_PART * parts:
            answer = Answer("no_credit")  # "once your balance reaches 0, any call that would be charged fails"
        if answer.kind in FAILURES:
            status, text = FAILURES[answer.kind]
            # 46elks documents no 429 and no Retry-After (providers.md 1.5): one only when scripted
            extra = {"Retry-After": str(answer.retry_after)} if answer.retry_after is not None else None
            return self.answered(received, Reply.text(status, text, extra))
        message_id = "s" + uuid.uuid4().hex
        now = time.time()
        sms = {
            "id": message_id,
            "status": "created",
            "direction": "outgoing",
            "from": form["from"],
            "to": form["to"],
            "message": form["message"],
            "created": _created(now),
            "parts": parts,
            "cost": PRICE_PER_PART * parts,
        }
        if form.get("dontlog") == "message":  # the text is not kept, nor shown (providers.md 1.4)
            del sms["message"]
        callbacks = (form["whendelivered"],) if form.get("whendelivered") else ()
        self.keep(Stored(message_id, username, form["to"], dict(sms), callbacks, now))
        return self.taken(received, answer, Reply.json(200, sms), message_id)

    def progress(self, stored: Stored, step: str) -> Notice | None:
        """created -> sent -> delivered or failed (providers.md 1.4, 1.8); the `whendelivered` call
        for each change: a form with `id`, `status` and, once delivered, `delivered`."""
        outcome, now = stored.outcome, time.time()
        with self._lock:
            sms = stored.resource
            if step == "sent" and outcome != "failed":
                sms["status"] = "sent"
                receipt = {"id": stored.id, "status": "sent"}
            elif step == "final" and outcome in ("delivered", "unconfirmed"):
                sms["status"], sms["delivered"] = "delivered", _delivered(now)
                receipt = {"id": stored.id, "status": "delivered", "delivered": _created(now)}
            elif step == "final" and outcome in ("undelivered", "failed"):
                sms["status"] = "failed"  # no reason is given (providers.md 1.8)
                receipt = {"id": stored.id, "status": "failed"}
            else:
                return None
        body = urlencode(receipt).encode()

        def render(url: str, attempt: int) -> Callback:
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            userinfo = urlsplit(url)
            if userinfo.username:  # Basic auth embedded in the URL, one of 46elks' documented options
                credentials = f"{unquote(userinfo.username)}:{unquote(userinfo.password or '')}"
                headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
            return Callback(self.name, stored.id, receipt["status"], url, "POST", headers, body, attempt)

        # unsigned: the URL carries the secret; any answer from 200 to 204 is taken (providers.md 1.8)
        return Notice(self.name, stored.callbacks, render, accepted=range(200, 205))

    def history(self, request: Request) -> Reply:
        """`GET /a1/sms?to=&start=&end=&limit=` (providers.md 8.2): newest first; `start` means
        "before this date", `end` "after this date"; `next` is the `start` of the next, older page."""
        received = self.looking(request)
        caller = self._account(request)
        if isinstance(caller, Reply):
            return self.answered(received, caller)
        query = {k: v[0] for k, v in request.query.items()}
        try:
            before = _moment(query["start"]) if "start" in query else None
            after = _moment(query["end"]) if "end" in query else None
            limit = min(int(query.get("limit", 100)), 100)
        except ValueError as exc:
            return self.answered(received, Reply.text(400, f"Invalid parameter: {exc}"))

        def wanted(m: Stored) -> bool:
            created = _moment(m.resource["created"])
            return (
                ("to" not in query or m.to == query["to"])
                and (before is None or created < before)
                and (after is None or created > after)
            )

        found = self.listed(caller[0], wanted)
        page: dict[str, Any] = {"data": found[:limit]}
        if len(found) > limit:
            page["next"] = found[limit - 1]["created"]
        return self.answered(received, Reply.json(200, page))

    def one(self, request: Request, message_id: str) -> Reply:
        """`GET /a1/sms/{id}`."""
        received = self.looking(request)
        caller = self._account(request)
        if isinstance(caller, Reply):
            return self.answered(received, caller)
        sms = self.found(caller[0], message_id)
        if sms is None:
            return self.answered(received, Reply.text(404, "Not found"))  # wording our own
        return self.answered(received, Reply.json(200, sms))

    def me(self, request: Request) -> Reply:
        """`GET /a1/me`, the free credential check (providers.md 9)."""
        received = self.looking(request)
        caller = self._account(request)
        if isinstance(caller, Reply):
            return self.answered(received, caller)
        username, account = caller
        me = {
            "mobilenumber": "+46700000000",
            "displayname": username,
            "id": account.id,
            "currency": account.currency,
            "balance": account.balance,
            "email": f"{username}@example.com",
        }
        return self.answered(received, Reply.json(200, me))


def _created(at: float) -> str:
    """46elks' `created`: UTC, microseconds, no zone (providers.md 1.4)."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def _delivered(at: float) -> str:
    """`delivered` as the history shows it: UTC with a Z (providers.md 1.8)."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _moment(text: str) -> datetime:
    """A 46elks timestamp, with or without a zone (then UTC)."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
