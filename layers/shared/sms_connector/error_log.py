"""The connector's error log: DynamoDB items under the connector, newest first, expiring by TTL."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from . import clock, connector_store, dynamo, masking
from .config import settings


def entry_item(
    connector_id: str,
    *,
    at: str,
    level: str,
    message: str,
    provider: str | None,
    recipient: str | None,
    error_code: str | None,
    action_id: str | None,
    kind: str,
) -> dict[str, Any]:
    """A log entry as a DynamoDB item (typed), ready for a write or a transaction. The message
    and the recipient are masked here, whoever wrote them."""
    expires = clock.now() + timedelta(days=settings().log_retention_days)
    return dynamo.to_item(
        {
            "pk": connector_store.pk(connector_id),
            "sk": f"LOG#{at}#{os.urandom(6).hex()}",
            "at": at,
            "level": level,
            "message": masking.text(message)[:1000],
            "provider": provider,
            "recipient": masking.number(recipient) if recipient else None,
            "errorCode": error_code,
            "actionId": action_id,
            "kind": kind,
            "expiresAt": int(expires.timestamp()),
        }
    )


def page(connector_id: str, limit: int, token: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the log, newest first, and the token of the next page (None on the last)."""
    partition = {"pk": connector_store.pk(connector_id)}
    query: dict[str, Any] = {
        "TableName": dynamo.table(),
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :log)",
        "ExpressionAttributeValues": {":pk": {"S": partition["pk"]}, ":log": {"S": "LOG#"}},
        "ScanIndexForward": False,
        "Limit": limit + 1,  # one more than the page: is there a next page at all?
    }
    start = dynamo.decode_token(token, partition=partition)
    if start:
        query["ExclusiveStartKey"] = start
    items = dynamo.client().query(**query).get("Items", [])
    more = len(items) > limit
    items = items[:limit]
    entries = []
    for item in items:
        values = dynamo.from_item(item)
        entries.append(
            {
                k: values.get(k)
                for k in ("at", "level", "message", "recipient", "provider", "errorCode", "actionId", "kind")
            }
        )
    # DynamoDB hands a LastEvaluatedKey back with a full page even when nothing follows: the
    # token is only given when the probe found one more entry
    return entries, dynamo.encode_token(dynamo.key_of(items[-1], ("pk", "sk")) if more else None)
