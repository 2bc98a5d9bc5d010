"""Messaging statistics: counters per connector, changed by atomic ADDs only, read in one call.

Two items under the connector's partition:
- `STATS`: the totals and the latest timestamps and error; bounded whatever the history.
- `MONTH#{yyyy-mm}`: this month's sent, failed, segments, cost per currency and per-day sent
  and failed (the panel's chart). A new month is a new item, so "this month" rolls over at the
  UTC month boundary with no scheduled job; month items expire after a year and a bit.

Every change comes as a `Delta` from the SMS record's transitions (`sending.record`) and is
written in the same DynamoDB transaction as the transition itself, next to a condition that
the connector still exists and is not being deleted: a counter is added once per SMS event,
and a deleted connector's counters are never recreated.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from . import clock, connector_store, dynamo, ids, masking
from .errors import NotFound

STATS = "STATS"
MONTH_KEEP_SECONDS = 400 * 24 * 3600
_CURRENCY = re.compile(r"[A-Z]{3}")
UNKNOWN_CURRENCY = "account"  # 46elks names no currency on its answers (providers.md 1.4)

# Delta field -> STATS attribute
TOTALS = {
    "sent": "totalSent",
    "fails": "totalFails",
    "unknown": "totalUnknown",
    "delivered": "totalDelivered",
    "undelivered": "totalUndelivered",
    "pending": "pendingReceipts",
    "no_receipt": "totalNoReceipt",
    "suppressed": "totalSuppressed",
    "fallback_sent": "fallbackSent",
    "fallback_failed": "fallbackFailed",
}


@dataclass
class Delta:
    """What one event (or a batch of them) changes on one connector's counters."""

    at: str  # ISO 8601 UTC of the event: picks the month and the day
    sent: int = 0
    fails: int = 0
    unknown: int = 0
    delivered: int = 0
    undelivered: int = 0
    pending: int = 0
    no_receipt: int = 0
    suppressed: int = 0
    fallback_sent: int = 0
    fallback_failed: int = 0
    segments: int = 0
    cost: dict[str, Decimal] = field(default_factory=dict)  # currency -> amount
    last_sent_at: str | None = None
    last_failed_at: str | None = None
    last_delivered_at: str | None = None
    last_error: str | None = None  # a message (masked when written); `at` is its time

    def add_cost(self, amount: str | None, currency: str | None) -> None:
        if amount is None:
            return
        try:
            value = Decimal(amount)
        except ArithmeticError:
            return
        name = currency if currency and _CURRENCY.fullmatch(currency) else UNKNOWN_CURRENCY
        self.cost[name] = self.cost.get(name, Decimal(0)) + value


