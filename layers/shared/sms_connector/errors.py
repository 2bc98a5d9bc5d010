"""Domain errors. The API maps them to HTTP answers in one place (`api.py`)."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the service raises on purpose."""


class NotFound(DomainError):
    def __init__(self, what: str = "connector") -> None:
        super().__init__(f"{what} not found")


class Forbidden(DomainError):
    pass


class InvalidField(DomainError):
    """A field that passed the schema but breaks a rule needing stored data (422)."""

    def __init__(self, field: str, message: str, location: str = "body") -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.location = location


class Conflict(DomainError):
    pass


class Unavailable(DomainError):
    """Something we depend on (a provider, SES) could not answer: try again (503)."""


class TooManyRequests(DomainError):
    """A limit was reached (429); `retry_after` seconds until it resets."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ProviderUnavailable(Unavailable):
    """The provider could not be asked (no connection, no answer, a 5xx): a 503, never a pass."""
