"""Rule actions and test sends: one path from a batch of SMS to the providers and back.

A batch is read once (connectors with one BatchGetItem, secrets from the version-keyed
cache), claimed once (one transaction per 100 SMS), sent concurrently (a small thread pool),
and recorded once: the backup emails it owes in one SQS call, then one transaction per ~100
items that changes each SMS's record together with the counters and the log entries it owes
(`record.py` says how each state change guards its side effects).
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from .. import clock, connector_store, credentials, ids, json_fields, limits, masking
from ..config import settings
from ..errors import InvalidField
from ..receipts import callback_url
from ..text import MAX_MESSAGE_CHARS, clean_message
from . import emails, record
from .attempts import deliver, outcome_of
from .outcome import NOT_ATTEMPTED, SENT, SUPPRESSED, UNKNOWN, Outcome
from .record import Sms

logger = Logger()
# A claim's lease ends when its invocation surely has: the send deadline, plus the time left
# after it for recording (rule_actions.SAFETY_SECONDS), plus a margin for clocks.
LEASE_AFTER_DEADLINE = 3.0 + 5.0

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def executor() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=settings().send_concurrency, thread_name_prefix="send")
        return _executor


_ACTION_FIELDS = {
    "connectorId": json_fields.Text(min_length=1, max_length=64),
    "message": json_fields.Text(min_length=1, max_length=MAX_MESSAGE_CHARS, check=clean_message),
    "actionId": json_fields.Text(min_length=1, max_length=200, required=False, nullable=True),
    "tenantId": json_fields.Text(min_length=1, max_length=200, required=False, nullable=True),
}


@dataclass(frozen=True)
class RuleAction:
    """The rule engine's message on the send queue (DESIGN.md, Rule actions); other fields are
    ignored. Checked by `json_fields`: the sender imports no pydantic."""

    connectorId: str
    message: str
    actionId: str | None = None
    tenantId: str | None = None

    @classmethod
    def parse(cls, body: str) -> RuleAction:
        """The action in an SQS message's body, or json_fields.Malformed."""
        return cls(**json_fields.parse(body, _ACTION_FIELDS))

    @classmethod
    def check(cls, value: Any) -> RuleAction:
        """The action an object describes, or json_fields.Malformed."""
        return cls(**json_fields.check(value, _ACTION_FIELDS))


class ConnectorUnavailable(Exception):
    """The action names a connector that does not exist, is not SMS, or is another tenant's."""


class ActionBusy(Exception):
    """Another invocation is sending this action right now; SQS will bring it back later."""


class NotAttempted(Exception):
    """No time was left to send some of this action's SMS; SQS will bring it back."""


class NotRecorded(Exception):
    """Some of this action's SMS went out but could not be recorded; the redelivery records them."""


# --- rule actions (SQS) ---------------------------------------------------------------------


def send_rule_actions(actions: Sequence[tuple[str, str, RuleAction]], deadline: float) -> dict[str, Exception]:
    """Send every (SQS message id, action id, action); answers the messages that must come back.

    The connectors are read once per batch. When this environment read them all before, the
    read runs while the SMS are claimed with what it read last time, and no SMS is sent before
    the read confirms the claims: a connector whose claims it changed (recipients, tenant,
    provider, type, or being deleted) has them given back and claimed again as read now."""
    failures: dict[str, Exception] = {}
    ids = {a.connectorId for _, _, a in actions}
    owner = uuid.uuid4().hex
    lease = _lease_until(deadline)
    known = connector_store.known(ids)
    if known is None:
        connectors = connector_store.get_many(ids)
        smses, secrets, _ = _with_secrets(_smses(actions, connectors, failures), failures)
        record.claim(smses, owner, lease)
    else:
        smses = _smses(actions, known, {})
        claiming = executor().submit(record.claim, smses, owner, lease)  # its threads are idle until the sends
        try:
            connectors = connector_store.get_many(ids)  # the smaller request: it leaves first
        except Exception:
            with contextlib.suppress(Exception):  # give the claims back rather than let their lease run out
                claiming.result()
                record.unclaim(smses, owner)
            raise
        claiming.result()
        stale = {i for i in ids if _claimed_as(known.get(i)) != _claimed_as(connectors.get(i))}
        if stale:
            record.unclaim([s for s in smses if s.connector["id"] in stale], owner)
            again = _smses([a for a in actions if a[2].connectorId in stale], connectors, failures)
            record.claim(again, owner, lease)
            smses = [s for s in smses if s.connector["id"] not in stale] + again
        for message_id, _, action in actions:  # the others' verdicts, from the read as without a guess
            if action.connectorId not in stale and _unavailable(action, connectors.get(action.connectorId)):
                failures[message_id] = _no_connector(action)
        for s in smses:
            s.connector = connectors[s.connector["id"]]  # sent with the connector as read now
        smses, secrets, unreadable = _with_secrets(smses, failures)
        record.unclaim(unreadable, owner)
    _deliver(smses, secrets, deadline, failures, owner)
    return failures


