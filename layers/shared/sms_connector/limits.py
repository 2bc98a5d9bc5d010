"""Limits and guardrails: what keeps the service from being a free SMS gateway or a flood.

The test route's allowance: at most TEST_SENDS_PER_HOUR test SMS per connector and clock hour
(each recipient of a test send counts: a test to 100 recipients is 100 SMS), counted with one
conditional atomic ADD, so parallel calls cannot pass it. Over it: 429 with Retry-After.
"""

from __future__ import annotations

from datetime import timedelta

from . import clock, connector_store, dynamo
from .config import settings
from .errors import TooManyRequests


def take_test_sends(connector_id: str, count: int) -> None:
    """Take `count` test SMS from this hour's allowance, or raise TooManyRequests."""
    limit = settings().test_sends_per_hour
    now = clock.now()
    hour = now.replace(minute=0, second=0, microsecond=0)
    retry_after = int((hour + timedelta(hours=1) - now).total_seconds()) + 1
    if count > limit:
        raise TooManyRequests(
            f"a test send to {count} recipients is more than the {limit} test SMS allowed per hour; test one recipient",
            retry_after,
        )
    client = dynamo.client()
    try:
        client.update_item(
            TableName=dynamo.table(),
            Key={"pk": {"S": connector_store.pk(connector_id)}, "sk": {"S": f"TESTS#{clock.iso(hour)[:13]}"}},
            UpdateExpression="ADD sent :n SET expiresAt = :expires",
            ConditionExpression="attribute_not_exists(sent) OR sent <= :room",
            ExpressionAttributeValues={
                ":n": {"N": str(count)},
                ":room": {"N": str(limit - count)},
                ":expires": {"N": str(int((hour + timedelta(hours=2)).timestamp()))},
            },
        )
    except client.exceptions.ConditionalCheckFailedException:
        raise TooManyRequests(
            f"this connector's {limit} test SMS for this hour are used up; try again in {retry_after} s", retry_after
        ) from None