def _key(connector_id: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": connector_store.pk(connector_id)}, "sk": {"S": sk}}


def month_of(iso_time: str) -> str:
    return iso_time[:7]


def updates(connector_id: str, deltas: Iterable[Delta]) -> list[dict[str, Any]]:
    """Transaction items adding `deltas` to a connector: a check that it still exists, one
    update of its totals and one per month touched (usually one)."""
    deltas = list(deltas)
    if not deltas:
        return []
    items: list[dict[str, Any]] = [
        {
            "ConditionCheck": {
                "TableName": dynamo.table(),
                "Key": _key(connector_id, connector_store.CONFIG),
                "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(deleting)",
            }
        }
    ]
    totals = _Expression()
    for name, attribute in TOTALS.items():
        totals.add(attribute, sum(getattr(d, name) for d in deltas))
    for name in ("last_sent_at", "last_failed_at", "last_delivered_at"):
        latest = max((getattr(d, name) for d in deltas if getattr(d, name)), default=None)
        if latest:
            totals.set(name_of(name), latest)
    errors = [d for d in deltas if d.last_error]
    if errors:
        last = max(errors, key=lambda d: d.at)
        # masked here, whoever wrote it: a provider's text may carry a phone number
        totals.set("lastError", {"message": masking.text(last.last_error or ""), "at": last.at})
    if not totals.empty:
        items.append(totals.update(_key(connector_id, STATS)))
    by_month: dict[str, list[Delta]] = defaultdict(list)
    for d in deltas:
        by_month[month_of(d.at)].append(d)
    for month, group in sorted(by_month.items()):
        figures = _Expression()
        figures.add("sent", sum(d.sent for d in group))
        figures.add("failed", sum(d.fails for d in group))
        figures.add("segments", sum(d.segments for d in group))
        for d in group:
            day = d.at[8:10]
            figures.add(f"d{day}_sent", d.sent)
            figures.add(f"d{day}_failed", d.fails)
            for currency, amount in d.cost.items():
                figures.add(f"cost_{currency}", amount)
        if figures.empty:
            continue
        figures.set("expiresAt", int(clock.now().timestamp()) + MONTH_KEEP_SECONDS)
        items.append(figures.update(_key(connector_id, f"MONTH#{month}")))
    return items


def name_of(delta_field: str) -> str:
    """`last_sent_at` -> `lastSentAt`."""
    head, *rest = delta_field.split("_")
    return head + "".join(p.capitalize() for p in rest)


class _Expression:
    """The ADDs and SETs of one counters item, gathered before they are written."""

    def __init__(self) -> None:
        self.adds: dict[str, Decimal | int] = {}
        self.sets: dict[str, Any] = {}

    def add(self, attribute: str, amount: Decimal | int) -> None:
        if amount:
            self.adds[attribute] = self.adds.get(attribute, 0) + amount

    def set(self, attribute: str, value: Any) -> None:
        self.sets[attribute] = value

    @property
    def empty(self) -> bool:
        return not self.adds and not self.sets

    def update(self, key: dict[str, Any]) -> dict[str, Any]:
        return dynamo.update(key, sets=self.sets, adds=self.adds)


# --- reading ---------------------------------------------------------------------------------


def keys(connector_id: str) -> list[dict[str, Any]]:
    """The items the panel reads besides the connector: totals and this month."""
    return [_key(connector_id, STATS), _key(connector_id, f"MONTH#{month_of(clock.iso(clock.now()))}")]


def panel(totals_item: dict[str, Any] | None, month_item: dict[str, Any] | None) -> dict[str, Any]:
    """The statistics panel from the two items (either may not exist yet)."""
    totals = dynamo.from_item(totals_item) if totals_item else {}
    month = dynamo.from_item(month_item) if month_item else {}
    number = {name: int(totals.get(attribute, 0)) for name, attribute in TOTALS.items()}
    sent, fails = number["sent"], number["fails"]
    attempts = sent + fails
    judged = number["delivered"] + number["undelivered"]
    now = clock.iso(clock.now())
    legacy = int(totals.get(f"sent_{now[:4]}_{now[5:7]}", 0))  # the first wave kept the month on STATS
    costs = sorted((k.removeprefix("cost_"), v) for k, v in month.items() if k.startswith("cost_"))
    days = int(now[8:10])
    return {
        "totalSent": sent,
        "totalFails": fails,
        "sentThisMonth": int(month.get("sent", 0)) + legacy,
        "attempts": attempts,
        "successRate": round(100 * sent / attempts, 2) if attempts else None,
        "lastSentAt": totals.get("lastSentAt"),
        "lastFailedAt": totals.get("lastFailedAt"),
        "lastError": totals.get("lastError"),
        "fallbackEmailsSent": number["fallback_sent"],
        "fallbackEmailsFailed": number["fallback_failed"],
        "totalUnknown": number["unknown"],
        "totalDelivered": number["delivered"],
        "totalUndelivered": number["undelivered"],
        "pendingReceipts": max(0, number["pending"]),
        "totalNoReceipt": number["no_receipt"],
        "deliveryRate": round(100 * number["delivered"] / judged, 2) if judged else None,
        "lastDeliveredAt": totals.get("lastDeliveredAt"),
        "totalSuppressed": number["suppressed"],
        "segmentsThisMonth": int(month.get("segments", 0)),
        "costThisMonth": [
            {"amount": str(amount), "currency": None if currency == UNKNOWN_CURRENCY else currency}
            for currency, amount in costs
        ],
        "daily": [
            {
                "date": f"{now[:8]}{day:02d}",
                "sent": int(month.get(f"d{day:02d}_sent", 0)),
                "failed": int(month.get(f"d{day:02d}_failed", 0)),
            }
            for day in range(1, days + 1)
        ],
    }


def panel_of(tenant_id: str, connector_id: str) -> dict[str, Any]:
    """The statistics panel of a tenant's connector: the connector (for the tenant check), its
    totals and this month's figures in one BatchGetItem, whatever the history."""
    if not ids.is_connector_id(connector_id):
        raise NotFound()
    found, totals, month = _read(connector_id, connector_store.key(connector_id))
    config = found.get(connector_store.CONFIG)
    if config is None or config.get("tenantId", {}).get("S") != tenant_id:
        raise NotFound()
    return panel(totals, month)


def read(connector_id: str) -> dict[str, Any]:
    """The statistics panel of a connector, in one call (tests and tools; the route reads the
    connector in the same call)."""
    _, totals, month = _read(connector_id)
    return panel(totals, month)


def _read(
    connector_id: str, *also: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any] | None]:
    """Every item read (by sort key), the totals item and this month's, in one consistent
    BatchGetItem with the items `also`."""
    totals, month = keys(connector_id)
    found = {i["sk"]["S"]: i for i in dynamo.batch_get([*also, totals, month], consistent=True)}
    return found, found.get(STATS), found.get(month["sk"]["S"])
