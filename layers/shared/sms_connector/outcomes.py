"""What happened to one SMS: the record every counter, log entry and fallback is made from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    connector_id: str
    tenant_id: str
    provider: str
    action_id: str
    to: str
    status: str  # "sent" or "failed"
    at: str  # ISO 8601 UTC
    message_id: str | None = None
    segments: int | None = None
    error_kind: str | None = None  # "retry", "permanent", "config" (see providers.base)
    error_code: str | None = None
    error_message: str | None = None
    attempts: int = 1
    backup_email: str | None = None
    latency_ms: float | None = None

    @property
    def sent(self) -> bool:
        return self.status == "sent"

    @property
    def error(self) -> str | None:
        """Why the SMS failed, for the API and the error log."""
        if self.sent:
            return None
        return f"{self.provider} {self.error_code}: {self.error_message}"

    @property
    def notice(self) -> str | None:
        """The error, or for a send that needed retries a warning saying why; None otherwise."""
        if not self.sent:
            return self.error
        if self.attempts > 1 and self.error_code:
            return f"sent after {self.attempts} attempts; {self.provider} {self.error_code}: {self.error_message}"
        return None

    @property
    def level(self) -> str:
        return "error" if not self.sent else "warning"
