"""Provider credentials: one Secrets Manager secret per connector, nowhere else.

Secrets are cached in memory keyed by (ARN, version id). The connector item records the
version it expects, so a changed secret is fetched on the very next send and an unchanged
one costs no call.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from . import aws
from .config import settings

_cache: dict[tuple[str, str], dict[str, str]] = {}
_lock = threading.Lock()


def _client() -> Any:
    return aws.client("secretsmanager")


def create(connector_id: str, tenant_id: str, values: dict[str, str]) -> tuple[str, str]:
    """Store a new connector's credentials; returns (arn, version id)."""
    answer = _client().create_secret(
        Name=f"{settings().secret_prefix}{connector_id}",
        Description="SMS connector provider credentials",
        SecretString=json.dumps(values),
        Tags=[{"Key": "tenant", "Value": tenant_id}, {"Key": "connector", "Value": connector_id}],
    )
    return answer["ARN"], answer["VersionId"]


def replace(arn: str, values: dict[str, str]) -> str:
    """Store new credentials as the secret's current version; returns the new version id."""
    return str(_client().put_secret_value(SecretId=arn, SecretString=json.dumps(values))["VersionId"])


def read(arn: str, version: str) -> dict[str, str]:
    key = (arn, version)
    with _lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    answer = _client().get_secret_value(SecretId=arn, VersionId=version)
    values: dict[str, str] = json.loads(answer["SecretString"])
    with _lock:
        _cache[key] = values
    return values


def delete(arn: str) -> None:
    """Schedule the secret's deletion; it stays recoverable for the configured window."""
    try:
        _client().delete_secret(SecretId=arn, RecoveryWindowInDays=settings().secret_recovery_days)
    except _client().exceptions.ResourceNotFoundException:
        pass
    except _client().exceptions.InvalidRequestException:
        pass  # already scheduled for deletion (an earlier DELETE stopped half-way)


def forget() -> None:
    with _lock:
        _cache.clear()
