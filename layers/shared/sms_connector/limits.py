"""Limits and guardrails: what keeps the service from being a free SMS gateway or a flood.

The test route's allowance: at most TEST_SENDS_PER_HOUR test SMS per connector and clock hour
(each recipient of a test send counts: a test to 100 recipients is 100 SMS), counted with one
conditional atomic ADD, so parallel calls cannot pass it. Over it: 429 with Retry-After.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aws_lambda_powertools import Logger

from . import clock, connector_store, dynamo
from .config import settings
from .errors import TooManyRequests
from .segments import count

logger = Logger()


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


# --- alert storms ---------------------------------------------------------------------------
#
# A connector's `limits` are checked for the SMS of a batch after they are claimed (so a
# redelivery is not counted twice) and before any is sent, with ONE transaction of atomic,
# conditional counter updates (none when the batch has no connector with limits):
# - duplicateWindowMinutes: one marker per (connector, recipient, text), kept for the window;
# - maxPerRecipientPerHour: one counter per (connector, recipient, clock hour);
# - monthlySegmentBudget: one counter of segments per (connector, month); its condition first
#   holds the batch at 80 % of the budget, so crossing it is noticed and said once.
# When a condition fails (a limit is reached, the storm case), the counters are read and the
# batch is admitted as far as each allows, again with conditions, so concurrent batches never
# pass a limit together. Held-back SMS are SUPPRESSED (counted, and said once per burst in the
# log); those held by the hourly cap are summed up in one SMS when the hour is over (the
# scheduled sweep); an opted-out recipient, and one over the budget, get the backup email.

HOUR_KEEP_SECONDS = 3 * 3600
WARN_AT = 0.8  # of the monthly segment budget
SHARDS = 8  # the summary index is spread over this many partition keys (gsi2)


@dataclass
class Burst:
    """Something the connector's owner is told once (per hour), not once per SMS."""

    connector: dict[str, Any]
    reason: str  # "opted_out", "duplicate", "hourly", "budget" or "budget_warning"
    message: str


@dataclass
class _Counter:
    """One counter item of a batch: which SMS it admits, how many units each costs."""

    key: dict[str, Any]
    kind: str  # "hourly", "budget" or "duplicate"
    connector: dict[str, Any]
    smses: list[Any]
    units: list[int]
    limit: int = 0
    to: str = ""
    text_marker_until: int = 0
    notes: list[Burst] = field(default_factory=list)


def admit(smses: list[Any]) -> list[Burst]:
    """Decide which claimed SMS of a batch the connectors' limits and opt-outs hold back; sets
    `sms.suppressed` (the reason) on those. Answers what to tell the owners."""
    for s in smses:
        if _opted_out(s):
            s.suppressed = "opted_out"
    # an SMS an earlier holder admitted is not weighed again (`Sms.limits_taken`)
    counters = _counters([s for s in smses if not s.suppressed and s.kind == "rule" and not s.limits_taken])
    notes = _apply(counters) if counters else []
    held: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for s in smses:
        if s.suppressed:
            held[(s.connector["id"], s.suppressed)].append(s)
    for (_, reason), group in held.items():
        notes.append(Burst(group[0].connector, reason, _words(reason, len(group), group[0].connector)))
    return notes


def _words(reason: str, n: int, connector: dict[str, Any]) -> str:
    limits = connector.get("limits") or {}
    return {
        "opted_out": f"{n} SMS not sent: the recipient opted out (replied STOP); backup emails go instead",
        "duplicate": f"{n} SMS not sent: the same text to the same recipient within "
        f"{limits.get('duplicateWindowMinutes')} minutes",
        "hourly": f"{n} SMS held back: over {limits.get('maxPerRecipientPerHour')} per recipient per hour; "
        "a summary SMS follows when the hour is over",
        "budget": f"{n} SMS not sent: this month's budget of {limits.get('monthlySegmentBudget')} segments "
        "is used up; backup emails go instead",
    }[reason]


