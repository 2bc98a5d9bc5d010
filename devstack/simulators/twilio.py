"""Twilio Programmable Messaging (2010-04-01 API) as the simulator plays it (providers.md
section 3): `POST /2010-04-01/Accounts/{sid}/Messages.json` with a form (`To`, `From`, `Body`),
HTTP Basic auth with the account SID (which must match the URL) and auth token, 201 with the
message resource on success (`price` null, `num_segments`) and `{code, message, more_info,
status}` on failure. Also the look-ups (`GET .../Messages.json`, `GET .../Messages/{Sid}.json`,
section 8.1), the account checks (`GET /2010-04-01/Accounts/{sid}.json` and `.../Balance.json`,
section 9) and the status callbacks POSTed to `StatusCallback`, signed with `X-Twilio-Signature`
(section 3.8).

Accounts: `add_twilio_account(sid, token, status=, type=, balance=, currency=, verified_numbers=)`;
suspended and closed accounts get 401 + 20003, Trial accounts send only to verified numbers (21608).

Twilio's own test numbers (providers.md 3.10) work too: To +15005550001 (21211), +15005550002
(21612), +15005550003 (21408), +15005550004 (21610), +15005550009 (21614); From +15005550001
(21212), +15005550007 (21606), +15005550008 (21611). Our own: From +46700000660 (21660, the From
number belongs to another account). Error texts embed the numbers, as Twilio's do. Our magic
recipients: see `server` (answers) and `base.OUTCOMES` (how a message ends).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING
from urllib.parse import urlencode

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

_ROUTE = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[^/.]+)(?P<rest>\.json|/.*)$")
_ONE_MESSAGE = re.compile(r"^/Messages/(?P<sid>[^/.]+)\.json$")

# Error texts by code (providers.md 3.5; the wording of those it does not quote is Twilio's as we
# know it), formatted with the request's `to`, `from_`, the account `sid` and the `path`.
MESSAGES = {
    20001: "Invalid paging parameter",
    20003: "Authenticate",
    20005: "Account not active",
    20404: "The requested resource {path} was not found",
    20429: "Too Many Requests",
    20500: "Internal Server Error",
    20503: "Service Unavailable",
    21211: "The 'To' number {to} is not a valid phone number.",
    21212: "The 'From' number {from_} is not a valid phone number, shortcode, or alphanumeric sender ID.",
    21408: "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: {to}.",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21606: "The 'From' phone number provided ({from_}) is not a valid message-capable Twilio phone number "
    "for this destination.",
    21608: "The number {to} is unverified. Trial accounts cannot send messages to unverified numbers; "
    "verify {to} at twilio.com/user/account/phone-numbers/verified, or purchase a Twilio number to send "
    "messages to unverified numbers.",
    21610: "Attempt to send to unsubscribed recipient",
    21611: "This 'From' number has exceeded the maximum number of queued messages.",
    21612: "The 'To' phone number: {to}, is not currently reachable using the 'From' phone number: {from_} via SMS.",
    21614: "'To' number {to} is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    21660: "Mismatch between the 'From' number {from_} and the account {sid}.",
}
# answer kind -> HTTP status, error code
FAILURES = {
    "invalid_number": (400, 21211),
    "opted_out": (400, 21610),
    "no_credit": (403, 20005),  # the status is not documented (providers.md 3.5): our choice
    "rate_limited": (429, 20429),
    "server_error": (500, 20500),
    "unavailable": (503, 20503),
}
# The price of one segment, charged (as a negative `price`) once the message is sent. The simulator
# never debits the balance; a send it cannot pay for is refused (no_credit).
PRICE_PER_SEGMENT = Decimal("0.0075")
# outcome (base.OUTCOMES) -> final status, error code and message (providers.md 3.6)
FINAL: dict[str, tuple[str, int | None, str | None]] = {
    "delivered": ("delivered", None, None),
    "unconfirmed": ("delivered", None, None),
    "undelivered": ("undelivered", 30003, "Unreachable destination handset"),
    "failed": ("failed", 30008, "Unknown error"),
}
TWILIO_MAGIC = {
    "+15005550001": 21211,
    "+15005550002": 21612,
    "+15005550003": 21408,
    "+15005550004": 21610,
    "+15005550009": 21614,
}
TWILIO_FROM_MAGIC = {"+15005550001": 21212, "+15005550007": 21606, "+15005550008": 21611, "+46700000660": 21660}

# Twilio counts GSM 03.38: the basic table, and the extension table at 2 septets each; any other
# character sends the whole text as UCS-2 (providers.md 3.9, 4).
GSM_EXTENSION = frozenset("\f^{}\\[~]|€")


def count(text: str) -> Segments:
    return segments(text, GSM_BASIC, GSM_EXTENSION)


def error(
    status: int, code: int, form: dict[str, str], sid: str, headers: dict[str, str] | None = None, path: str = ""
) -> Reply:
    message = MESSAGES[code].format(to=form.get("To", ""), from_=form.get("From", ""), sid=sid, path=path)
    more_info = f"https://www.twilio.com/docs/errors/{code}"
    return Reply.json(status, {"code": code, "message": message, "more_info": more_info, "status": status}, headers)


@dataclass
class Account:
    token: str
    status: str = "active"  # "suspended" and "closed" answer 401 + 20003 to everything (providers.md 9)
    type: str = "Full"  # "Trial" sends only to `verified_numbers` (21608)
    balance: str = "20.00"
    currency: str = "USD"
    verified_numbers: frozenset[str] = frozenset()
    created: float = field(default_factory=time.time)


class Twilio(SimulatedProvider):
    name = "twilio"

    def __init__(self, sim: ProviderSimulator) -> None:
        super().__init__(sim)
        self.accounts: dict[str, Account] = {}  # by account SID

    def handle(self, request: Request) -> Reply | None:
        match = _ROUTE.match(request.path)
        if not match:
            return None
        sid, rest = match["sid"], match["rest"]
        if request.method == "POST" and rest == "/Messages.json":
            return self.send(request, sid)
        if request.method == "GET" and rest == ".json":
            return self.account(request, sid)
        if request.method == "GET" and rest == "/Balance.json":
            return self.balance(request, sid)
        if request.method == "GET" and rest == "/Messages.json":
            return self.listing(request, sid)
        one = _ONE_MESSAGE.match(rest)
        if request.method == "GET" and one:
            return self.one(request, sid, one["sid"])
        return None

    def _account(self, request: Request, sid: str) -> Account | Reply:
        """The account of the SID in the URL, if the credentials are its own and it is active."""
        auth = request.basic_auth()
        account = self.accounts.get(sid)
        if not auth or auth[0] != sid or not account or account.token != auth[1] or account.status != "active":
            return error(401, 20003, {}, sid)
        return account

    def _refusal(self, form: dict[str, str], account: Account) -> int | None:
        """The error code of a send Twilio refuses for what it asks, before any fault."""
        if not form.get("To"):
            return 21604
        if not form.get("From"):
            return 21603
        if not form.get("Body"):
            return 21602
        if len(form["Body"]) > 1600:
            return 21617
        code = TWILIO_FROM_MAGIC.get(form["From"]) or TWILIO_MAGIC.get(form["To"])
        if not code and account.type == "Trial" and form["To"] not in account.verified_numbers:
            return 21608
        return code

    def send(self, request: Request, sid: str) -> Reply:
        form = request.form()
        fields = {"from": form.get("From"), "to": form.get("To"), "text": form.get("Body")}
        received, answer = self.sim.begin(self.name, request, fields)
        account = self._account(request, sid)
        if isinstance(account, Reply):
            return self.answered(received, account)
        if answer.kind == "reset":
            return self.answered(received, Reply.drop())
        refusal = self._refusal(form, account)
        if refusal:
            return self.answered(received, error(400, refusal, form, sid))
        if not E164.match(form["To"]):
            answer = Answer("invalid_number")
        num_segments = count(form["Body"]).parts
        if answer.kind == "ok" and Decimal(account.balance) < PRICE_PER_SEGMENT * num_segments:
            answer = Answer("no_credit")
        if answer.kind in FAILURES:
            status, code = FAILURES[answer.kind]
            # no Retry-After on 20429 (providers.md 3.5, not documented): one only when scripted
            extra = {"Retry-After": str(answer.retry_after)} if answer.retry_after is not None else None
            return self.answered(received, error(status, code, form, sid, extra))
        message_id = "SM" + uuid.uuid4().hex
        now = _rfc2822(time.time())
        resource = {
            "sid": message_id,
            "account_sid": sid,
            "messaging_service_sid": None,
            "from": form.get("From"),
            "to": form["To"],
            "body": form["Body"],
            "status": "queued",
            "direction": "outbound-api",
            "num_segments": str(num_segments),
            "num_media": "0",
            "price": None,  # set once the message is sent (providers.md 12)
            "price_unit": account.currency,
            "error_code": None,
            "error_message": None,
            "api_version": "2010-04-01",
            "date_created": now,
            "date_updated": now,
            "date_sent": None,
            "uri": f"/2010-04-01/Accounts/{sid}/Messages/{message_id}.json",
        }
        callbacks = (form["StatusCallback"],) if form.get("StatusCallback") else ()
        self.keep(Stored(message_id, sid, form["To"], dict(resource), callbacks))
        return self.taken(received, answer, Reply.json(201, resource), message_id)

    def progress(self, stored: Stored, step: str) -> Notice | None:
        """queued -> sent (now priced) -> delivered, undelivered or failed (providers.md 3.4, 3.8, 12);
        the status callback for each change, signed with the account's auth token."""
        outcome, now = stored.outcome, time.time()
        with self._lock:
            message = stored.resource
            if step == "sent" and outcome != "failed":
                price = PRICE_PER_SEGMENT * int(message["num_segments"])
                when = _rfc2822(now)
                message.update(status="sent", date_sent=when, date_updated=when, price=f"-{price:.5f}")
            elif step == "final" and outcome != "no_final":
                status, code, text = FINAL[outcome]
                message.update(status=status, error_code=code, error_message=text, date_updated=_rfc2822(now))
            else:
                return None
            params = {
                "MessageSid": stored.id,
                "MessageStatus": message["status"],
                "SmsSid": stored.id,
                "SmsStatus": message["status"],
                "AccountSid": stored.account,
                "From": message["from"],
                "To": message["to"],
                "ApiVersion": "2010-04-01",
            }
            if message["error_code"]:
                params["ErrorCode"] = str(message["error_code"])
            if message["status"] in ("delivered", "undelivered"):  # the carrier's time, YYMMDDhhmm
                params["RawDlrDoneDate"] = time.strftime("%y%m%d%H%M", time.gmtime(now))
        body = urlencode(params).encode()

        def render(url: str, attempt: int) -> Callback:
            account = self.accounts.get(stored.account)
            headers = {
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": signature(account.token if account else "", url, params),
            }
            return Callback(self.name, stored.id, params["MessageStatus"], url, "POST", headers, body, attempt)

        return Notice(self.name, stored.callbacks, render)

    def listing(self, request: Request, sid: str) -> Reply:
        """`GET .../Messages.json?To=&From=&PageSize=&Page=` (providers.md 8.1): newest first (the
        order is not documented; SignalWire's copy of the API says so)."""
        received = self.looking(request)
        account = self._account(request, sid)
        if isinstance(account, Reply):
            return self.answered(received, account)
        query = {k: v[0] for k, v in request.query.items()}
        try:
            size = max(1, min(int(query.get("PageSize", 50)), 1000))
            number = max(0, int(query.get("Page", 0)))
        except ValueError:
            return self.answered(received, error(400, 20001, {}, sid))

        def wanted(m: Stored) -> bool:
            return ("To" not in query or m.to == query["To"]) and (
                "From" not in query or m.resource["from"] == query["From"]
            )

        found = self.listed(sid, wanted)
        messages = found[number * size : (number + 1) * size]
        filters = {k: query[k] for k in ("To", "From") if k in query}
        path = f"/2010-04-01/Accounts/{sid}/Messages.json"

        def page_uri(n: int) -> str:
            return f"{path}?{urlencode(filters | {'PageSize': size, 'Page': n})}"

        more = len(found) > (number + 1) * size
        page = {
            "messages": messages,
            "page": number,
            "page_size": size,
            "start": number * size,
            "end": number * size + max(len(messages) - 1, 0),
            "uri": page_uri(number),
            "first_page_uri": page_uri(0),
            "next_page_uri": f"{page_uri(number + 1)}&PageToken=PA{messages[-1]['sid']}" if more else None,
            "previous_page_uri": page_uri(number - 1) if number else None,
        }
        return self.answered(received, Reply.json(200, page))

    def one(self, request: Request, sid: str, message_sid: str) -> Reply:
        """`GET .../Messages/{Sid}.json`: the price is null until the message is sent."""
        received = self.looking(request)
        account = self._account(request, sid)
        if isinstance(account, Reply):
            return self.answered(received, account)
        message = self.found(sid, message_sid)
        if message is None:
            return self.answered(received, error(404, 20404, {}, sid, path=request.path))
        return self.answered(received, Reply.json(200, message))

    def account(self, request: Request, sid: str) -> Reply:
        """`GET /2010-04-01/Accounts/{sid}.json`, the free credential check (providers.md 9)."""
        received = self.looking(request)
        account = self._account(request, sid)
        if isinstance(account, Reply):
            return self.answered(received, account)
        created = _rfc2822(account.created)
        base = f"/2010-04-01/Accounts/{sid}"
        resource = {
            "sid": sid,
            "owner_account_sid": sid,
            "friendly_name": f"{sid} (simulated)",
            "status": account.status,
            "type": account.type,
            "auth_token": account.token,
            "date_created": created,
            "date_updated": created,
            "uri": f"{base}.json",
            "subresource_uris": {"messages": f"{base}/Messages.json", "balance": f"{base}/Balance.json"},
        }
        return self.answered(received, Reply.json(200, resource))

    def balance(self, request: Request, sid: str) -> Reply:
        """`GET /2010-04-01/Accounts/{sid}/Balance.json`."""
        received = self.looking(request)
        account = self._account(request, sid)
        if isinstance(account, Reply):
            return self.answered(received, account)
        balance = {"account_sid": sid, "balance": account.balance, "currency": account.currency}
        return self.answered(received, Reply.json(200, balance))


def _rfc2822(at: float) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(at))


def signature(token: str, url: str, params: dict[str, str]) -> str:
    """`X-Twilio-Signature` (providers.md 3.8): base64 of HMAC-SHA1, keyed with the auth token, over
    the full URL followed by each POST parameter, sorted by name, as name + value."""
    signed = url + "".join(name + params[name] for name in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), signed.encode(), hashlib.sha1).digest()).decode()