def _with_secrets(
    smses: list[Sms], failures: dict[str, Exception]
) -> tuple[list[Sms], dict[str, dict[str, str]], list[Sms]]:
    """The SMS whose connector's credentials could be read, with them, and the others (whose
    actions fail: retried, then the DLQ)."""
    secrets: dict[str, dict[str, str]] = {}
    unreadable: list[Sms] = []
    for s in smses:
        try:
            secrets[s.id] = credentials.read(s.connector["secretArn"], s.connector["secretVersion"])
        except Exception as exc:
            _fail(failures, s, exc)
            unreadable.append(s)
    return [s for s in smses if s.id in secrets], secrets, unreadable


def _smses(
    actions: Sequence[tuple[str, str, RuleAction]],
    connectors: dict[str, dict[str, Any]],
    failures: dict[str, Exception],
) -> list[Sms]:
    """The SMS of `actions` (one per recipient), each once; `failures` gets the actions whose
    connector is unavailable."""
    smses: dict[str, Sms] = {}
    for message_id, action_id, action in actions:
        connector = connectors.get(action.connectorId)
        if connector is None or _unavailable(action, connector):
            failures[message_id] = _no_connector(action)
            continue
        for recipient in connector["recipients"]:
            sms = Sms(connector, action_id, recipient["to"], action.message, recipient.get("backupEmail"), "rule")
            # The same rule action twice in one batch: one send per recipient, shared fates.
            if sms.id in smses:
                smses[sms.id].records.append(message_id)
                continue
            sms.records.append(message_id)
            smses[sms.id] = sms
    return list(smses.values())


def _unavailable(action: RuleAction, connector: dict[str, Any] | None) -> bool:
    return bool(
        connector is None
        or connector["type"] != "sms"
        or connector.get("deleting")
        or (action.tenantId and action.tenantId != connector["tenantId"])
    )


def _no_connector(action: RuleAction) -> ConnectorUnavailable:
    return ConnectorUnavailable(f"no SMS connector {action.connectorId} for this action")


def _claimed_as(connector: dict[str, Any] | None) -> tuple[Any, ...] | None:
    """What a connector's claims are made of: which SMS (recipients), on whose behalf, and
    whether there are any (type, deletion). Other changes (a credential, an opt-out mark, the
    limits) are read fresh before anything is sent and need no new claim."""
    if connector is None:
        return None
    return (
        connector["type"],
        connector["tenantId"],
        connector.get("provider"),
        bool(connector.get("deleting")),
        tuple(r["to"] for r in connector.get("recipients", [])),
    )


# --- test sends (API) ----------------------------------------------------------------------


def test_send(tenant_id: str, connector_id: str, to: str | None, text: str | None, deadline: float) -> list[Outcome]:
    """Send now to all of a connector's recipients, or to one; counted and logged, no backup
    email. Recipients not reached in time are answered as not attempted."""
    connector = connector_store.owned(tenant_id, connector_id)
    if connector["type"] != "sms":
        raise InvalidField("connectorId", "is an email connector; test sends need an SMS connector", "path")
    recipients = connector["recipients"]
    if to is not None:
        recipients = [r for r in recipients if r["to"] == to]
        if not recipients:  # only the connector's own recipients: the API is no free SMS gateway
            raise InvalidField("to", "is not a recipient of this connector")
    text = text or f"Test message from SMS connector '{connector['name']}'"
    limits.take_test_sends(connector["id"], len(recipients))
    secret = credentials.read(connector["secretArn"], connector["secretVersion"])
    action_id = f"test-{ids.ulid()}"
    smses = [Sms(connector, action_id, r["to"], text, None, "test", records=["test"]) for r in recipients]
    _send(smses, dict.fromkeys((s.id for s in smses), secret), deadline, {})
    return [s.outcome for s in smses if s.outcome]


# --- one batch of SMS ----------------------------------------------------------------------


def _lease_until(deadline: float) -> float:
    return time.time() + max(0.0, deadline - time.monotonic()) + LEASE_AFTER_DEADLINE


def _send(
    smses: list[Sms], secrets: dict[str, dict[str, str]], deadline: float, failures: dict[str, Exception]
) -> None:
    owner = uuid.uuid4().hex
    record.claim(smses, owner, _lease_until(deadline))
    _deliver(smses, secrets, deadline, failures, owner)


