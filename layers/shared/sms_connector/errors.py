"""Domain errors. The API maps them to HTTP answers in one place (`api.py`); the shape of an
error answer and the largest body any route reads are here, for the routes no resolver serves."""

from __future__ import annotations

import json
from http import HTTPStatus

MAX_BODY_BYTES = 64 * 1024  # any route's body, API or receipt


def error_body(status: HTTPStatus | int, message: str) -> str:
    """An error answer's body: `{"statusCode", "message"}`, compact JSON, a trailing newline
    (the resolver's own answers are formatted the same way)."""
    return json.dumps({"statusCode": int(status), "message": message}, separators=(",", ":")) + "\n"


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
