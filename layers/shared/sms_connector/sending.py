"""The sending module: rule actions and test sends, through one path to the providers.

A batch is read once (connectors with one BatchGetItem, secrets from the version-keyed
cache), claimed once (one transaction), sent concurrently (a small thread pool), and
recorded once: fallback messages in one SQS call, then one transaction per ~100 items that
completes the claims and writes the counters and the error log together, so a counter is
never added twice for one SMS.
"""

from __future__ import annotations

import dataclasses
import json
import random
import threading
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from pydantic import BaseModel, ConfigDict, StringConstraints

from . import aws, claims, clock, connector_store, credentials, dynamo, error_log, stats
from .config import settings
from .errors import InvalidField, NotFound
from .outcomes import Outcome
from .phone import mask
from .providers import ADAPTERS, ProviderError
from .providers.base import attempt_budget
from .segments import too_long_for
from .text import Message

logger = Logger()

MAX_ATTEMPTS = 4
BACKOFF_BASE = 0.25  # seconds; full jitter over base * 2**attempt
BACKOFF_CAP = 8.0

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def executor() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=settings().send_concurrency, thread_name_prefix="send")
        return _executor


class RuleAction(BaseModel):
    """The rule engine's message on the send queue (DESIGN.md, Rule actions)."""

    model_config = ConfigDict(extra="ignore")

    connectorId: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    message: Message
    actionId: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    tenantId: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None


class ConnectorUnavailable(Exception):
    """The action names a connector that does not exist, is not SMS, or is another tenant's."""


class ActionBusy(Exception):
    """Another invocation is sending this action right now; SQS will bring it back later."""


@dataclass
class _Job:
    record_id: str
    action_id: str
    connector: dict[str, Any]
    to: str
    backup_email: str | None
    text: str
    secret: dict[str, str]
    claim: claims.ClaimKey | None = None
    outcome: Outcome | None = field(default=None)
    recovering: bool = False


# --- rule actions (SQS) ---------------------------------------------------------------------


def send_rule_actions(actions: Sequence[tuple[str, str, RuleAction]], deadline: float) -> dict[str, Exception]:
    """Send every (record id, action id, action); answers the records that must be retried."""
    failures: dict[str, Exception] = {}
    connectors = connector_store.get_many({a.connectorId for _, _, a in actions})
    jobs: list[_Job] = []
    # The same rule action twice in one batch (the rule engine retried, or SQS delivered twice):
    # one send per recipient, and every record carrying it shares its fate.
    sharers: dict[claims.ClaimKey, list[str]] = {}
    for record_id, action_id, action in actions:
        connector = connectors.get(action.connectorId)
        if (
            connector is None
            or connector["type"] != "sms"
            or (action.tenantId and action.tenantId != connector["tenantId"])
        ):
            failures[record_id] = ConnectorUnavailable(f"no SMS connector {action.connectorId} for this action")
            continue
        try:
            secret = credentials.read(connector["secretArn"], connector["secretVersion"])
        except Exception as exc:  # the record is retried, then lands in the DLQ
            failures[record_id] = exc
            continue
        for recipient in connector["recipients"]:
            key = claims.ClaimKey(connector["id"], action_id, recipient["to"])
            if key in sharers:
                sharers[key].append(record_id)
                continue
            sharers[key] = [record_id]
            jobs.append(
                _Job(
                    record_id,
                    action_id,
                    connector,
                    recipient["to"],
                    recipient.get("backupEmail"),
                    action.message,
                    secret,
                    key,
                )
            )
    lease_until = time.time() + max(0.0, deadline - time.monotonic()) + 30
    states, stored = claims.claim([j.claim for j in jobs if j.claim], lease_until)
    todo, recovered = [], []
    for job in jobs:
        assert job.claim is not None
        state = states[job.claim]
        if state == "busy":
            for record_id in sharers[job.claim]:
                failures[record_id] = ActionBusy(f"action {job.action_id} is being sent by another invocation")
        elif state == "claimed":
            todo.append(job)
        elif state == "unrecorded":  # sent by an invocation that failed before recording it
            job.outcome = Outcome(**stored[job.claim])
            job.recovering = True
            recovered.append(job)
    _run(todo, deadline)
    try:
        _record(todo + recovered, with_fallback=True)
    except Exception:
        # Nobody may be texted twice for this failure: keep what was sent on the claims.
        claims.complete_unrecorded({j.claim: _stored(j.outcome) for j in todo if j.claim and j.outcome})
        raise
    return failures


def _stored(outcome: Outcome) -> dict[str, Any]:
    """An outcome as a claim keeps it (DynamoDB holds no floats: the latency stays out)."""
    values = dataclasses.asdict(outcome)
    values.pop("latency_ms")
    return values


