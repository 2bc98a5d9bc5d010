"""Messaging statistics: one counters item per connector, updated with atomic ADDs only.

Counters are written once per connector per batch (a transaction item built here), and read
with one GetItem whatever the history. Each month has its own attribute (`sent_2026_11`), so
"sent this month" rolls over at the UTC month boundary with no scheduled job.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from . import clock, connector_store, dynamo
from .outcomes import Outcome

STATS = "STATS"


def month_attribute(iso_time: str) -> str:
    return f"sent_{iso_time[:4]}_{iso_time[5:7]}"


def _key(connector_id: str) -> dict[str, Any]:
    return {"pk": {"S": connector_store.pk(connector_id)}, "sk": {"S": STATS}}


def counter_updates(outcomes: Iterable[Outcome]) -> list[dict[str, Any]]:
    """One `Update` transaction item per connector, adding up this batch's outcomes."""
    by_connector: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        by_connector[outcome.connector_id].append(outcome)
    return [_update(cid, group) for cid, group in by_connector.items()]


def _update(connector_id: str, outcomes: list[Outcome]) -> dict[str, Any]:
    sent = [o for o in outcomes if o.sent]
    failed = [o for o in outcomes if not o.sent]
    adds = []
    sets = []
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    if sent:
        latest = max(o.at for o in sent)
        adds += ["totalSent :sent", "#month :sent"]
        names["#month"] = month_attribute(latest)
        values[":sent"] = {"N": str(len(sent))}
        sets.append("lastSentAt = :lastSent")
        values[":lastSent"] = {"S": latest}
    if failed:
        adds.append("totalFails :failed")
        values[":failed"] = {"N": str(len(failed))}
        sets.append("lastFailedAt = :lastFailed")
        values[":lastFailed"] = {"S": max(o.at for o in failed)}
    notable = [o for o in outcomes if o.notice]
    if notable:  # the latest error, or warning (a send that needed retries)
        last = max(notable, key=lambda o: o.at)
        sets.append("lastError = :lastError")
        values[":lastError"] = {"M": {"message": {"S": last.notice or ""}, "at": {"S": last.at}}}
    expression = "ADD " + ", ".join(adds)
    if sets:
        expression += " SET " + ", ".join(sets)
    update: dict[str, Any] = {
        "TableName": dynamo.table(),
        "Key": _key(connector_id),
        "UpdateExpression": expression,
        "ExpressionAttributeValues": values,
    }
    if names:
        update["ExpressionAttributeNames"] = names
    return {"Update": update}


def read(connector_id: str) -> dict[str, Any]:
    """The statistics panel of a connector: one GetItem."""
    item = dynamo.client().get_item(TableName=dynamo.table(), Key=_key(connector_id)).get("Item")
    values = dynamo.from_item(item) if item else {}
    sent = int(values.get("totalSent", 0))
    fails = int(values.get("totalFails", 0))
    attempts = sent + fails
    return {
        "totalSent": sent,
        "totalFails": fails,
        "sentThisMonth": int(values.get(month_attribute(clock.iso(clock.now())), 0)),
        "attempts": attempts,
        "successRate": round(100 * sent / attempts, 2) if attempts else None,
        "lastSentAt": values.get("lastSentAt"),
        "lastFailedAt": values.get("lastFailedAt"),
        "lastError": values.get("lastError"),
        "fallbackEmailsSent": int(values.get("fallbackSent", 0)),
        "fallbackEmailsFailed": int(values.get("fallbackFailed", 0)),
    }