def _opted_out(s: Any) -> bool:
    return any(r["to"] == s.to and r.get("optedOut") for r in s.connector.get("recipients", []))


def _counters(smses: list[Any]) -> list[_Counter]:
    now = clock.now()
    hour = clock.iso(now.replace(minute=0, second=0, microsecond=0))[:13]
    month = clock.iso(now)[:7]
    counters: dict[str, _Counter] = {}
    seen: set[str] = set()
    for s in smses:
        limits = s.connector.get("limits") or {}
        cid = s.connector["id"]
        window = limits.get("duplicateWindowMinutes")
        if window:
            marker = _hash(cid, s.to, s.text)
            if marker in seen:  # the same text to the same person twice in this batch
                s.suppressed = "duplicate"
                continue
            seen.add(marker)
            counters[f"dup {marker}"] = _Counter(
                {"pk": {"S": f"LIMIT#{cid}"}, "sk": {"S": f"DUP#{marker}"}},
                "duplicate",
                s.connector,
                [s],
                [1],
                text_marker_until=int(now.timestamp()) + int(window) * 60,
            )
        if limits.get("maxPerRecipientPerHour"):
            name = f"hourly {cid} {s.to}"
            counter = counters.setdefault(
                name,
                _Counter(
                    {"pk": {"S": f"LIMIT#{cid}"}, "sk": {"S": f"HOUR#{hour}#{_hash(s.to)}"}},
                    "hourly",
                    s.connector,
                    [],
                    [],
                    int(limits["maxPerRecipientPerHour"]),
                    s.to,
                ),
            )
            counter.smses.append(s)
            counter.units.append(1)
        if limits.get("monthlySegmentBudget"):
            counter = counters.setdefault(
                f"budget {cid}",
                _Counter(
                    {"pk": {"S": f"LIMIT#{cid}"}, "sk": {"S": f"BUDGET#{month}"}},
                    "budget",
                    s.connector,
                    [],
                    [],
                    int(limits["monthlySegmentBudget"]),
                ),
            )
            counter.smses.append(s)
            counter.units.append(count(s.text, s.provider).parts)
    return list(counters.values())


def _hash(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:24]


def _apply(counters: list[_Counter]) -> list[Burst]:
    """Write the counters (one transaction); on a reached limit, read and admit what fits
    (setting `suppressed` on the SMS held back). Answers the budget warnings."""
    current: dict[str, dict[str, Any]] = {}  # counter sk -> its item, once read
    for _attempt in range(4):
        for c in counters:  # each attempt decides afresh, from what was read last
            for s in c.smses:
                if s.suppressed in ("hourly", "budget"):
                    s.suppressed = None
        counters = [c for c in counters if any(not s.suppressed for s in c.smses)]
        items = [_item(c, current.get(c.key["sk"]["S"])) for c in counters]
        if not items:
            return []
        try:
            dynamo.client().transact_write_items(TransactItems=items)
            return [note for c in counters for note in c.notes]
        except dynamo.client().exceptions.TransactionCanceledException as exc:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            failed = [c for c, code in zip(counters, reasons, strict=False) if code == "ConditionalCheckFailed"]
            if not failed and not set(reasons) & {"TransactionConflict"}:
                raise
            for c in failed:
                c.notes.clear()  # they were for a write that did not happen
                if c.kind == "duplicate":
                    c.smses[0].suppressed = "duplicate"
            read = [c.key for c in failed if c.kind != "duplicate"]
            if read:
                current |= {i["sk"]["S"]: dynamo.from_item(i) for i in dynamo.batch_get(read, consistent=True)}
    raise RuntimeError("the limits kept conflicting with other batches")


