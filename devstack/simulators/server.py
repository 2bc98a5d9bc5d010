"""The provider simulator's one HTTP server: it reads each request, hands it to the provider
whose route it is (`elks46`, `telnyx`, `twilio`), and writes the reply or drops the connection.

It also owns what is common to the three: the request log (`received()`, `sent()`), scripted
answers (`script()`, `POST /_sim/script`), magic recipients, random faults, latency, and the
background timeline that moves taken messages on and posts their receipts.

Magic recipients (all providers), answers: +46700000001 invalid number, +46700000002 opted out,
+46700000003 out of credit, +46700000004 always 429, +46700000005 always 500. How a taken message
ends: +46700000006 undelivered, +46700000007 never final, +46700000008 unconfirmed (Telnyx; else
delivered), +46700000009 failed before it was sent (base.OUTCOMES). Twilio's test numbers: see
`twilio`.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import urllib3

from . import elks46, telnyx, twilio
from .base import KINDS, Answer, Callback, Notice, Received, Reply, Request, SimulatedProvider, Stored
from .elks46 import Elks46
from .telnyx import Telnyx
from .twilio import Twilio

MAGIC = {
    "+46700000001": "invalid_number",
    "+46700000002": "opted_out",
    "+46700000003": "no_credit",
    "+46700000004": "rate_limited",
    "+46700000005": "server_error",
}
PROVIDERS = ("46elks", "telnyx", "twilio")


_PREFIXES = (("/a1/", "46elks"), ("/v2/", "telnyx"), ("/2010-04-01/", "twilio"))


class ProviderSimulator:
    """46elks, Telnyx and Twilio on one local port (`url`); start/stop, or use as a context manager.

    Sends get, in this order: the next scripted answer (`script()`), the recipient's magic answer
    (MAGIC), a random fault (`fault_rate` of `fault_kinds`), else success. Answer kinds (base.KINDS):
    "ok", "slow" (after `slow_seconds`), "reset" and "timeout" (closed unanswered, at once or after
    `timeout_seconds`), the provider's refusals "invalid_number", "opted_out", "no_credit",
    "rate_limited", "server_error", "unavailable" (none of these take the message), and the faults
    after the message is taken: "accept_then_hang" (no answer for `hang_seconds`, then closed),
    "accept_then_reset", "unreadable" (success status, a proxy's HTML page), "accept_then_500" (a
    proxy's 502 page). `latency` delays every answer.

    Taken messages are listed by `sent()`; every request (sends, look-ups, account checks) by
    `received()`, with the answer kind it got (`Received.answer`; also "replayed", "in_flight",
    "key_reused", "bad_key" for Telnyx's Idempotency-Key). Receipts: see `receipt_delay`.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._lock = threading.Lock()
        self.requests: list[Received] = []
        self._scripts: dict[str, list[Answer]] = {p: [] for p in PROVIDERS}
        self.latency = 0.0
        self.fault_rate = 0.0
        self.fault_kinds: tuple[str, ...] = ("server_error", "rate_limited", "reset", "slow", "timeout")
        self.slow_seconds = 2.0
        self.timeout_seconds = 12.0  # longer than the client waits: it gives up, nothing is sent
        self.hang_seconds = 12.0  # accept_then_hang: taken, then no answer for longer than a client waits
        # A taken message is "sent" after `receipt_delay` seconds and final after twice that; each
        # change that the send asked a receipt for is POSTed to its callback URL ("post"), or kept
        # for `flush_receipts()` ("hold"). An answer outside the provider's accepted range is
        # retried: `receipt_attempts` per URL (46elks documents at least 5, Telnyx 3 then the
        # failover URL; Twilio's retries are not documented: 2 is our choice), `receipt_backoff`
        # seconds apart, doubling.
        self.receipt_delay = 0.5
        self.receipts = "post"
        self.receipt_attempts = {"46elks": 5, "telnyx": 3, "twilio": 2}
        self.receipt_backoff = 0.1
        self.callback_timeout = 5.0
        self._held: list[tuple[Notice, Callback]] = []
        self._posted: list[Callback] = []
        self._http = urllib3.PoolManager(retries=False)
        # List look-ups (Twilio, 46elks) leave out messages younger than this; the real delay is
        # not documented (providers.md 8.1, 8.2).
        self.listing_delay = 0.0
        # Look-ups (every GET but the simulator's own) answered with a proxy's HTML 503 at this
        # rate: the provider cannot tell whether a message exists.
        self.lookup_fault_rate = 0.0
        self._stopping = threading.Event()
        self._timeline = _Timeline(self._stopping)
        self._random = random.Random(7)
        self.elks46 = Elks46(self)
        self.telnyx = Telnyx(self)
        self.twilio = Twilio(self)
        self._providers: tuple[SimulatedProvider, ...] = (self.elks46, self.telnyx, self.twilio)
        simulator = self

        class Handler(_Handler):
            sim = simulator

        self._server = _Server((host, port), Handler)
        self._thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> ProviderSimulator:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="provider-sim", daemon=True
        )
        self._thread.start()
        self._timeline.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._timeline.wake()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ProviderSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- configuration ----------------------------------------------------------------

    def add_elks46_account(
        self, username: str, password: str, *, balance: int = 2_000_000, currency: str = "SEK", status: str = "active"
    ) -> None:
        """A 46elks API user; `balance` in 1/10000 of `currency`; `status` "active" or "suspended"."""
        self.elks46.accounts[username] = elks46.Account(password, balance, currency, status)

    def add_telnyx_key(
        self,
        api_key: str,
        *,
        balance: str = "20.00",
        currency: str = "USD",
        status: str = "active",
        credit_limit: str = "0.00",
    ) -> None:
        """A Telnyx API key and its account: decimal-string money; `status` "active" or "suspended"."""
        self.telnyx.accounts[api_key] = telnyx.Account(balance, currency, status, credit_limit)

    def add_twilio_account(
        self,
        sid: str,
        token: str,
        *,
        status: str = "active",
        type: str = "Full",
        balance: str = "20.00",
        currency: str = "USD",
        verified_numbers: Iterable[str] = (),
    ) -> None:
        """A Twilio account: `status` "active", "suspended" or "closed"; `type` "Full" or "Trial" (which
        sends only to `verified_numbers`); `balance` a decimal string. Again for a SID: replaces it."""
        self.twilio.accounts[sid] = twilio.Account(token, status, type, balance, currency, frozenset(verified_numbers))

    def script(self, provider: str, *answers: Answer | str) -> None:
        """Queue answers for the next sends to `provider` (kinds: base.KINDS)."""
        queued = [a if isinstance(a, Answer) else Answer(a) for a in answers]
        unknown = [a.kind for a in queued if a.kind not in KINDS]
        if provider not in PROVIDERS or unknown:
            raise ValueError(f"no such provider or answer: {provider} {unknown}")
        with self._lock:
            self._scripts[provider].extend(queued)

    def reset(self) -> None:
        """Forget everything but the accounts: requests, scripts, messages, pending state changes,
        held and posted receipts."""
        with self._lock:
            self.requests.clear()
            for queue in self._scripts.values():
                queue.clear()
            self._held.clear()
            self._posted.clear()
        self._timeline.clear()
        for provider in self._providers:
            provider.reset()
        self.latency = 0.0
        self.fault_rate = 0.0

    def clear(self) -> None:
        """Forget the request log (`received()`, `sent()`, `/_sim/messages`); keep the rest."""
        with self._lock:
            self.requests.clear()

    # --- inspection -------------------------------------------------------------------

    def sent(self, provider: str | None = None) -> list[Received]:
        """Requests whose message the simulator took (an SMS 'sent'), oldest first; each message once
        (a Telnyx idempotent replay names the message it replays, but sends nothing)."""
        with self._lock:
            return [
                r
                for r in self.requests
                if r.message_id and r.answer != "replayed" and (provider is None or r.provider == provider)
            ]

    def received(self, provider: str | None = None, *, method: str | None = None) -> list[Received]:
        """Every request to the providers, oldest first (sends are POSTs; look-ups and account
        checks GETs)."""
        with self._lock:
            return [
                r
                for r in self.requests
                if (provider is None or r.provider == provider) and (method is None or r.method == method)
            ]

    @property
    def telnyx_public_key(self) -> str:
        """The key Telnyx receipts are signed with: base64 of the 32 raw bytes of an Ed25519 public
        key, as the Telnyx portal shows it (one key pair per simulator)."""
        return self.telnyx.public_key

    def callbacks(self, provider: str | None = None) -> list[Callback]:
        """The receipts posted (each attempt), oldest first, with the status the endpoint answered."""
        with self._lock:
            return [c for c in self._posted if provider is None or c.provider == provider]

    def held_receipts(self) -> list[Callback]:
        """The receipts held while `receipts == "hold"`, in order, not yet posted."""
        with self._lock:
            return [callback for _, callback in self._held]

    def flush_receipts(self) -> list[Callback]:
        """Post the held receipts now, in order (retries, if any, follow in the background)."""
        with self._lock:
            held, self._held = self._held, []
        for notice, callback in held:
            self._deliver(notice, 0, callback)
        return [callback for _, callback in held]

    # --- receipts -----------------------------------------------------------------------

    def _notify(self, notice: Notice | None) -> None:
        if notice is None or not notice.urls:
            return
        callback = notice.render(notice.urls[0], 1)
        if self.receipts == "hold":
            with self._lock:
                self._held.append((notice, callback))
        else:
            self._deliver(notice, 0, callback)

    def _deliver(self, notice: Notice, url: int, callback: Callback) -> None:
        """POST one receipt; on a refusal or no answer, schedule the next attempt or the next URL."""
        try:
            answer = self._http.request(
                callback.method,
                callback.url,
                body=callback.body,
                headers=callback.headers,
                timeout=self.callback_timeout,
                redirect=False,
            )
            callback.status = answer.status
        except urllib3.exceptions.HTTPError:
            callback.status = 0
        callback.at = time.time()
        with self._lock:
            self._posted.append(callback)
        if callback.status in notice.accepted:
            return
        attempt = callback.attempt + 1
        if attempt > self.receipt_attempts.get(notice.provider, 1):
            url, attempt = url + 1, 1
            if url >= len(notice.urls):
                return
        when = time.monotonic() + self.receipt_backoff * 2 ** (callback.attempt - 1)
        self._timeline.at(when, lambda: self._deliver(notice, url, notice.render(notice.urls[url], attempt)))

    # --- what the providers call ------------------------------------------------------

    def begin(self, provider: str, request: Request, fields: dict[str, Any]) -> tuple[Received, Answer]:
        """Log a send, then choose its answer and wait its delay (see `answer_for`)."""
        received = self.record(provider, request, fields)
        return received, self.answer_for(received)

    def record(self, provider: str, request: Request, fields: dict[str, Any], status: int = 0) -> Received:
        """Log a request before anything else happens to it (a test can see it during a hang)."""
        received = Received(provider, request.method, request.path, request.headers, request.body, fields, status)
        with self._lock:
            self.requests.append(received)
        return received

    def answer_for(self, received: Received) -> Answer:
        """The next scripted answer, else the recipient's magic one, else a random fault at
        `fault_rate`, else "ok"; waits its delay, names it on the log entry, and hands the provider
        one of "ok", "reset" or the refusals and taken faults of base.KINDS."""
        answer = self._next_answer(received.provider, str(received.fields.get("to", "")))
        kind = answer.kind
        if kind == "slow" or (kind == "ok" and answer.delay):
            received.answer, delay, kind = "slow", answer.delay or self.slow_seconds, "ok"
        elif kind == "timeout" or (kind == "reset" and answer.delay):
            received.answer, delay, kind = "timeout", answer.delay or self.timeout_seconds, "reset"
        else:
            received.answer, delay = kind, answer.delay or self.latency
        self.pause(delay)
        return Answer(kind, retry_after=answer.retry_after)

    def follow(self, provider: SimulatedProvider, stored: Stored) -> None:
        """Move a taken message on: to "sent" after `receipt_delay`, to its final state after twice that."""
        start = time.monotonic()
        self._timeline.at(start + self.receipt_delay, lambda: self._notify(provider.progress(stored, "sent")))
        self._timeline.at(start + 2 * self.receipt_delay, lambda: self._notify(provider.progress(stored, "final")))

    def pause(self, seconds: float) -> None:
        """Sleep, but wake when the simulator stops (a hang must not outlive it)."""
        if seconds > 0:
            self._stopping.wait(seconds)

    def _next_answer(self, provider: str, to: str) -> Answer:
        with self._lock:
            if self._scripts[provider]:
                return self._scripts[provider].pop(0)
            roll = self._random.random()
            kind = self._random.choice(self.fault_kinds) if roll < self.fault_rate else None
        if to in MAGIC:
            return Answer(MAGIC[to])
        return Answer(kind or "ok")

    def _route(self, request: Request) -> Reply:
        if request.method == "GET" and self.lookup_fault_rate:
            with self._lock:
                failing = self._random.random() < self.lookup_fault_rate
            if failing:
                name = next((n for prefix, n in _PREFIXES if request.path.lower().startswith(prefix)), "unknown")
                self.record(name, request, {}, status=503).answer = "lookup_failed"
                return Reply.html(503, "<html><body><h1>503 Service Unavailable</h1></body></html>")
        for provider in self._providers:
            reply = provider.handle(request)
            if reply is not None:
                return reply
        return Reply.json(404, {"message": "not found"})

    def _control(self, request: Request) -> Reply | None:
        """The simulator's own routes, for people and other processes."""
        if request.method == "GET" and request.path == "/_sim/messages":
            sent = [
                {
                    "provider": r.provider,
                    "id": r.message_id,
                    "to": r.fields.get("to"),
                    "from": r.fields.get("from"),
                    "text": r.fields.get("text"),
                    "at": r.at,
                }
                for r in self.sent()
            ]
            return Reply.json(200, {"messages": sent})
        if request.method == "POST" and request.path == "/_sim/script":
            try:
                order = json.loads(request.body or b"{}")
                answers = [Answer(**a) if isinstance(a, dict) else a for a in order["answers"]]
                self.script(order["provider"], *answers)
            except (ValueError, KeyError, TypeError) as exc:
                return Reply.json(400, {"message": f"bad script: {exc}"})
            return Reply.json(200, {"queued": len(answers)})
        if request.method == "POST" and request.path == "/_sim/clear":
            self.clear()
            return Reply.json(200, {"cleared": True})
        return None


class _Timeline:
    """Runs actions at their time, in order, on one background thread."""

    def __init__(self, stopping: threading.Event) -> None:
        self._stopping = stopping
        self._due: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._changed = threading.Condition()

    def start(self) -> None:
        threading.Thread(target=self._run, name="provider-sim-timeline", daemon=True).start()

    def at(self, when: float, action: Callable[[], None]) -> None:
        """Run `action` at `when` (time.monotonic())."""
        with self._changed:
            heapq.heappush(self._due, (when, next(self._order), action))
            self._changed.notify()

    def clear(self) -> None:
        with self._changed:
            self._due.clear()

    def wake(self) -> None:
        with self._changed:
            self._changed.notify()

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._stopping.is_set() and (not self._due or self._due[0][0] > time.monotonic()):
                    self._changed.wait(self._due[0][0] - time.monotonic() if self._due else None)
                if self._stopping.is_set():
                    return
                action = heapq.heappop(self._due)[2]
            try:
                action()
            except Exception:  # one broken action must not stop the others
                logging.getLogger(__name__).exception("simulator timeline action failed")


class _Server(ThreadingHTTPServer):
    # A batch opens up to SEND_CONCURRENCY connections at once: with the default backlog of 5
    # the kernel drops the rest, and each dropped connect waits a second to try again.
    request_queue_size = 128
    daemon_threads = True


class _Handler(BaseHTTPRequestHandler):
    sim: ProviderSimulator
    protocol_version = "HTTP/1.1"
    # The headers and the body go out in two writes: with Nagle's algorithm the body waits for
    # the client's delayed ACK (40 ms on Linux) on every kept-alive connection.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        headers: dict[str, str] = {}
        for name, value in self.headers.items():  # a repeated header is one, its values joined
            name = name.lower()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        request = Request(self.command, url.path, parse_qs(url.query), headers, body)
        reply = self.sim._control(request) if request.path.startswith("/_sim/") else None
        self._write(reply or self.sim._route(request))

    def _write(self, reply: Reply) -> None:
        if reply.dropped:
            try:
                self.sim.pause(reply.drop_after)
                self.close_connection = True
                with contextlib.suppress(OSError):  # the client may have left first
                    self.connection.shutdown(socket.SHUT_RDWR)
            finally:
                if reply.done:
                    reply.done()
            return
        if reply.done:  # before the client can read the answer, and so retry
            reply.done()
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)