# --- test sends (API) ----------------------------------------------------------------------


def test_send(tenant_id: str, connector_id: str, to: str | None, text: str | None, deadline: float) -> list[Outcome]:
    """Send now to all of a connector's recipients, or to one; counted and logged, no fallback."""
    from .connectors import get  # the API's data access: not needed by the queue consumer

    connector = get(tenant_id, connector_id)
    if connector["type"] != "sms":
        raise NotFound("SMS connector")
    recipients = connector["recipients"]
    if to is not None:
        recipients = [r for r in recipients if r["to"] == to]
        if not recipients:  # only the connector's own recipients: the API is no free SMS gateway
            raise InvalidField("to", "is not a recipient of this connector")
    text = text or f"Test message from SMS connector '{connector['name']}'"
    secret = credentials.read(connector["secretArn"], connector["secretVersion"])
    action_id = f"test-{clock.iso(clock.now())}"
    jobs = [_Job("test", action_id, connector, r["to"], r.get("backupEmail"), text, secret) for r in recipients]
    _run(jobs, deadline)
    _record(jobs, with_fallback=False)
    return [j.outcome for j in jobs if j.outcome]


# --- the sends ------------------------------------------------------------------------------


def _run(jobs: list[_Job], deadline: float) -> None:
    if not jobs:
        return
    for job, outcome in zip(jobs, executor().map(lambda j: _deliver_safely(j, deadline), jobs), strict=True):
        job.outcome = outcome


def _deliver_safely(job: _Job, deadline: float) -> Outcome:
    """An unexpected error (a bug, a provider answer we cannot read) fails this SMS alone: it is
    counted, logged and falls back to email, and not retried, since it may have been sent."""
    try:
        return _deliver(job, deadline)
    except Exception as exc:
        logger.exception("unexpected error while sending", extra={"connector_id": job.connector["id"]})
        return _outcome(
            job,
            "failed",
            error_kind="internal",
            error_code="internal_error",
            error_message=f"unexpected {type(exc).__name__} while sending",
        )


def _outcome(job: _Job, status: str, **details: Any) -> Outcome:
    connector = job.connector
    return Outcome(
        connector_id=connector["id"],
        tenant_id=connector["tenantId"],
        provider=connector["provider"],
        action_id=job.action_id,
        to=job.to,
        status=status,
        at=clock.iso(clock.now()),
        backup_email=job.backup_email,
        **details,
    )


def _deliver(job: _Job, deadline: float) -> Outcome:
    """Send one SMS with retries for retry-safe errors, within the invocation's time."""
    connector = job.connector
    provider = connector["provider"]

    def outcome(status: str, **details: Any) -> Outcome:
        return _outcome(job, status, **details)

    too_long = too_long_for(provider, job.text)
    if too_long:
        return outcome(
            "failed", error_kind="permanent", error_code="message_too_long", error_message=too_long, attempts=0
        )
    adapter = ADAPTERS[provider]
    last: ProviderError | None = None
    for attempt in range(1, MAX_ATTEMPTS + 1):
        started = time.monotonic()
        try:
            receipt = adapter.send(job.secret, connector["from"], job.to, job.text)
        except ProviderError as exc:
            last = exc
            if exc.kind != "retry" or attempt == MAX_ATTEMPTS:
                break
            pause = (
                exc.retry_after
                if exc.retry_after is not None
                else random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt))
            )
            # No retry starts without the time a whole attempt may take.
            if time.monotonic() + pause + attempt_budget() > deadline:
                last = ProviderError(exc.kind, exc.code, f"{exc.message} (no time left to retry)", status=exc.status)
                break
            time.sleep(pause)
            continue
        latency = (time.monotonic() - started) * 1000
        return outcome(
            "sent",
            message_id=receipt.message_id,
            segments=receipt.segments,
            attempts=attempt,
            latency_ms=latency,
            error_code=last.code if last else None,
            error_message=last.message if last else None,
        )
    assert last is not None
    return outcome("failed", error_kind=last.kind, error_code=last.code, error_message=last.message, attempts=attempt)


# --- recording ------------------------------------------------------------------------------


def _record(jobs: list[_Job], *, with_fallback: bool) -> None:
    done = [j for j in jobs if j.outcome]
    if not done:
        return
    if with_fallback:
        _queue_fallbacks([j for j in done if j.outcome and not j.outcome.sent and j.backup_email])
    for chunk in _chunks(done):
        outcomes = [j.outcome for j in chunk if j.outcome]
        items = stats.counter_updates(outcomes)
        for job in chunk:
            o = job.outcome
            assert o is not None
            if o.notice:
                items.append(
                    {
                        "Put": {
                            "TableName": dynamo.table(),
                            "Item": error_log.entry_item(
                                o.connector_id,
                                at=o.at,
                                level=o.level,
                                message=o.notice,
                                provider=o.provider,
                                recipient=o.to,
                                error_code=o.error_code,
                                action_id=o.action_id,
                                kind="sms",
                            ),
                        }
                    }
                )
            if job.claim:
                items.append(claims.completion(job.claim, _stored(o), recovering=job.recovering))
        _transact(items)
    _observe([j.outcome for j in done if j.outcome])


