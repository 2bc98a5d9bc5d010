"""Telnyx API v2 as the simulator plays it (providers.md section 2): `POST /v2/messages` with a
JSON body (`from`, `to`, `text`), a Bearer API key, `{"data": message}` on success and
`{"errors": [{code, title, detail, source}]}` on failure.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any

from .base import E164, Answer, Reply, Request, Segments, SimulatedProvider, segments

if TYPE_CHECKING:
    from .server import ProviderSimulator

_AUTH_DETAIL = "The required authentication headers were either invalid or not included in the request."

# kind -> HTTP status, error code, title (providers.md 2.5)
FAILURES = {
    "invalid_number": (400, "40310", "Invalid 'to' address"),
    "opted_out": (400, "40300", "Blocked due to STOP message"),
    "no_credit": (403, "10010", "Authorization failed"),
    "rate_limited": (429, "10011", "Too many requests"),
    "server_error": (500, "10007", "Unexpected error"),
    "unavailable": (503, "10007", "Unexpected error"),
}

# Telnyx's own 7-bit set (providers.md 2.9): no `€ ¤ § Ç`, form feed or Greek capitals; `~^|\{}[]`
# are escaped and count 2; anything else sends the whole text as UTF-16.
TELNYX_BASIC = frozenset(
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    "\n\r !\"#$%&'()*+,-./:;<=>?@_£¥èéùìòØøÅåÆæßÉ¡ÄÖÑÜ¿äöñüà"
)
TELNYX_ESCAPED = frozenset("~^|\\{}[]")


def count(text: str) -> Segments:
    return segments(text, TELNYX_BASIC, TELNYX_ESCAPED)


def _limits(answer: Answer) -> dict[str, str]:
    """Telnyx's rate-limit headers (providers.md 2.5): the reset is a delay in seconds, and there is
    no Retry-After. A scripted `retry_after` sets the reset; else 1 s. The limit is our own figure."""
    reset = answer.retry_after if answer.retry_after is not None else 1
    return {"x-ratelimit-limit": "100", "x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)}


def errors(status: int, *errors: dict[str, Any], headers: dict[str, str] | None = None) -> Reply:
    return Reply.json(status, {"errors": list(errors)}, headers)


class Telnyx(SimulatedProvider):
    name = "telnyx"

    def __init__(self, sim: ProviderSimulator) -> None:
        super().__init__(sim)
        self.keys: set[str] = set()

    def handle(self, request: Request) -> Reply | None:
        if request.method == "POST" and request.path == "/v2/messages":
            return self.send(request)
        return None

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
        received, answer = self.sim.begin(self.name, request, fields)
        if request.bearer() not in self.keys:
            return self.answered(
                received, errors(401, {"code": "10009", "title": "Authentication failed", "detail": _AUTH_DETAIL})
            )
        if answer.kind == "reset":
            return self.answered(received, Reply.drop())
        if not payload.get("to"):
            missing = {"code": "10004", "title": "Missing required parameter", "source": {"pointer": "/to"}}
            return self.answered(received, errors(422, missing))
        if not E164.match(str(payload["to"])):
            answer = Answer("invalid_number")
        if answer.kind in FAILURES:
            status, code, title = FAILURES[answer.kind]
            error: dict[str, Any] = {"code": code, "title": title}
            if code == "40310":
                error |= {"detail": "The 'to' address should be a single valid number.", "source": {"pointer": "/to"}}
            if code == "10011":
                error["detail"] = "You have exceeded the maximum number of allowed requests."
            return self.answered(received, errors(status, error, headers=_limits(answer) if status == 429 else None))
        message_id = str(uuid.uuid4())
        counted = count(str(payload.get("text") or ""))
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        message = {
            "record_type": "message",
            "direction": "outbound",
            "id": message_id,
            "type": "SMS",
            "from": {"phone_number": payload.get("from"), "carrier": "TELNYX LLC", "line_type": "VoIP"},
            "to": [{"phone_number": payload["to"], "status": "queued", "carrier": "SIM", "line_type": "Wireless"}],
            "text": payload.get("text"),
            "encoding": counted.encoding,
            "parts": counted.parts,
            "cost": {"amount": f"{0.0051 * counted.parts:.4f}", "currency": "USD"},
            "received_at": now,
            "sent_at": None,
            "completed_at": None,
            "valid_until": None,
            "wait_seconds": 0,
            "errors": [],
        }
        return self.taken(received, answer, Reply.json(200, {"data": message}), message_id)
