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
    retries={"mode": "standard", "max_attempts": 3},
    # Our requests are built by code, not typed by people, and AWS checks them anyway: checking
    # each parameter against the model first costs the sender about 5 ms a batch.
    parameter_validation=False,
)


@cache
def client(service: str) -> Any:
    return boto3.client(service, config=_CONFIG)


def reset() -> None:
    """Drop every cached client (tests switch endpoints and mocks between cases)."""
    client.cache_clear()
