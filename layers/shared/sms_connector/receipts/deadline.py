"""The receipt deadline: a sent SMS with no final receipt after RECEIPT_DEADLINE_MINUTES
counts as `totalNoReceipt` instead of `pendingReceipts`.

A scheduled sweep (every 5 minutes) rather than a timer per SMS: the SMS waiting for a
receipt sit in a sparse index by deadline (`gsi2`, spread over a few partition keys), so
finding the overdue ones costs one query per shard whatever the traffic, and a final receipt
takes an SMS out of the index by removing its key. A per-SMS delayed message would cost an
SQS call per SMS and cannot wait more than 15 minutes; EventBridge Scheduler would cost a
schedule per SMS.
"""

from __future__ import annotations

import time
from typing import Any

from .. import clock, dynamo
from ..sending import record as sms_record


def overdue(shard: int, now: str, start: dict[str, Any] | None = None) -> tuple[list[dict[str, Any]], Any]:
    query: dict[str, Any] = {
        "TableName": dynamo.table(),
        "IndexName": "gsi2",
        "KeyConditionExpression": "gsi2pk = :shard AND gsi2sk < :now",
        "ExpressionAttributeValues": {":shard": {"S": f"AWAIT#{shard}"}, ":now": {"S": now}},
        "Limit": 200,
    }
    if start:
        query["ExclusiveStartKey"] = start
    answer = dynamo.client().query(**query)
    return [dynamo.from_item(i) for i in answer.get("Items", [])], answer.get("LastEvaluatedKey")


def sweep(seconds: float = 50.0) -> int:
    """Move every overdue SMS to NO_RECEIPT (each once: the change is conditioned on SENT);
    answers how many moved. Stops after `seconds`; the next sweep goes on."""
    until = time.monotonic() + seconds
    now = clock.iso(clock.now())
    moved = 0
    for shard in range(sms_record.AWAIT_SHARDS):
        start = None
        while time.monotonic() < until:
            items, start = overdue(shard, now, start)
            writes = [
                sms_record.change_write(
                    str(i["pk"]).removeprefix("SMS#"), str(i["connectorId"]), sms_record.deadline_change(i)
                )
                for i in items
            ]
            failed = sms_record.commit(writes)
            moved += len(writes) - len(failed)
            if not start:
                break
    return moved
