"""Lazily built, cached boto3 clients: created on first use, shared by threads, resettable."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

# Lambda gives a function little time; a hung AWS call must fail fast and be retried by SQS.
_CONFIG = Config(
    connect_timeout=3,
    read_timeout=10,
    retries={"mode": "standard", "max_attempts": 3},  # retries: 4 attempts in all
    # Our requests are built by code, not typed by people, and AWS checks them anyway: checking
    # each parameter against the model first costs the sender about 5 ms a batch.
    parameter_validation=False,
)


# For a call that is not idempotent (SES SendEmail has no idempotency key): botocore would resend
# it after a read timeout or a reset, when the first request may well have been taken.
_ONCE = _CONFIG.merge(Config(retries={"mode": "standard", "total_max_attempts": 1}))


@cache
def client(service: str, *, resent: bool = True) -> Any:
    """`service`'s client; `resent=False`: one whose calls botocore never repeats by itself."""
    return boto3.client(service, config=_CONFIG if resent else _ONCE)


def reset() -> None:
    """Drop every cached client (tests switch endpoints and mocks between cases)."""
    client.cache_clear()