def _deliver(
    smses: list[Sms], secrets: dict[str, dict[str, str]], deadline: float, failures: dict[str, Exception], owner: str
) -> None:
    """Send the claimed SMS of `smses`, and record every outcome."""
    if not smses:
        return
    todo: list[Sms] = []
    to_record: list[Sms] = []
    writes: list[record.Write] = []
    warned: set[tuple[str, str]] = set()
    for s in smses:
        if s.claim == "busy":
            _fail(failures, s, ActionBusy(f"action {s.action_id} is being sent by another invocation"))
        elif s.claim == "claimed":
            todo.append(s)
        elif s.claim == "unrecorded":  # sent by an invocation that failed before recording it
            s.outcome = Outcome(**s.stored["outcome"])
            s.email_queued = bool(s.stored.get("emailQueued"))
            to_record.append(s)
        else:
            writes += _already_done(s, warned)
    for note in limits.admit(todo):
        writes.append(limits.burst_write(note))
    for s in todo:
        if s.suppressed:
            s.outcome = _suppressed(s)
    _run([s for s in todo if not s.suppressed], secrets, deadline)
    skipped = [s for s in todo if s.outcome and s.outcome.status == NOT_ATTEMPTED]
    if skipped:
        record.release(skipped, owner, limits_taken=True)
        for s in skipped:
            _fail(failures, s, NotAttempted(f"no time left to send action {s.action_id}"))
    to_record += [s for s in todo if s.outcome and s.outcome.status != NOT_ATTEMPTED]
    _queue_emails(
        [s for s in to_record if s.owes_email and s.outcome and record.owes_email(s.outcome) and not s.email_queued]
    )
    receipts = {s.id: bool(callback_url(s.connector, secrets.get(s.id, {}), s.id)) for s in to_record}
    minutes = settings().receipt_deadline_minutes
    writes += [
        record.outcome_write(s, owner, receipt_asked=receipts[s.id], deadline_minutes=minutes) for s in to_record
    ]
    failed = record.commit(writes)
    # A test send has no SQS message to bring it back and be recorded then: while there is time,
    # its recording is tried again (a throttled or conflicting moment passes).
    tests = {s.id for s in to_record if s.kind == "test"}
    for pause in (0.2, 0.5):
        again = [w for w in failed if w.sms_id in tests]
        if not again or time.monotonic() + pause + 1.0 > deadline:
            break
        time.sleep(pause)
        failed = [w for w in failed if w.sms_id not in tests] + record.commit(again)
    not_written = {w.sms_id for w in failed}
    if not_written:
        lost = [s for s in to_record if s.id in not_written]
        record.keep_unrecorded(lost, owner)
        for s in lost:
            _fail(failures, s, NotRecorded(f"action {s.action_id} was sent but not recorded yet"))
    for s in to_record:  # the provider says this person replied STOP: later sends skip them
        if s.outcome and s.outcome.opted_out:
            limits.mark_opted_out(s.connector["id"], s.to)
    _observe([s.outcome for s in to_record if s.outcome])


def _suppressed(s: Sms) -> Outcome:
    return outcome_of(
        s,
        SUPPRESSED,
        error_kind="suppressed",
        error_code=s.suppressed,
        error_message={
            "opted_out": "the recipient opted out (replied STOP)",
            "duplicate": "the same text went to this recipient a moment ago",
            "hourly": "held back by the hourly limit; a summary follows",
            "budget": "this month's segment budget is used up",
        }.get(s.suppressed or "", "held back by the connector's limits"),
        attempts=0,
    )


def send_summary(
    connector: dict[str, Any], secret: dict[str, str], to: str, text: str, action_id: str, deadline: float
) -> str:
    """The SMS that sums up what the hourly limit held back (the sweep sends it). Answers its
    outcome's status once recorded; "done" when it had one already (a sweep that ran twice);
    "pending" when the next sweep must try again: another sweep holds it, no time was left, or
    its recording failed (it is then kept on its claim and recorded, not sent, next time)."""
    sms = Sms(connector, action_id, to, text, None, "summary", records=[action_id])
    failures: dict[str, Exception] = {}
    _send([sms], {sms.id: secret}, deadline, failures)
    if failures:
        return "pending"
    return sms.outcome.status if sms.outcome else "done"


def _fail(failures: dict[str, Exception], sms: Sms, why: Exception) -> None:
    for message_id in sms.records:
        failures[message_id] = why


