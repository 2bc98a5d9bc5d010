"""SQS batches answered in part: the records that failed go back to their queue (and after
maxReceiveCount to its DLQ), the others are deleted (the event source mapping's
`ReportBatchItemFailures`).

Powertools' batch utility did this for the two queue consumers until its import (the batch
processors of every event source, asyncio, every event data class) proved to be most of what
the sender's cold start had above its floor (`make bench`); what they need of it is this."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, TypedDict


class ItemFailure(TypedDict):
    itemIdentifier: str


class PartialBatchResponse(TypedDict):
    batchItemFailures: list[ItemFailure]


def records(event: dict[str, Any]) -> list[dict[str, Any]]:
    return list(event.get("Records") or [])


def partial_response(event: dict[str, Any], failed: Collection[str]) -> PartialBatchResponse:
    """The answer that sends back the records whose message ids are in `failed`, each once, in
    the order they came."""
    ids = dict.fromkeys(r["messageId"] for r in records(event) if r["messageId"] in failed)
    return {"batchItemFailures": [{"itemIdentifier": i} for i in ids]}


def each_record(event: dict[str, Any], handle: Callable[[dict[str, Any]], Any]) -> PartialBatchResponse:
    """`handle` each record on its own: one that raises goes back to the queue alone."""
    failed = set()
    for record in records(event):
        try:
            handle(record)
        except Exception:  # its own fault only: the exception says why to whoever raised it
            failed.add(record["messageId"])
    return partial_response(event, failed)
