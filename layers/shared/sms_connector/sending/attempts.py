"""Handing one SMS to its provider: retries, unknown answers, look-ups, and the deadline.

- Retry-safe errors (no connection, 429, 503) are retried with exponential backoff and full
  jitter, honouring the provider's wait hint (`Retry-After`, Telnyx's `x-ratelimit-reset`).
- After an unknown answer (the request left, no readable answer came back) the SMS may have
  been taken. Telnyx is asked again with the same Idempotency-Key, which cannot text twice;
  Twilio and 46elks are asked whether the message exists, and it is sent again only when the
  look-up says it does not. What no look-up can settle ends UNKNOWN (counted, logged, emailed).
- No call starts unless it can finish (connect + read timeout) before the deadline, which the
  caller sets to the invocation's end less the time recording needs. An SMS whose first call
  cannot start is NOT ATTEMPTED: its claim is released and SQS brings it back.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from .. import clock
from ..providers import ADAPTERS, Accepted, Outbound, ProviderError
from ..providers.base import attempt_budget
from ..providers.telnyx import REPLAY_HOURS
from ..segments import too_long_for
from .outcome import FAILED, NOT_ATTEMPTED, SENT, UNKNOWN, Outcome
from .record import Sms

MAX_ATTEMPTS = 4  # calls that may send
MAX_LOOKUPS = 3
BACKOFF_BASE = 0.25  # seconds; full jitter over base * 2**attempt
BACKOFF_CAP = 8.0
CLOCK_SKEW = timedelta(minutes=2)  # allowed between our clock and the provider's in look-ups


def deliver(sms: Sms, secret: dict[str, str], callback_url: str | None, deadline: float) -> Outcome:
    """Send `sms` once, at most, within `deadline` (time.monotonic()); answers its outcome."""
    provider = sms.provider
    too_long = too_long_for(provider, sms.text)
    if too_long:
        return outcome_of(
            sms, FAILED, error_kind="permanent", error_code="message_too_long", error_message=too_long, attempts=0
        )
    adapter = ADAPTERS[provider]
    outbound = Outbound(str(sms.connector["from"]), sms.to, sms.text, sms.id, callback_url)
    since = datetime.fromtimestamp(sms.claimed_at or time.time(), UTC) - CLOCK_SKEW
    # An earlier holder of this claim may have reached the provider.
    uncertain = sms.may_be_sent
    if uncertain and adapter.idempotent and time.time() - sms.claimed_at > (REPLAY_HOURS - 1) * 3600:
        return outcome_of(
            sms,
            UNKNOWN,
            error_kind="unknown",
            error_code="too_late_to_resend",
            error_message=f"a lost answer older than the provider's {REPLAY_HOURS} h replay window",
            attempts=0,
        )
    last: ProviderError | None = None  # the last answer to a send
    lookup_error: ProviderError | None = None  # the last look-up that could not tell
    calls = lookups = 0
    out_of_time = False
    while calls < MAX_ATTEMPTS:
        if uncertain and not adapter.idempotent:
            if lookups == MAX_LOOKUPS:
                break
            if not _time_for(2, deadline):  # a look-up, then perhaps a send
                out_of_time = True
                break
            lookups += 1
            try:
                found = adapter.lookup(secret, outbound, since)
            except ProviderError as exc:
                lookup_error = exc
                if lookups < MAX_LOOKUPS and not _pause(exc, lookups, deadline):
                    out_of_time = True
                    break
                continue
            if found is not None:
                return _sent(sms, found, calls, last, found_by_lookup=True)
            uncertain = False  # the provider says it does not have it: sending is safe
        if not _time_for(1, deadline):
            out_of_time = True
            break
        calls += 1
        started = time.monotonic()
        try:
            accepted = adapter.send(secret, outbound)
        except ProviderError as exc:
            last = exc
            if exc.kind == "unknown":
                uncertain = True
            elif exc.kind != "retry":
                return _failed(sms, exc, calls)
            if calls < MAX_ATTEMPTS and not _pause(exc, calls, deadline):
                out_of_time = True
                break
            continue
        return _sent(sms, accepted, calls, last, latency_ms=(time.monotonic() - started) * 1000)
    if calls == lookups == 0:  # nothing was tried: the next delivery will
        return outcome_of(sms, NOT_ATTEMPTED, attempts=0)
    if not uncertain and last is None:  # the look-up said "not there", and no time was left to send
        sms.may_be_sent = False
        return outcome_of(sms, NOT_ATTEMPTED, attempts=0)
    if uncertain:
        words = [last.message if last else "an earlier attempt may have reached the provider"]
        if lookup_error:
            words.append(f"the look-up could not tell: {lookup_error.message}")
        if out_of_time:
            words.append("no time left to try again")
        return outcome_of(
            sms,
            UNKNOWN,
            error_kind="unknown",
            error_code=(last or lookup_error or ProviderError("unknown", "no_answer", "")).code,
            error_message="; ".join(words),
            attempts=calls,
        )
    assert last is not None
    return outcome_of(
        sms,
        FAILED,
        error_kind=last.kind,
        error_code=last.code,
        error_message=last.message + ("; no time left to try again" if out_of_time else ""),
        attempts=calls,
    )


def _time_for(calls: int, deadline: float) -> bool:
    return time.monotonic() + calls * attempt_budget() <= deadline


def _pause(error: ProviderError, attempt: int, deadline: float) -> bool:
    """Wait before the next try; False when the wait and one more call do not fit in time."""
    pause = (
        error.retry_after
        if error.retry_after is not None
        else random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt))
    )
    if time.monotonic() + pause + attempt_budget() > deadline:
        return False
    time.sleep(pause)
    return True


def outcome_of(sms: Sms, status: str, **details: Any) -> Outcome:
    """An outcome of `sms`, now."""
    return Outcome(
        connector_id=sms.connector["id"],
        tenant_id=sms.connector["tenantId"],
        provider=sms.provider,
        action_id=sms.action_id,
        to=sms.to,
        status=status,
        at=clock.iso(clock.now()),
        **details,
    )


def _sent(
    sms: Sms,
    accepted: Accepted,
    calls: int,
    last: ProviderError | None,
    *,
    latency_ms: float | None = None,
    found_by_lookup: bool = False,
) -> Outcome:
    return outcome_of(
        sms,
        SENT,
        message_id=accepted.message_id,
        segments=accepted.segments,
        cost=accepted.cost,
        currency=accepted.currency,
        attempts=max(calls, 1),
        latency_ms=latency_ms,
        error_code=last.code if last else None,
        error_message=last.message if last else None,
        found_by_lookup=found_by_lookup,
    )


def _failed(sms: Sms, error: ProviderError, calls: int) -> Outcome:
    return outcome_of(
        sms,
        FAILED,
        error_kind=error.kind,
        error_code=error.code,
        error_message=error.message,
        attempts=calls,
        opted_out=error.opted_out,
    )
