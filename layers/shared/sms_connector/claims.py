"""Idempotency of sends: one claim per (connector, rule action, recipient).

SQS delivers at least once. Before texting anyone, the sender claims every (action,
recipient) pair of its batch in one DynamoDB transaction; after the sends, the claims are
completed in the same transaction that writes the counters and log entries. A redelivered
action finds its claims completed and texts nobody again.

Why not Powertools idempotency: it costs two DynamoDB calls per key (put, then update), 60
calls for a batch of 10 actions x 3 recipients; batching the claims costs one or two calls
per batch. The records follow the same idea (status, lease, expiry) under their own prefix.

A function that dies between claiming and completing leaves claims IN_PROGRESS with a lease
that ends with the invocation's time. SQS redelivers after its visibility timeout (six times
the function timeout, so after the lease), the claims are taken again and those recipients
are texted again: a provider may have accepted an SMS just before the crash, and none of the
three has an idempotency key, so this is the one case that can duplicate; the alternative is
losing the alert.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import dynamo

IN_PROGRESS = "IN_PROGRESS"
COMPLETED = "COMPLETED"
KEEP_SECONDS = 14 * 24 * 3600  # longer than SQS keeps a message (at most 14 days)
_TRANSACTION_ITEMS = 100


@dataclass(frozen=True)
class ClaimKey:
    connector_id: str
    action_id: str
    to: str

    def item_key(self) -> dict[str, Any]:
        return {"pk": {"S": f"ACTION#{self.connector_id}#{self.action_id}"}, "sk": {"S": f"TO#{self.to}"}}


def claim(keys: Sequence[ClaimKey], lease_until: float) -> tuple[dict[ClaimKey, str], dict[ClaimKey, dict[str, Any]]]:
    """Claim each key. Answers each key's state: 'claimed', 'done' (sent and recorded), 'busy'
    (another invocation holds it) or 'unrecorded' (sent, but the invocation failed before its
    counters and log were written); and, for the unrecorded ones, the outcome it stored."""
    result: dict[ClaimKey, str] = {}
    stored: dict[ClaimKey, dict[str, Any]] = {}
    now = int(time.time())
    for start in range(0, len(keys), _TRANSACTION_ITEMS):
        pending = list(keys[start : start + _TRANSACTION_ITEMS])
        conflicts = 0
        while pending:
            try:
                dynamo.client().transact_write_items(TransactItems=[_put(k, now, lease_until) for k in pending])
                result.update(dict.fromkeys(pending, "claimed"))
                break
            except dynamo.client().exceptions.TransactionCanceledException as exc:
                reasons = exc.response.get("CancellationReasons", [])
                taken = [k for k, r in zip(pending, reasons, strict=False) if r.get("Code") == "ConditionalCheckFailed"]
                if not taken:  # a conflict with a concurrent transaction: try again shortly
                    conflicts += 1
                    if conflicts > 5:
                        raise
                    time.sleep(0.05 * conflicts)
                    continue
                states, outcomes = _states(taken)
                result.update(states)
                stored.update(outcomes)
                pending = [k for k in pending if k not in result]
    return result, stored


def completion(key: ClaimKey, outcome: dict[str, Any], *, recovering: bool = False) -> dict[str, Any]:
    """The transaction item that marks a claim completed and recorded, keeping what happened.

    When `recovering` an unrecorded claim, the write is conditional on it still being
    unrecorded, so two redeliveries cannot both add its counters."""
    put: dict[str, Any] = {
        "TableName": dynamo.table(),
        "Item": key.item_key()
        | dynamo.to_item(
            {"status": COMPLETED, "recorded": True, "outcome": outcome, "expiresAt": int(time.time()) + KEEP_SECONDS}
        ),
    }
    if recovering:
        put["ConditionExpression"] = "recorded = :no"
        put["ExpressionAttributeValues"] = {":no": {"BOOL": False}}
    return {"Put": put}


def complete_unrecorded(outcomes: dict[ClaimKey, dict[str, Any]]) -> None:
    """Best effort after a failure between sending and recording: mark the claims completed
    (so nobody is texted again) but unrecorded, with the outcome, for the redelivery to record."""
    items = [
        {
            "PutRequest": {
                "Item": key.item_key()
                | dynamo.to_item(
                    {
                        "status": COMPLETED,
                        "recorded": False,
                        "outcome": outcome,
                        "expiresAt": int(time.time()) + KEEP_SECONDS,
                    }
                )
            }
        }
        for key, outcome in outcomes.items()
    ]
    dynamo.batch_write(items)


def _put(key: ClaimKey, now: int, lease_until: float) -> dict[str, Any]:
    return {
        "Put": {
            "TableName": dynamo.table(),
            "Item": key.item_key()
            | dynamo.to_item({"status": IN_PROGRESS, "leaseUntil": int(lease_until), "expiresAt": now + KEEP_SECONDS}),
            "ConditionExpression": "attribute_not_exists(pk) OR (#status = :busy AND leaseUntil < :now)",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {":busy": {"S": IN_PROGRESS}, ":now": {"N": str(now)}},
        }
    }


def _states(keys: list[ClaimKey]) -> tuple[dict[ClaimKey, str], dict[ClaimKey, dict[str, Any]]]:
    by_item = {(k.item_key()["pk"]["S"], k.item_key()["sk"]["S"]): k for k in keys}
    states = dict.fromkeys(keys, "busy")
    stored: dict[ClaimKey, dict[str, Any]] = {}
    for item in dynamo.batch_get([k.item_key() for k in keys], consistent=True):
        key = by_item[(item["pk"]["S"], item["sk"]["S"])]
        if item.get("status", {}).get("S") != COMPLETED:
            continue
        if item.get("recorded", {}).get("BOOL") is False:
            states[key] = "unrecorded"
            stored[key] = dynamo.from_item({"outcome": item["outcome"]})["outcome"]
        else:
            states[key] = "done"
    return states, stored
