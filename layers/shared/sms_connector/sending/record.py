"""The life of one SMS: its record, its states, and the side effects each state change owes.

One item per SMS (one connector, one rule action or test send, one recipient), keyed by a
stable id (`sms_id`): the same on every retry and redelivery, so it is also Telnyx's
Idempotency-Key and the `sms` parameter of the receipt URL.

    (none) --claim--> CLAIMED --outcome--> SENT | FAILED | UNKNOWN
                         |                  SENT --receipt--> DELIVERED | UNDELIVERED | NO_RECEIPT
                         |                  SENT --deadline--> NO_RECEIPT
                         |                  UNKNOWN --receipt--> DELIVERED | UNDELIVERED
                         +--recording failed--> UNRECORDED --outcome--> (as above)
                         +--no time to try--> CLAIMED, released (the next delivery takes it fresh)
                         +--claimed on a guess the read did not confirm--> (none), before any send

Why nobody is texted twice and nothing is counted twice:
- A claim is a conditional write: one invocation at a time holds an SMS (with a lease).
- Every side effect on the counters and the error log is written in the SAME DynamoDB
  transaction as the state change that owes it, conditioned on the state it leaves. A
  redelivery finds the state already changed and does nothing again.
- A claim whose holder died (lease over) may have reached the provider: the next holder sends
  again only if that cannot text twice (Telnyx with the same Idempotency-Key, within the 24 h
  Telnyx replays) or after the provider's look-up says the message does not exist.
- A backup email is owed by the states FAILED, UNKNOWN and UNDELIVERED (rule actions with a
  backup email): the message for the fallback queue is sent before the state change is
  committed, and the email itself is guarded here too (`email*` attributes): the fallback
  function claims it, and counts it in the same transaction that marks it sent. An email
  owed but not queued (the queue failed, or a receipt came before the outcome was recorded)
  is "due" and sits in the sparse index `gsi2` under EMAIL_DUE: the 5-minute sweep queues it.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import Any

from aws_lambda_powertools import Logger

from .. import clock, dynamo, error_log, masking
from ..stats import Delta, updates
from .outcome import FAILED, SENT, UNKNOWN, Outcome
from .outcome import SUPPRESSED as SUPPRESSED_OUTCOME

logger = Logger()

CLAIMED = "CLAIMED"
UNRECORDED = "UNRECORDED"
STATE_SENT = "SENT"
STATE_FAILED = "FAILED"
STATE_UNKNOWN = "UNKNOWN"
DELIVERED = "DELIVERED"
UNDELIVERED = "UNDELIVERED"
NO_RECEIPT = "NO_RECEIPT"
SUPPRESSED = "SUPPRESSED"
OUTCOME_STATES = {SENT: STATE_SENT, FAILED: STATE_FAILED, UNKNOWN: STATE_UNKNOWN, SUPPRESSED_OUTCOME: SUPPRESSED}
# Suppressions that still owe the person their backup email (the SMS will not come later).
EMAILED_SUPPRESSIONS = {"opted_out", "budget"}
FINAL = {STATE_SENT, STATE_FAILED, STATE_UNKNOWN, DELIVERED, UNDELIVERED, NO_RECEIPT, SUPPRESSED}

KEEP_SECONDS = 14 * 24 * 3600  # longer than SQS keeps a message (at most 14 days)
AWAIT_SHARDS = 8  # the receipt deadline index is spread over this many partition keys
EMAIL_DUE = "EMAIL_DUE"  # gsi2 partition of the backup emails owed but not queued (rare: one key)
_TRANSACTION_ITEMS = 100
_CLAIM_ATTRIBUTES = ("owner", "leaseUntil", "mayBeSent", "released", "outcome")


def sms_id(connector_id: str, action_id: str, to: str) -> str:
    """The SMS's stable id: 32 hex characters, the same for every delivery of the action."""
    return hashlib.sha256(f"{connector_id}\x00{action_id}\x00{to}".encode()).hexdigest()[:32]


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def key(sms: str) -> dict[str, Any]:
    return {"pk": {"S": f"SMS#{sms}"}, "sk": {"S": "SMS"}}


