"""Local simulators of 46elks, Telnyx and Twilio: one HTTP server speaking all three wire formats.

Each provider's routes, auth checks, success and error bodies follow providers.md. Failures
can be scripted per provider (a queue of answers), triggered by magic recipient numbers, or
drawn at random at a fault rate; answers can be delayed.

Magic recipients (all providers): +46700000001 invalid number, +46700000002 opted out,
+46700000003 out of credit, +46700000004 always 429, +46700000005 always 500. Twilio's own
test numbers also work: +15005550001 (21211), +15005550002 (21612), +15005550004 (21610),
+15005550009 (21614).
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

_TWILIO_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[^/]+)/Messages\.json$")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_TELNYX_AUTH_DETAIL = "The required authentication headers were either invalid or not included in the request."


@dataclass
class Answer:
    """A scripted answer: 'ok', or a failure of `kind` (see FAILURES), optionally after a delay."""

    kind: str = "ok"
    delay: float = 0.0
    retry_after: int | None = None


# kind -> (46elks status/text, Telnyx status/code/title, Twilio status/code/message)
FAILURES: dict[str, tuple[tuple[int, str], tuple[int, str, str], tuple[int, int, str]]] = {
    "invalid_number": (
        (400, "Invalid to number"),
        (400, "40310", "Invalid 'to' address"),
        (400, 21211, "The 'To' number is not a valid phone number."),
    ),
    "opted_out": (
        (400, "Recipient has opted out"),
        (400, "40300", "Blocked due to STOP message"),
        (400, 21610, "Attempt to send to unsubscribed recipient"),
    ),
    "no_credit": (
        (402, "Not enough credits"),
        (403, "10010", "Authorization failed"),
        (403, 20005, "Account not active"),
    ),
    "rate_limited": (
        (429, "Too many requests"),
        (429, "10011", "Too many requests"),
        (429, 20429, "Too Many Requests"),
    ),
    "server_error": (
        (500, "Internal server error"),
        (500, "10007", "Unexpected error"),
        (500, 20500, "Internal Server Error"),
    ),
    "unavailable": (
        (503, "Service unavailable"),
        (503, "10007", "Unexpected error"),
        (503, 20503, "Service Unavailable"),
    ),
}
MAGIC = {
    "+46700000001": "invalid_number",
    "+46700000002": "opted_out",
    "+46700000003": "no_credit",
    "+46700000004": "rate_limited",
    "+46700000005": "server_error",
}
TWILIO_MAGIC = {"+15005550001": 21211, "+15005550002": 21612, "+15005550004": 21610, "+15005550009": 21614}
PROVIDERS = ("46elks", "telnyx", "twilio")


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
    answer: str = "ok"  # the scripted, magic or random answer it got ("ok" or a failure kind)
    at: float = field(default_factory=time.time)


class ProviderSimulator:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._lock = threading.Lock()
        self.elks46_accounts: dict[str, str] = {}
        self.telnyx_keys: set[str] = set()
        self.twilio_accounts: dict[str, str] = {}
        self.requests: list[Received] = []
        self._scripts: dict[str, list[Answer]] = {p: [] for p in PROVIDERS}
        self.latency = 0.0
        self.fault_rate = 0.0
        self.fault_kinds: tuple[str, ...] = ("server_error", "rate_limited", "reset", "slow", "timeout")
        self.slow_seconds = 2.0
        self.timeout_seconds = 12.0  # longer than the client waits: it gives up, nothing is sent
        self._random = random.Random(7)
        simulator = self

        class Handler(_Handler):
            sim = simulator

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> ProviderSimulator:
        self._thread = threading.Thread(target=self._server.serve_forever, name="provider-sim", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ProviderSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- configuration ----------------------------------------------------------------

    def add_elks46_account(self, username: str, password: str) -> None:
        self.elks46_accounts[username] = password

    def add_telnyx_key(self, api_key: str) -> None:
        self.telnyx_keys.add(api_key)

    def add_twilio_account(self, sid: str, token: str) -> None:
        self.twilio_accounts[sid] = token

    def script(self, provider: str, *answers: Answer | str) -> None:
        """Queue answers for the next requests to `provider` ('ok' or a FAILURES kind)."""
        with self._lock:
            self._scripts[provider].extend(a if isinstance(a, Answer) else Answer(a) for a in answers)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            for queue in self._scripts.values():
                queue.clear()
        self.latency = 0.0
        self.fault_rate = 0.0

    # --- inspection -------------------------------------------------------------------

    def sent(self, provider: str | None = None) -> list[Received]:
        """Requests the simulator accepted (an SMS 'sent'), oldest first."""
        with self._lock:
            return [r for r in self.requests if r.message_id and (provider is None or r.provider == provider)]

    def received(self, provider: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if provider is None or r.provider == provider]

    # --- behaviour --------------------------------------------------------------------

    def _next_answer(self, provider: str, to: str) -> Answer:
        with self._lock:
            if self._scripts[provider]:
                return self._scripts[provider].pop(0)
            roll = self._random.random()
            kind = self._random.choice(self.fault_kinds) if roll < self.fault_rate else None
        if to in MAGIC:
            return Answer(MAGIC[to])
        if kind == "slow":
            return Answer("ok", delay=self.slow_seconds)
        if kind == "timeout":
            return Answer("reset", delay=self.timeout_seconds)
        if kind:
            return Answer(kind, retry_after=1 if kind == "rate_limited" else None)
        return Answer("ok")

    def _record(self, received: Received) -> None:
        with self._lock:
            self.requests.append(received)


class _Handler(BaseHTTPRequestHandler):
    sim: ProviderSimulator
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    # --- plumbing ---------------------------------------------------------------------

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _answer(self, status: int, body: Any, content_type: str = "application/json", headers: dict | None = None):
        data = (
            body
            if isinstance(body, bytes)
            else (json.dumps(body) if content_type == "application/json" else str(body)).encode()
        )
        self.send_response(status)
        self.send_header("Content-Type", f"{content_type}; charset=utf-8" if "text" in content_type else content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _basic_auth(self) -> tuple[str, str] | None:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return user, password

    def _reset_connection(self) -> None:
        """Close without answering: the client sees a connection reset / no response."""
        self.close_connection = True
        self.connection.shutdown(2)

    # --- routes -----------------------------------------------------------------------

    def do_GET(self) -> None:
        if self.path.startswith("/_sim/messages"):
            sent = [
                {
                    "provider": r.provider,
                    "id": r.message_id,
                    "to": r.fields.get("to"),
                    "from": r.fields.get("from"),
                    "text": r.fields.get("text"),
                    "at": r.at,
                }
                for r in self.sim.sent()
            ]
            self._answer(200, {"messages": sent})
            return
        self._answer(404, {"message": "not found"})

    def do_POST(self) -> None:
        body = self._body()
        path = self.path.split("?", 1)[0]
        if path == "/_sim/script":
            order = json.loads(body or b"{}")
            self.sim.script(order["provider"], *[Answer(**a) if isinstance(a, dict) else a for a in order["answers"]])
            self._answer(200, {"queued": len(order["answers"])})
        elif path.lower() == "/a1/sms":
            self._elks46(path, body)
        elif path == "/v2/messages":
            self._telnyx(path, body)
        elif match := _TWILIO_PATH.match(path):
            self._twilio(path, match["sid"], body)
        else:
            self._answer(404, {"message": "not found"})

    def _start(self, provider: str, path: str, body: bytes, fields: dict[str, Any]) -> tuple[Received, Answer]:
        received = Received(provider, "POST", path, {k.lower(): v for k, v in self.headers.items()}, body, fields)
        self.sim._record(received)
        answer = self.sim._next_answer(provider, str(fields.get("to", "")))
        received.answer = (
            {"reset": "timeout", "ok": "slow"}.get(answer.kind, answer.kind) if answer.delay else answer.kind
        )
        delay = answer.delay or self.sim.latency
        if delay:
            time.sleep(delay)
        return received, answer

    def _elks46(self, path: str, body: bytes) -> None:
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        fields = {"from": form.get("from"), "to": form.get("to"), "text": form.get("message")}
        received, answer = self._start("46elks", path, body, fields)
        auth = self._basic_auth()
        if not auth or self.sim.elks46_accounts.get(auth[0]) != auth[1]:
            received.status = 401
            return self._answer(401, "Unauthorized", "text/plain")
        if answer.kind == "reset":
            return self._reset_connection()
        missing = [k for k in ("from", "to", "message") if not form.get(k)]
        if missing:
            received.status = 400
            return self._answer(400, f"Missing key {missing[0]}", "text/plain")
        if not _E164.match(form["to"]):
            answer = Answer("invalid_number")
        if answer.kind != "ok":
            status, text = FAILURES[answer.kind][0]
            received.status = status
            extra = {"Retry-After": str(answer.retry_after)} if answer.retry_after is not None else None
            return self._answer(status, text, "text/plain", extra)
        message_id = "s" + uuid.uuid4().hex
        parts = _parts(form["message"])
        received.status, received.message_id = 200, message_id
        self._answer(
            200,
            {
                "id": message_id,
                "status": "created",
                "direction": "outgoing",
                "from": form["from"],
                "to": form["to"],
                "message": form["message"],
                "created": time.strftime("%Y-%m-%dT%H:%M:%S.000000", time.gmtime()),
                "parts": parts,
                "cost": 3500 * parts,
            },
        )

    def _telnyx(self, path: str, body: bytes) -> None:
        try:
            payload = json.loads(body)
            if not isinstance(payload, dict):
                raise ValueError
        except ValueError:
            self.sim._record(
                Received("telnyx", "POST", path, {k.lower(): v for k, v in self.headers.items()}, body, {}, status=400)
            )
            return self._answer(
                400,
                {
                    "errors": [
                        {
                            "code": "10015",
                            "title": "Bad Request",
                            "detail": "The request failed because it was not well-formed.",
                        }
                    ]
                },
            )
        fields = {"from": payload.get("from"), "to": payload.get("to"), "text": payload.get("text")}
        received, answer = self._start("telnyx", path, body, fields)
        if self.headers.get("Authorization", "").removeprefix("Bearer ") not in self.sim.telnyx_keys:
            received.status = 401
            return self._answer(
                401,
                {
                    "errors": [
                        {
                            "code": "10009",
                            "title": "Authentication failed",
                            "detail": _TELNYX_AUTH_DETAIL,
                        }
                    ]
                },
            )
        if answer.kind == "reset":
            return self._reset_connection()
        if not payload.get("to"):
            received.status = 422
            return self._answer(
                422,
                {"errors": [{"code": "10004", "title": "Missing required parameter", "source": {"pointer": "/to"}}]},
            )
        if not _E164.match(str(payload["to"])):
            answer = Answer("invalid_number")
        if answer.kind != "ok":
            status, code, title = FAILURES[answer.kind][1]
            received.status = status
            error: dict[str, Any] = {"code": code, "title": title}
            if code == "40310":
                error |= {"detail": "The 'to' address should be a single valid number.", "source": {"pointer": "/to"}}
            extra = {"Retry-After": str(answer.retry_after)} if answer.retry_after is not None else {}
            extra |= (
                {"x-ratelimit-limit": "100", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "1"}
                if (status == 429)
                else {}
            )
            return self._answer(status, {"errors": [error]}, headers=extra)
        message_id = str(uuid.uuid4())
        parts = _parts(str(payload.get("text") or ""))
        received.status, received.message_id = 200, message_id
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        self._answer(
            200,
            {
                "data": {
                    "record_type": "message",
                    "direction": "outbound",
                    "id": message_id,
                    "type": "SMS",
                    "from": {"phone_number": payload.get("from"), "carrier": "TELNYX LLC", "line_type": "VoIP"},
                    "to": [
                        {"phone_number": payload["to"], "status": "queued", "carrier": "SIM", "line_type": "Wireless"}
                    ],
                    "text": payload.get("text"),
                    "encoding": "GSM-7",
                    "parts": parts,
                    "cost": {"amount": f"{0.0051 * parts:.4f}", "currency": "USD"},
                    "received_at": now,
                    "sent_at": None,
                    "completed_at": None,
                    "valid_until": None,
                    "wait_seconds": 0,
                    "errors": [],
                }
            },
        )

    def _twilio(self, path: str, sid: str, body: bytes) -> None:
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        fields = {"from": form.get("From"), "to": form.get("To"), "text": form.get("Body")}
        received, answer = self._start("twilio", path, body, fields)
        auth = self._basic_auth()
        if not auth or auth[0] != sid or self.sim.twilio_accounts.get(sid) != auth[1]:
            received.status = 401
            return self._answer(
                401,
                {
                    "code": 20003,
                    "message": "Authenticate",
                    "more_info": "https://www.twilio.com/docs/errors/20003",
                    "status": 401,
                },
            )

        def error(status: int, code: int, message: str, headers: dict | None = None) -> None:
            received.status = status
            self._answer(
                status,
                {
                    "code": code,
                    "message": message,
                    "more_info": f"https://www.twilio.com/docs/errors/{code}",
                    "status": status,
                },
                headers=headers,
            )

        if answer.kind == "reset":
            return self._reset_connection()
        if not form.get("To"):
            return error(400, 21604, "A 'To' phone number is required.")
        if not form.get("Body"):
            return error(400, 21602, "Message body is required.")
        if len(form["Body"]) > 1600:
            return error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        if form["To"] in TWILIO_MAGIC:
            return error(400, TWILIO_MAGIC[form["To"]], "Rejected by the simulator's test number.")
        if not _E164.match(form["To"]):
            answer = Answer("invalid_number")
        if answer.kind != "ok":
            status, code, message = FAILURES[answer.kind][2]
            extra = {"Retry-After": str(answer.retry_after)} if answer.retry_after is not None else None
            return error(status, code, message, extra)
        message_id = "SM" + uuid.uuid4().hex
        received.status, received.message_id = 201, message_id
        now = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
        self._answer(
            201,
            {
                "sid": message_id,
                "account_sid": sid,
                "messaging_service_sid": None,
                "from": form.get("From"),
                "to": form["To"],
                "body": form["Body"],
                "status": "queued",
                "direction": "outbound-api",
                "num_segments": str(_parts(form["Body"])),
                "num_media": "0",
                "price": None,
                "price_unit": "USD",
                "error_code": None,
                "error_message": None,
                "api_version": "2010-04-01",
                "date_created": now,
                "date_updated": now,
                "date_sent": None,
                "uri": f"/2010-04-01/Accounts/{sid}/Messages/{message_id}.json",
            },
        )


def _parts(text: str) -> int:
    from sms_connector.segments import count

    return count(text).parts