def _item(c: _Counter, now_value: dict[str, Any] | None) -> dict[str, Any]:
    """The counter's conditional update: first optimistic (the whole batch fits, or for the
    budget stays under 80 %); once read, exactly what still fits."""
    table = dynamo.table()
    if c.kind == "duplicate":
        return {
            "Put": {
                "TableName": table,
                "Item": c.key | dynamo.to_item({"until": c.text_marker_until, "expiresAt": c.text_marker_until}),
                "ConditionExpression": "attribute_not_exists(pk) OR #until < :now",
                "ExpressionAttributeNames": {"#until": "until"},
                "ExpressionAttributeValues": {":now": {"N": str(int(clock.now().timestamp()))}},
            }
        }
    live = [(s, u) for s, u in zip(c.smses, c.units, strict=True) if not s.suppressed]
    wanted = sum(u for _, u in live)
    warn_line = math.ceil(c.limit * WARN_AT)
    # optimistic: the whole batch fits (for the budget: stays below the warning line), unless
    # it cannot even when nothing was used yet
    room = (c.limit if c.kind == "hourly" else warn_line - 1) - wanted
    optimistic = now_value is None and room >= 0
    used = int((now_value or {}).get("n", 0))
    newly_held: list[Any] = []
    if optimistic:
        admitted = wanted
    else:
        free = max(0, c.limit - used)
        admitted = 0
        for s, units in live:
            if admitted + units <= free:
                admitted += units
            else:
                s.suppressed = "hourly" if c.kind == "hourly" else "budget"
                newly_held.append(s)
        room = used  # exactly what was read: a concurrent change makes this fail and read again
    values: dict[str, Any] = {":n": {"N": str(admitted)}, ":room": {"N": str(room)}}
    expression = "ADD n :n"
    if c.kind == "hourly" and newly_held:
        # held back: counted for the summary SMS, found by the sweep after the hour (gsi2)
        hour_end = clock.iso(clock.parse(c.key["sk"]["S"].split("#")[1] + ":00:00Z") + timedelta(hours=1))
        shard = int(_hash(c.key["sk"]["S"])[:4], 16) % SHARDS
        expression += ", held :held SET connectorId = :c, #to = :to, gsi2pk = :gpk, gsi2sk = :gsk, expiresAt = :exp"
        values |= {
            ":held": {"N": str(len(newly_held))},
            ":c": {"S": c.connector["id"]},
            ":to": {"S": c.to},
            ":gpk": {"S": f"HELD#{shard}"},
            ":gsk": {"S": f"{hour_end}#{c.key['sk']['S']}"},
            ":exp": {"N": str(int(clock.now().timestamp()) + HOUR_KEEP_SECONDS)},
        }
    elif c.kind == "hourly":
        expression += " SET expiresAt = :exp"
        values[":exp"] = {"N": str(int(clock.now().timestamp()) + HOUR_KEEP_SECONDS)}
    if c.kind == "budget":
        expression += " SET expiresAt = :exp"
        values[":exp"] = {"N": str(int(clock.now().timestamp()) + 40 * 24 * 3600)}
        if not optimistic and used < warn_line <= used + admitted:
            share = round(100 * (used + admitted) / c.limit)
            c.notes.append(
                Burst(c.connector, "budget_warning", f"{share} % of this month's {c.limit} SMS segments are used")
            )
    if optimistic:
        condition = "attribute_not_exists(n) OR n <= :room"
    elif used:
        condition = "n = :room"
    else:
        condition = "attribute_not_exists(n) OR n = :zero"
        values.pop(":room")
        values[":zero"] = {"N": "0"}
    names = {"#to": "to"} if ":to" in values else None
    update: dict[str, Any] = {
        "TableName": dynamo.table(),
        "Key": c.key,
        "UpdateExpression": expression,
        "ConditionExpression": condition,
        "ExpressionAttributeValues": values,
    }
    if names:
        update["ExpressionAttributeNames"] = names
    return {"Update": update}


