"""46elks as the simulator plays it (providers.md section 1): `POST /a1/sms` (any case), a form
with `from`, `to`, `message`, HTTP Basic auth, a JSON answer on success and plain-text errors.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING

from .base import E164, GSM_BASIC, Answer, Reply, Request, Segments, SimulatedProvider, segments

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


# 46elks counts the GSM 03.38 basic table only: `€` is not in it (providers.md 1.9), so we take it
# that every extension character (`€ [ ] { } ^ ~ | \`) sends the whole text as UCS-2 (section 4).
def count(text: str) -> Segments:
    return segments(text, GSM_BASIC, frozenset())


class Elks46(SimulatedProvider):
    name = "46elks"

    def __init__(self, sim: ProviderSimulator) -> None:
        super().__init__(sim)
        self.accounts: dict[str, str] = {}  # API username -> API password

    def handle(self, request: Request) -> Reply | None:
        if request.method == "POST" and request.path.lower() == "/a1/sms":
            return self.send(request)
        return None

    def send(self, request: Request) -> Reply:
        form = request.form()
        fields = {"from": form.get("from"), "to": form.get("to"), "text": form.get("message")}
        received, answer = self.sim.begin(self.name, request, fields)
        auth = request.basic_auth()
        if not auth or self.accounts.get(auth[0]) != auth[1]:
            return self.answered(received, Reply.text(401, "Unauthorized"))
        if answer.kind == "reset":
            return self.answered(received, Reply.drop())
        missing = [k for k in ("from", "to", "message") if not form.get(k)]
        if missing:
            return self.answered(received, Reply.text(400, f"Missing key {missing[0]}"))
        if not E164.match(form["to"]):
            answer = Answer("invalid_number")
        if answer.kind in FAILURES:
            status, text = FAILURES[answer.kind]
            # 46elks documents no 429 and no Retry-After (providers.md 1.5): one only when scripted
            extra = {"Retry-After": str(answer.retry_after)} if answer.retry_after is not None else None
            return self.answered(received, Reply.text(status, text, extra))
        message_id = "s" + uuid.uuid4().hex
        parts = count(form["message"]).parts
        answer_body = {
            "id": message_id,
            "status": "created",
            "direction": "outgoing",
            "from": form["from"],
            "to": form["to"],
            "message": form["message"],
            "created": time.strftime("%Y-%m-%dT%H:%M:%S.000000", time.gmtime()),
            "parts": parts,
            "cost": 3500 * parts,
        }
        return self.taken(received, answer, Reply.json(200, answer_body), message_id)