def _run(smses: list[Sms], secrets: dict[str, dict[str, str]], deadline: float) -> None:
    def one(s: Sms) -> Outcome:
        try:
            return deliver(s, secrets[s.id], callback_url(s.connector, secrets[s.id], s.id), deadline)
        except Exception as exc:
            # A bug, or an answer we cannot read: the request may have left. Never log the
            # exception's text (it may hold a credential or a number): its type says enough.
            logger.error("unexpected error while sending", extra={"error_type": type(exc).__name__})
            return outcome_of(
                s,
                UNKNOWN,
                error_kind="unknown",
                error_code="internal_error",
                error_message=f"unexpected {type(exc).__name__} while sending",
            )

    for s, outcome in zip(smses, executor().map(one, smses), strict=True):
        s.outcome = outcome


def _already_done(s: Sms, warned: set[tuple[str, str]]) -> list[record.Write]:
    """A redelivered SMS: nobody is texted again. What may still be owed: the backup email
    whose queueing failed, and a word in the log when the action id came back with another text."""
    writes = []
    stored = s.stored
    reused = stored.get("textHash") and stored["textHash"] != record.text_hash(s.text)
    if reused and s.kind == "rule" and (s.connector["id"], s.action_id) not in warned:
        warned.add((s.connector["id"], s.action_id))
        writes.append(_reused(s))
    if stored.get("emailState") == "due" and stored.get("backupEmail"):
        [queued] = emails.queue([emails.message(s.connector, emails.owed(stored))])
        if queued:
            writes.append(record.change_write(s.id, s.connector["id"], record.email_queued()))
    return writes


def _reused(s: Sms) -> record.Write:
    """An action id that was already sent on this connector with another message: not sent
    again, and said so once per SQS message that reuses it."""
    at = clock.iso(clock.now())
    message = (
        f"rule action {s.action_id} was already sent on this connector with another message; "
        "this one was not sent (give each firing its own actionId)"
    )
    delta = record.Delta(at=at, last_error=message)
    change = record.Change(
        sets={"lastReusedAt": at},
        adds={"reusedBy": {s.records[0]}},  # the SQS messages already told
        removes=(),
        condition="NOT contains(reusedBy, :message)",
        condition_values={":message": s.records[0]},
        delta=delta,
        log=record.log_item(
            s.connector["id"],
            at,
            "warning",
            message,
            provider=s.provider,
            recipient=None,
            code="action_id_reused",
            action_id=s.action_id,
        ),
    )
    return record.change_write(s.id, s.connector["id"], change)


def _owed_email(s: Sms) -> dict[str, Any]:
    o = s.outcome
    assert o is not None
    return emails.message(
        s.connector,
        {
            "actionId": s.action_id,
            "to": s.to,
            "backupEmail": s.backup_email,
            "text": s.text,
            "outcome": o.status,
            "errorCode": o.error_code,
            "errorKind": o.error_kind,
            "reason": o.error_message,
            "at": o.at,
        },
    )


def _queue_emails(smses: list[Sms]) -> None:
    """Queue the backup emails `smses` owe; marks each one that was queued."""
    for s, queued in zip(smses, emails.queue([_owed_email(s) for s in smses]), strict=True):
        s.email_queued = queued


def _observe(outcomes: list[Outcome]) -> None:
    """One structured log line per failure or warning, and EMF metrics per provider."""
    for o in outcomes:
        if o.notice:
            log = logger.error if o.status != SENT else logger.warning
            log(
                {"sent": "sms sent after retries", "failed": "sms failed", "unknown": "sms outcome unknown"}[o.status],
                extra={
                    "connector_id": o.connector_id,
                    "tenant_id": o.tenant_id,
                    "provider": o.provider,
                    "error_code": o.error_code,
                    "error_message": masking.text(o.error_message or ""),
                    "error_kind": o.error_kind,
                    "recipient": masking.number(o.to),
                    "action_id": o.action_id,
                    "attempts": o.attempts,
                },
            )
    for provider in sorted({o.provider for o in outcomes}):
        mine = [o for o in outcomes if o.provider == provider]
        metrics = EphemeralMetrics()  # its own metric set: nothing shared between threads or batches
        metrics.add_dimension(name="provider", value=provider)
        metrics.add_metric(name="SmsSent", unit=MetricUnit.Count, value=sum(o.sent for o in mine))
        metrics.add_metric(name="SmsFailed", unit=MetricUnit.Count, value=sum(o.status == "failed" for o in mine))
        metrics.add_metric(name="SmsUnknown", unit=MetricUnit.Count, value=sum(o.status == UNKNOWN for o in mine))
        for o in mine:
            if o.latency_ms is not None:
                metrics.add_metric(name="ProviderLatency", unit=MetricUnit.Milliseconds, value=o.latency_ms)
        with warnings.catch_warnings():
            # At 100 values Powertools publishes by itself; an empty remainder is not worth a warning.
            warnings.simplefilter("ignore", UserWarning)
            metrics.flush_metrics()
