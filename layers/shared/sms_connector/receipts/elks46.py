"""46elks `whendelivered` callbacks: the per-connector token in the URL (46elks signs
nothing, providers.md 1.8), the form read as a Report."""

from __future__ import annotations

import hmac
from urllib.parse import parse_qs

from .. import clock
from ..sending.record import Report

FINAL = {"delivered": "delivered", "failed": "undelivered"}


def token_matches(given: str, expected: str | None) -> bool:
    return bool(expected) and hmac.compare_digest(given.encode(), str(expected).encode())


def parse(body: bytes) -> Report | None:
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "strict"), keep_blank_values=True).items()}
    if not form.get("id") or not form.get("status"):
        return None
    status = FINAL.get(form["status"], "interim")
    return Report(
        message_id=form["id"],
        status=status,
        at=clock.iso(clock.now()),
        error_code="failed" if status == "undelivered" else None,
        error_message="46elks reported the delivery failed (it gives no reason)" if status == "undelivered" else None,
    )