@dataclass
class Sms:
    """One SMS of a batch: what to send, and what its record said when it was claimed."""

    connector: dict[str, Any]
    action_id: str
    to: str
    text: str
    backup_email: str | None = None
    kind: str = "rule"  # "rule" (the send queue), "test" (the test route) or "summary" (what the hourly limit held)
    records: list[str] = field(default_factory=list)  # the SQS messages that carry it
    claim: str | None = None  # "claimed", "busy", "done" or "unrecorded"
    may_be_sent: bool = False  # an earlier holder may have reached the provider
    # the connector's limits have counted it already (an earlier holder admitted it): it is not
    # weighed against them again, or it would be held back by its own earlier count
    limits_taken: bool = False
    claimed_at: float = 0.0  # when it was first claimed (epoch seconds)
    stored: dict[str, Any] = field(default_factory=dict)  # the record as read, when it existed
    outcome: Outcome | None = None
    email_queued: bool = False
    suppressed: str | None = None  # why the connector's limits or an opt-out hold it back

    @cached_property  # a hash, asked for many times per batch
    def id(self) -> str:
        return sms_id(self.connector["id"], self.action_id, self.to)

    @property
    def provider(self) -> str:
        return str(self.connector["provider"])

    @property
    def owes_email(self) -> bool:
        return self.kind == "rule" and bool(self.backup_email)


# --- claiming --------------------------------------------------------------------------------


def claim(smses: list[Sms], owner: str, lease_until: float) -> None:
    """Claim every SMS for `owner` until `lease_until`; sets each one's `claim`:
    "claimed" (ours to send), "busy" (another invocation holds it), "done" (already has an
    outcome: `stored` holds the record) or "unrecorded" (sent, not yet counted: `stored`)."""
    now = time.time()
    for start in range(0, len(smses), _TRANSACTION_ITEMS):
        pending = smses[start : start + _TRANSACTION_ITEMS]
        conflicts = 0
        while pending:
            try:
                dynamo.client().transact_write_items(
                    TransactItems=[_fresh(s, owner, lease_until, now) for s in pending]
                )
            except dynamo.client().exceptions.TransactionCanceledException as exc:
                reasons = exc.response.get("CancellationReasons", [])
                taken = [s for s, r in zip(pending, reasons, strict=False) if r.get("Code") == "ConditionalCheckFailed"]
                if not taken:  # a conflict with a concurrent transaction: try again shortly
                    conflicts += 1
                    if conflicts > 5:
                        raise
                    time.sleep(0.05 * conflicts)
                    continue
                _existing(taken, owner, lease_until, now)
                pending = [s for s in pending if s.claim is None]
                continue
            for s in pending:
                s.claim, s.claimed_at = "claimed", now
            break