def burst_write(note: Burst) -> Any:
    """The log warning for `note`, guarded by a marker so it is said once per connector,
    reason and hour, however many batches the burst spans."""
    from .sending import record

    at = clock.iso(clock.now())
    hour = at[:13]
    cid = note.connector["id"]
    marker = {
        "Put": {
            "TableName": dynamo.table(),
            "Item": {"pk": {"S": f"LIMIT#{cid}"}, "sk": {"S": f"BURST#{note.reason}#{hour}"}}
            | dynamo.to_item({"expiresAt": int(clock.now().timestamp()) + HOUR_KEEP_SECONDS}),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
    }
    log = record.log_item(
        cid,
        at,
        "warning",
        note.message,
        provider=note.connector.get("provider"),
        recipient=None,
        code=f"limit_{note.reason}",
        action_id=None,
    )
    return record.Write(
        f"burst {cid} {note.reason} {hour}", cid, marker, [log], [record.Delta(at=at, last_error=note.message)]
    )


def mark_opted_out(connector_id: str, to: str) -> None:
    """The provider said this person replied STOP: later sends skip them (and email instead)
    until a PUT says `"optedOut": false`."""
    connector = connector_store.get(connector_id)
    if connector is None:
        return
    for i, r in enumerate(connector.get("recipients", [])):
        if r["to"] != to or r.get("optedOut"):
            continue
        try:
            dynamo.client().update_item(
                TableName=dynamo.table(),
                Key=connector_store.key(connector_id),
                # the time of the mark makes a PUT that read the connector before it write again
                UpdateExpression=f"SET recipients[{i}].optedOut = :yes, #marks = :at",
                ConditionExpression=f"recipients[{i}].#to = :to",
                ExpressionAttributeNames={"#to": "to", "#marks": connector_store.OPT_OUTS_AT},
                ExpressionAttributeValues={
                    ":yes": {"BOOL": True},
                    ":to": {"S": to},
                    ":at": {"S": clock.iso(clock.now()) + os.urandom(4).hex()},
                },
            )
        except dynamo.client().exceptions.ConditionalCheckFailedException:
            pass  # the recipients changed meanwhile: the next refusal marks it


def summaries(seconds: float = 50.0) -> int:
    """After each clock hour: one SMS per recipient who had SMS held back by the hourly cap,
    saying how many. Each summary is an SMS of its own (claimed, sent and counted like any),
    so a sweep that runs twice sends it once. Answers how many were sent."""
    import time

    from . import credentials
    from .sending.batch import send_summary

    until = time.monotonic() + seconds
    now = clock.iso(clock.now())
    sent = 0
    for shard in range(SHARDS):
        answer = dynamo.client().query(
            TableName=dynamo.table(),
            IndexName="gsi2",
            KeyConditionExpression="gsi2pk = :shard AND gsi2sk < :now",
            ExpressionAttributeValues={":shard": {"S": f"HELD#{shard}"}, ":now": {"S": now}},
        )
        for item in (dynamo.from_item(i) for i in answer.get("Items", [])):
            if time.monotonic() > until:
                return sent
            connector = connector_store.get(str(item["connectorId"]))
            hour = str(item["sk"]).split("#")[1]
            if connector and not connector.get("deleting") and int(item.get("held", 0)):
                text = (
                    f"{int(item['held'])} more alerts from {connector['name']} were held back "
                    f"between {hour[11:13]}:00 and {hour[11:13]}:59 UTC "
                    f"(at most {(connector.get('limits') or {}).get('maxPerRecipientPerHour')} an hour)."
                )
                try:
                    secret = credentials.read(connector["secretArn"], connector["secretVersion"])
                    status = send_summary(connector, secret, str(item["to"]), text, f"summary-{hour}", until)
                except Exception as exc:  # this one waits for the next sweep; the others go on
                    logger.warning(
                        "summary not sent", extra={"connector_id": connector["id"], "error_type": type(exc).__name__}
                    )
                    continue
                if status == "pending":
                    continue  # another sweep has it, no time was left, or it is not recorded yet
                sent += status == "sent"
            dynamo.update_if(  # False: another sweep took it out first
                {"pk": {"S": str(item["pk"])}, "sk": {"S": str(item["sk"])}},
                sets={"summarizedAt": now},
                removes=("gsi2pk", "gsi2sk"),
                condition="attribute_exists(gsi2pk)",
            )
    return sent
