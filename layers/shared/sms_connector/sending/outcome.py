"""What happened when one SMS was handed to its provider: the facts every record, counter,
log entry and backup email is made from."""

from __future__ import annotations

from dataclasses import dataclass

SENT = "sent"  # the provider accepted it (any 2xx carrying a message id)
FAILED = "failed"  # refused, or retry-safe errors outlasted the retries
UNKNOWN = "unknown"  # the request left, no readable answer came back, and a look-up could not tell
NOT_ATTEMPTED = "not attempted"  # no time left to try: goes back to the queue
SUPPRESSED = "suppressed"  # not sent because of the connector's limits or an opt-out (error_code: why)


@dataclass(frozen=True)
class Outcome:
    connector_id: str
    tenant_id: str
    provider: str
    action_id: str
    to: str
    status: str  # SENT, FAILED, UNKNOWN or NOT_ATTEMPTED
    at: str  # ISO 8601 UTC
    message_id: str | None = None
    segments: int | None = None
    cost: str | None = None
    currency: str | None = None
    error_kind: str | None = None  # "retry", "unknown", "permanent", "config" (providers.base)
    error_code: str | None = None
    error_message: str | None = None  # the provider's words: may hold a number, mask before writing
    attempts: int = 1
    latency_ms: float | None = None
    opted_out: bool = False
    found_by_lookup: bool = False  # an earlier attempt had reached the provider after all

    @property
    def sent(self) -> bool:
        return self.status == SENT

    @property
    def error(self) -> str | None:
        """Why the SMS was not (surely) sent, in the provider's words (unmasked)."""
        if self.status == SENT:
            return None
        if self.status == UNKNOWN:
            return f"outcome unknown: {self.provider} {self.error_code}: {self.error_message}"
        return f"{self.provider} {self.error_code}: {self.error_message}"

    @property
    def notice(self) -> str | None:
        """The error, or for a send that needed retries a warning saying why; None otherwise.
        (Suppressions are said once per burst, not per SMS: see `limits`.)"""
        if self.status == SUPPRESSED:
            return None
        if self.status != SENT:
            return self.error
        if self.found_by_lookup:
            lost = f"{self.provider} {self.error_code}: {self.error_message}"
            return f"sent; its answer was lost ({lost}), a look-up found it"
        if self.attempts > 1 and self.error_code:
            return f"sent after {self.attempts} attempts; {self.provider} {self.error_code}: {self.error_message}"
        return None

    @property
    def level(self) -> str:
        return "error" if self.status == FAILED else "warning"