def _fresh(s: Sms, owner: str, lease_until: float, now: float) -> dict[str, Any]:
    values = {
        "state": CLAIMED,
        "owner": owner,
        "leaseUntil": int(lease_until),
        "claimedAt": int(now),
        "connectorId": s.connector["id"],
        "tenantId": s.connector["tenantId"],
        "provider": s.provider,
        "actionId": s.action_id,
        "kind": s.kind,
        "textHash": text_hash(s.text),
        "expiresAt": int(now) + KEEP_SECONDS,
    }
    return {
        "Put": {
            "TableName": dynamo.table(),
            "Item": key(s.id) | dynamo.to_item(values),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
    }


def _existing(smses: list[Sms], owner: str, lease_until: float, now: float) -> None:
    found = {i["pk"]["S"]: dynamo.from_item(i) for i in dynamo.batch_get([key(s.id) for s in smses], consistent=True)}
    for s in smses:
        stored = found.get(f"SMS#{s.id}")
        if stored is None:  # gone between the write and the read (expired): claim it afresh
            continue
        s.stored = stored
        state = stored.get("state")
        if state == UNRECORDED:
            s.claim = "unrecorded"
        elif state in FINAL:
            s.claim = "done"
        elif state == CLAIMED and stored.get("owner") == owner and int(stored.get("leaseUntil", 0)) >= now:
            # our own claim, still held (its answer was lost and botocore sent the transaction
            # again): ours, saying whether it may have been sent if we had taken it over
            s.claim, s.claimed_at = "claimed", float(stored.get("claimedAt", now))
            s.may_be_sent = bool(stored.get("mayBeSent"))
            s.limits_taken = bool(stored.get("limitsTaken"))
            if "mayBeSent" not in stored:
                s.stored = {}  # a claim we created: undoing it deletes it
        elif int(stored.get("leaseUntil", 0)) >= now:
            s.claim = "busy"
        else:
            _reclaim(s, stored, owner, lease_until)


def _reclaim(s: Sms, stored: dict[str, Any], owner: str, lease_until: float) -> None:
    """Take over a claim whose holder's lease ran out: that holder may have reached the
    provider, unless it released the claim saying it had not tried."""
    may_be_sent = bool(stored.get("mayBeSent")) or not stored.get("released")
    if not _update_now(
        s.id,
        sets={"owner": owner, "leaseUntil": int(lease_until), "mayBeSent": may_be_sent},
        removes=("released",),
        condition="#state = :claimed AND #owner = :old AND leaseUntil = :oldLease",
        condition_values={
            ":claimed": CLAIMED,
            ":old": str(stored.get("owner", "")),
            ":oldLease": int(stored.get("leaseUntil", 0)),
        },
    ):
        s.claim = "busy"  # another invocation took it over first
        return
    s.claim, s.may_be_sent = "claimed", may_be_sent
    # A holder that may have sent it had admitted it (or died before it could: then it goes
    # uncounted, rather than held back by a count it may have made)
    s.limits_taken = bool(stored.get("limitsTaken")) or may_be_sent
    s.claimed_at = float(stored.get("claimedAt", time.time()))


def release(smses: Iterable[Sms], owner: str, *, limits_taken: bool = False) -> None:
    """Give back claims that were not attempted (no time left), so the redelivery takes them.
    A claim that may already have reached the provider keeps saying so; `limits_taken`: the
    connector's limits counted these SMS (the next holder does not count them again)."""
    for s in smses:
        _update_now(  # False: no longer ours (its lease ran out and another invocation took it)
            s.id,
            sets={"leaseUntil": 0, "released": not s.may_be_sent} | ({"limitsTaken": True} if limits_taken else {}),
            condition="#state = :claimed AND #owner = :me",
            condition_values={":claimed": CLAIMED, ":me": owner},
        )


def unclaim(smses: Iterable[Sms], owner: str) -> None:
    """Undo `owner`'s claims on `smses` before any was sent (the claim was made on a guess the
    read did not confirm): a claim it created is deleted, as if never made; one it took over
    from an expired holder is released (`release`), still saying whether it may have been sent."""
    for s in smses:
        if s.claim != "claimed":
            continue
        s.claim = None
        if s.stored:
            release([s], owner)
            continue
        try:
            dynamo.client().delete_item(
                TableName=dynamo.table(),
                Key=key(s.id),
                ConditionExpression="#state = :claimed AND #owner = :me",
                ExpressionAttributeNames={"#owner": "owner", "#state": "state"},
                ExpressionAttributeValues={":claimed": {"S": CLAIMED}, ":me": {"S": owner}},
            )
        except dynamo.client().exceptions.ConditionalCheckFailedException:
            pass  # no longer ours


def keep_unrecorded(smses: Iterable[Sms], owner: str) -> None:
    """Best effort after recording failed: keep each outcome on its claim (UNRECORDED), so the
    redelivery records it without sending again. Claims recorded meanwhile are left alone."""
    for s in smses:
        if s.outcome is None:
            continue
        try:
            _update_now(  # False: recorded meanwhile
                s.id,
                sets={"state": UNRECORDED, "outcome": stored_outcome(s.outcome), "emailQueued": s.email_queued},
                condition="#state = :claimed AND #owner = :me",
                condition_values={":claimed": CLAIMED, ":me": owner},
            )
        except Exception as exc:  # the redelivery falls back on the lease and a look-up
            logger.warning("could not keep an unrecorded outcome", extra={"error_type": type(exc).__name__})


def stored_outcome(outcome: Outcome) -> dict[str, Any]:
    """An outcome as a record keeps it (DynamoDB holds no floats: the latency stays out)."""
    values = {k: v for k, v in vars(outcome).items() if k != "latency_ms"}
    return values


# --- state changes and what they owe ----------------------------------------------------------


@dataclass
class Write:
    """One state change of one record, with the side effects it owes, ready to commit. (Also a
    guarded note with no record: `update` is then the marker that guards it, e.g. one warning
    per burst of suppressions, and `sms_id` names the marker.)"""

    sms_id: str
    connector_id: str
    update: dict[str, Any]  # the record's conditional Update (or the guarding marker's Put)
    logs: list[dict[str, Any]] = field(default_factory=list)  # error-log Puts
    deltas: list[Delta] = field(default_factory=list)  # what it adds to the connector's counters
    # Called with the record as it is now when the condition failed; answers a new Write, or
    # None when another invocation has done (or will do) this change.
    retry: Callable[[dict[str, Any]], Write | None] | None = None


_NAMES = {"#state": "state", "#owner": "owner"}  # reserved words in DynamoDB


def _update(sms: str, **parts: Any) -> dict[str, Any]:
    """A transaction item updating the record of `sms` (`dynamo.update`'s arguments)."""
    return dynamo.update(key(sms), condition_names=_NAMES, **parts)


def _update_now(sms: str, **parts: Any) -> bool:
    """The same update, made now; False when the record was not in the state `condition` says."""
    return dynamo.update_if(key(sms), condition_names=_NAMES, **parts)


def log_item(
    connector_id: str,
    at: str,
    level: str,
    message: str,
    *,
    provider: str | None,
    recipient: str | None,
    code: str | None,
    action_id: str | None,
    kind: str = "sms",
) -> dict[str, Any]:
    return {
        "Put": {
            "TableName": dynamo.table(),
            "Item": error_log.entry_item(
                connector_id,
                at=at,
                level=level,
                message=message,
                provider=provider,
                recipient=recipient,
                error_code=code,
                action_id=action_id,
                kind=kind,
            ),
        }
    }


def owes_email(outcome: Outcome) -> bool:
    """Whether this outcome owes the person their backup email (if they have one)."""
    if outcome.status == SUPPRESSED_OUTCOME:
        return outcome.error_code in EMAILED_SUPPRESSIONS
    return outcome.status in (FAILED, UNKNOWN)


def receipt_deadline(sent_at: str, minutes: int) -> str:
    return clock.iso(clock.parse(sent_at) + timedelta(minutes=minutes))


def outcome_write(
    s: Sms, owner: str, *, receipt_asked: bool, deadline_minutes: int, early: dict[str, Any] | None = None
) -> Write:
    """The write that records `s.outcome` (SENT, FAILED or UNKNOWN) on its claim, with the
    counters, the log entry and the backup email it owes. `early`: a final receipt that came
    before the outcome was recorded (kept on the claim), recorded in the same change."""
    o = s.outcome
    assert o is not None and o.status in OUTCOME_STATES
    state = OUTCOME_STATES[o.status]
    delta = Delta(at=o.at)
    sets: dict[str, Any] = {
        "state": state,
        "at": o.at,
        "attempts": o.attempts,
        "to": s.to,
        "receipt": receipt_asked and o.sent,
    }
    for name, value in (
        ("messageId", o.message_id),
        ("segments", o.segments),
        ("errorCode", o.error_code),
        ("errorKind", o.error_kind),
    ):
        if value is not None:
            sets[name] = value
    if o.sent:
        delta.sent, delta.last_sent_at = 1, o.at
        delta.segments = o.segments or 0
        if o.cost is not None:
            delta.add_cost(o.cost, o.currency or s.connector.get("accountCurrency"))
            sets["costCounted"] = True
        if receipt_asked:
            delta.pending = 1
            deadline = receipt_deadline(o.at, deadline_minutes)
            sets["gsi2pk"] = f"AWAIT#{int(s.id[:4], 16) % AWAIT_SHARDS}"
            sets["gsi2sk"] = f"{deadline}#{s.id}"
            sets["expiresAt"] = max(
                int(s.claimed_at) + KEEP_SECONDS, int(clock.parse(deadline).timestamp()) + 2 * 24 * 3600
            )
    elif o.status == FAILED:
        delta.fails, delta.last_failed_at = 1, o.at
    elif o.status == SUPPRESSED_OUTCOME:
        delta.suppressed = 1
    else:
        delta.unknown = 1
    if s.backup_email and s.kind == "rule":
        # Kept for the backup email a later receipt may owe (undelivered), or a redelivery re-queues.
        sets |= {"backupEmail": s.backup_email, "text": s.text}
        if o.error_message:  # the provider's words, for an email the sweep queues
            sets["errorMessage"] = masking.text(o.error_message)[:500]
        if owes_email(o):
            sets |= {"emailState": "queued"} if s.email_queued else email_due(o.at)
    logs = []
    if o.notice:
        delta.last_error = o.notice
        logs.append(
            log_item(
                s.connector["id"],
                o.at,
                o.level,
                o.notice,
                provider=o.provider,
                recipient=s.to,
                code=o.error_code,
                action_id=s.action_id,
            )
        )
    deltas = [delta]
    removes: list[str] = list(_CLAIM_ATTRIBUTES)
    if s.claim == "unrecorded":
        condition, values = "#state = :unrecorded", {":unrecorded": UNRECORDED}
    else:
        condition = "#state = :claimed AND #owner = :me"
        values = {":claimed": CLAIMED, ":me": owner}
    settled_by_receipt = o.sent or o.status == UNKNOWN  # a receipt may follow either
    if settled_by_receipt and early is None:
        condition += " AND attribute_not_exists(earlyReceipt)"
    elif settled_by_receipt and early is not None:
        condition += " AND attribute_exists(earlyReceipt)"
        removes.append("earlyReceipt")
        as_recorded = sets | {"connectorId": s.connector["id"], "kind": s.kind, "actionId": s.action_id}
        change = receipt_change(as_recorded | {"provider": s.provider}, Report(**early))
        if change is not None and change.delta is not None:  # else another message's, or no verdict: dropped
            sets = {k: v for k, v in sets.items() if k not in change.removes} | change.sets
            removes += change.removes
            logs += [change.log] if change.log else []
            deltas.append(change.delta)
            if change.owes_email:  # undelivered: its email is not queued yet, the sweep queues it
                sets |= email_due(change.sets["receiptAt"])
    update = _update(s.id, sets=sets, removes=removes, condition=condition, condition_values=values)

    def retry(now: dict[str, Any]) -> Write | None:
        mine = (
            now.get("state") == UNRECORDED
            if s.claim == "unrecorded"
            else (now.get("state") == CLAIMED and now.get("owner") == owner)
        )
        if not mine:
            return None  # recorded, or taken over, by another invocation
        report = now.get("earlyReceipt")
        if settled_by_receipt and early is None and isinstance(report, dict):
            return outcome_write(s, owner, receipt_asked=receipt_asked, deadline_minutes=deadline_minutes, early=report)
        return None

    return Write(s.id, s.connector["id"], update, logs, deltas, retry)


# --- receipts, the deadline, the backup email -------------------------------------------------


@dataclass(frozen=True)
class Report:
    """A delivery receipt, in our words, whatever the provider."""

    message_id: str
    status: str  # "delivered", "undelivered", "unconfirmed" (final, no verdict) or "interim"
    at: str
    error_code: str | None = None
    error_message: str | None = None  # the provider's words: masked when written
    cost: str | None = None
    currency: str | None = None


@dataclass
class Change:
    """What a receipt, the deadline or a redelivery does to a record."""

    sets: dict[str, Any]
    removes: tuple[str, ...]
    condition: str
    condition_values: dict[str, Any]
    adds: dict[str, Any] | None = None  # numbers added, or members added to sets
    delta: Delta | None = None
    log: dict[str, Any] | None = None
    owes_email: bool = False


def receipt_change(record: dict[str, Any], report: Report) -> Change | None:
    """What `report` does to the SMS `record` (as read): None when it changes nothing
    (an interim status, a duplicate, a late receipt, another message's id)."""
    state = record.get("state")
    if report.status == "interim" or (record.get("messageId") and record["messageId"] != report.message_id):
        return None
    if state in (CLAIMED, UNRECORDED):
        # The outcome is not recorded yet: keep the receipt on the claim; the recording applies it.
        # The first final receipt wins; a duplicate changes nothing.
        if record.get("earlyReceipt"):
            return None
        return Change(
            sets={"earlyReceipt": {k: v for k, v in vars(report).items() if v is not None}},
            removes=(),
            condition="#state = :was AND attribute_not_exists(earlyReceipt)",
            condition_values={":was": str(state)},
        )
    if state not in (STATE_SENT, STATE_UNKNOWN) or (state == STATE_UNKNOWN and report.status == "unconfirmed"):
        return None
    delta = Delta(at=report.at)
    final = {"delivered": DELIVERED, "undelivered": UNDELIVERED, "unconfirmed": NO_RECEIPT}[report.status]
    sets: dict[str, Any] = {"state": final, "receiptAt": report.at, "messageId": report.message_id}
    if state == STATE_SENT and record.get("receipt"):
        delta.pending = -1
    log = None
    owes_email = False
    if final == DELIVERED:
        delta.delivered, delta.last_delivered_at = 1, report.at
    elif final == NO_RECEIPT:
        delta.no_receipt = 1
    else:
        delta.undelivered = 1
        why = (
            f"{record.get('provider')} {report.error_code or 'undelivered'}: {report.error_message or 'not delivered'}"
        )
        message = f"not delivered: {why}"
        delta.last_error = message
        if report.error_code:
            sets["errorCode"] = report.error_code
        if report.error_message:
            sets["errorMessage"] = masking.text(report.error_message)[:500]
        log = log_item(
            str(record.get("connectorId")),
            report.at,
            "error",
            message,
            provider=record.get("provider"),
            recipient=record.get("to"),
            code=report.error_code,
            action_id=record.get("actionId"),
        )
        # An UNKNOWN SMS already had its backup email; a SENT one owes it now (the caller
        # queues it and sets `emailState`).
        owes_email = state == STATE_SENT and record.get("kind", "rule") == "rule" and bool(record.get("backupEmail"))
    # What the provider billed counts once, also for an SMS whose answer was lost (UNKNOWN):
    # its receipt shows it went, and the price is the provider's.
    if report.cost is not None and not record.get("costCounted"):
        delta.add_cost(report.cost, report.currency)
        sets["costCounted"] = True
    return Change(
        sets=sets,
        # out of the receipt deadline's index; an UNKNOWN SMS's backup email still due stays in the
        # sweep's (its entry is EMAIL_DUE, not AWAIT#), unless the receipt shows it was delivered
        removes=("gsi2pk", "gsi2sk") if record.get("gsi2pk") != EMAIL_DUE or final == DELIVERED else (),
        condition="#state = :was",
        condition_values={":was": str(state)},
        delta=delta,
        log=log,
        owes_email=owes_email,
    )


def email_due(at: str) -> dict[str, Any]:
    """What marks a backup email owed but not queued: the sweep finds it in `gsi2`."""
    return {"emailState": "due", "gsi2pk": EMAIL_DUE, "gsi2sk": at}


def email_queued() -> Change:
    """A due backup email was queued: out of the sweep's index."""
    return Change(
        sets={"emailState": "queued"},
        removes=("gsi2pk", "gsi2sk"),
        condition="emailState = :due",
        condition_values={":due": "due"},
    )


def deadline_change(record: dict[str, Any]) -> Change:
    """A SENT SMS whose receipt deadline passed with no final receipt."""
    delta = Delta(at=clock.iso(clock.now()), no_receipt=1, pending=-1)
    return Change(
        sets={"state": NO_RECEIPT},
        removes=("gsi2pk", "gsi2sk"),
        condition="#state = :was AND attribute_exists(gsi2pk)",
        condition_values={":was": STATE_SENT},
        delta=delta,
    )


def change_write(sms: str, connector_id: str, change: Change) -> Write:
    update = _update(
        sms,
        sets=change.sets,
        adds=change.adds,
        removes=change.removes,
        condition=change.condition,
        condition_values=change.condition_values,
    )
    return Write(sms, connector_id, update, [change.log] if change.log else [], [change.delta] if change.delta else [])


def read(sms: str) -> dict[str, Any] | None:
    item = dynamo.client().get_item(TableName=dynamo.table(), Key=key(sms), ConsistentRead=True).get("Item")
    return dynamo.from_item(item) if item else None


# --- committing -------------------------------------------------------------------------------


def commit(writes: list[Write]) -> list[Write]:
    """Commit `writes` in as few transactions as DynamoDB allows (100 items each): a chunk's
    record changes, log entries and counters together. Answers the writes that could not be
    committed (the caller keeps their outcomes for the redelivery)."""
    failed: list[Write] = []
    for chunk in _chunks(writes):
        try:
            _commit_chunk(chunk)
        except Exception as exc:
            logger.warning("recording failed", extra={"error_type": type(exc).__name__, "smses": len(chunk)})
            failed.extend(chunk)
    return failed


def _chunks(writes: list[Write]) -> list[list[Write]]:
    chunks: list[list[Write]] = []
    current: list[Write] = []
    size = 0
    connectors: set[str] = set()
    for w in writes:
        # the record, its log entry, and for a new connector its check, totals and month
        cost = 1 + len(w.logs) + (0 if w.connector_id in connectors else 4)
        if current and size + cost > _TRANSACTION_ITEMS:
            chunks.append(current)
            current, size, connectors = [], 0, set()
            cost = 1 + len(w.logs) + 4
        current.append(w)
        connectors.add(w.connector_id)
        size += cost
    if current:
        chunks.append(current)
    return chunks


def _commit_chunk(chunk: list[Write]) -> None:
    gone: set[str] = set()  # connectors deleted meanwhile: their counters and log are not written
    for attempt in range(1, 9):
        if not chunk:
            return
        items: list[dict[str, Any]] = []
        owners: list[tuple[str, Any]] = []  # what each transaction item is, to read cancellations
        deltas: dict[str, list[Delta]] = defaultdict(list)
        for w in chunk:
            items.append(w.update)
            owners.append(("record", w))
            if w.connector_id not in gone:
                items.extend(w.logs)
                owners.extend(("log", w) for _ in w.logs)
                deltas[w.connector_id].extend(w.deltas)
        for connector_id, group in deltas.items():
            for item in updates(connector_id, group):
                items.append(item)
                owners.append(("connector", connector_id))
        try:
            dynamo.client().transact_write_items(TransactItems=items)
            return
        except dynamo.client().exceptions.TransactionCanceledException as exc:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            failed = [owners[i] for i, code in enumerate(reasons) if code == "ConditionalCheckFailed"]
            if failed:
                gone |= {who for what, who in failed if what == "connector"}
                changed = [who for what, who in failed if what == "record"]
                if changed:
                    chunk = _after_conflicts(chunk, changed)
                continue
            if not set(reasons) & {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}:
                raise
            time.sleep(min(1.0, 0.02 * 2**attempt) * (0.5 + 0.5 * (time.time() % 1)))
    raise RuntimeError("recording kept conflicting with other transactions")


def _after_conflicts(chunk: list[Write], changed: list[Write]) -> list[Write]:
    """Records whose condition failed: another invocation changed them. Each write decides
    from the record as it is now whether it still applies, and how."""
    keys = [key(w.sms_id) for w in changed if w.retry]
    now = {i["pk"]["S"]: dynamo.from_item(i) for i in dynamo.batch_get(keys, consistent=True)} if keys else {}
    replacements: dict[str, Write | None] = {}
    for w in changed:
        current = now.get(f"SMS#{w.sms_id}", {})
        replacements[w.sms_id] = w.retry(current) if w.retry else None
    out = []
    for w in chunk:
        if w.sms_id in replacements:
            if replacements[w.sms_id] is not None:
                out.append(replacements[w.sms_id])
        else:
            out.append(w)
    return out  # type: ignore[return-value]