def _chunks(jobs: list[_Job]) -> list[list[_Job]]:
    """Group jobs so each group's transaction stays within DynamoDB's 100 items."""
    chunks: list[list[_Job]] = []
    current: list[_Job] = []
    size = 0
    connectors: set[str] = set()
    for job in jobs:
        assert job.outcome is not None
        cost = (
            int(job.claim is not None) + int(bool(job.outcome.notice)) + int(job.outcome.connector_id not in connectors)
        )
        if size + cost > 100:
            chunks.append(current)
            current, size, connectors = [], 0, set()
            cost = int(job.claim is not None) + int(bool(job.outcome.notice)) + 1
        current.append(job)
        connectors.add(job.outcome.connector_id)
        size += cost
    if current:
        chunks.append(current)
    return chunks


def _transact(items: list[dict[str, Any]]) -> None:
    """Write one transaction, retrying conflicts with other batches of the same connector."""
    for attempt in range(1, 9):
        try:
            dynamo.client().transact_write_items(TransactItems=items)
            return
        except dynamo.client().exceptions.TransactionCanceledException as exc:
            codes = {r.get("Code") for r in exc.response.get("CancellationReasons", [])}
            if not codes & {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"} or attempt == 8:
                raise
            time.sleep(random.uniform(0, min(1.0, 0.02 * 2**attempt)))


def _queue_fallbacks(jobs: list[_Job]) -> None:
    url = settings().fallback_queue_url
    if not jobs or not url:
        return
    entries = []
    for i, job in enumerate(jobs):
        o = job.outcome
        assert o is not None
        entries.append(
            {
                "Id": str(i),
                "MessageBody": json.dumps(
                    {
                        "fallbackId": f"{o.connector_id}:{o.action_id}:{o.to}",
                        "connectorId": o.connector_id,
                        "tenantId": o.tenant_id,
                        "actionId": o.action_id,
                        "to": o.to,
                        "backupEmail": job.backup_email,
                        "emailConnectorId": job.connector.get("emailConnectorId"),
                        "message": job.text,
                        "provider": o.provider,
                        "errorCode": o.error_code,
                        "errorKind": o.error_kind,
                        "reason": o.error_message,
                        "failedAt": o.at,
                    }
                ),
            }
        )
    for start in range(0, len(entries), 10):
        batch = entries[start : start + 10]
        answer = aws.client("sqs").send_message_batch(QueueUrl=url, Entries=batch)
        if answer.get("Failed"):
            failed = {f["Id"] for f in answer["Failed"]}
            retry = [e for e in batch if e["Id"] in failed]
            answer = aws.client("sqs").send_message_batch(QueueUrl=url, Entries=retry)
            if answer.get("Failed"):
                raise RuntimeError(f"could not queue {len(answer['Failed'])} fallback emails")


def _observe(outcomes: list[Outcome]) -> None:
    """One structured log line per failure or warning, and EMF metrics per provider."""
    for o in outcomes:
        if o.notice:
            log = logger.error if not o.sent else logger.warning
            log(
                "sms failed" if not o.sent else "sms sent after retries",
                extra={
                    "connector_id": o.connector_id,
                    "tenant_id": o.tenant_id,
                    "provider": o.provider,
                    "error_code": o.error_code,
                    "error_message": o.error_message,
                    "error_kind": o.error_kind,
                    "recipient": mask(o.to),
                    "action_id": o.action_id,
                    "attempts": o.attempts,
                },
            )
    for provider in sorted({o.provider for o in outcomes}):
        mine = [o for o in outcomes if o.provider == provider]
        metrics = EphemeralMetrics()  # its own metric set: nothing shared between threads or batches
        metrics.add_dimension(name="provider", value=provider)
        metrics.add_metric(name="SmsSent", unit=MetricUnit.Count, value=sum(o.sent for o in mine))
        metrics.add_metric(name="SmsFailed", unit=MetricUnit.Count, value=sum(not o.sent for o in mine))
        for o in mine:
            if o.latency_ms is not None:
                metrics.add_metric(name="ProviderLatency", unit=MetricUnit.Milliseconds, value=o.latency_ms)
        with warnings.catch_warnings():
            # At 100 values Powertools publishes by itself; an empty remainder is not worth a warning.
            warnings.simplefilter("ignore", UserWarning)
            metrics.flush_metrics()
