"""Email fallback: a recipient whose SMS failed, stayed unknown or was not delivered gets the
message by email, sent with SES v2.

The email is a side effect of the SMS, guarded on the SMS's record (`sending.record`): a
message on the fallback queue names the SMS; the email is claimed on its record, sent, and
counted in the same transaction that marks it sent, so neither a redelivery nor a failure
between sending and counting sends it twice or counts it twice. SES throttling is retried
through SQS; a permanent SES rejection, or an email connector that no longer exists, is
written to the SMS connector's error log and statistics and not retried.

SES has no idempotency key and no way to ask whether it took an email, so SendEmail is never
repeated by botocore (`aws.client(..., resent=False)`), and a failure is sorted by whether the
request can have reached SES:
- it did not (no connection, a connect timeout, throttling, a 429 or 503): the claim is
  released at once and SQS brings the record back; nothing can be sent twice;
- SES refused it (any other 4xx, e.g. MessageRejected): logged, counted, not retried;
- it may have (a read timeout, a reset, a 500, 502 or 504 from SES or a gateway; or SES took it
  and both the count and the note that it was taken failed, and the function died): the claim is
  kept until its lease runs out, then the redelivery sends again. That is the one case where a
  person may get the backup email twice, and it is our choice: the email is the last resort for
  an alert that did not arrive, and a lost one is worse than a second copy. It is logged as a
  warning.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError

from . import aws, clock, connector_store, dynamo, json_fields, masking, sqs_batch
from .sending import record as sms_record
from .stats import Delta
from .text import plain_line

logger = Logger()
LEASE_SECONDS = 60  # how long one invocation holds an email it is sending

# SES v2 answers that say it did not take the email: another try later is safe (SQS redelivers
# the record). Throttling by code; 429 and 503 by status, also from a gateway in front of SES.
NOT_TAKEN_CODES = {
    "TooManyRequestsException",
    "Throttling",
    "ThrottlingException",
    "LimitExceededException",
    "ServiceUnavailable",
}
NOT_TAKEN_STATUSES = {429, 503}

_TEXT = json_fields.Text(min_length=1, max_length=2000)
_FIELDS = {
    "smsId": _TEXT,
    "connectorId": _TEXT,
    "tenantId": _TEXT,
    "actionId": _TEXT,
    "to": _TEXT,
    "backupEmail": _TEXT,
    "emailConnectorId": json_fields.Text(min_length=1, max_length=2000, required=False, nullable=True),
    "message": json_fields.Text(required=False, default=""),
    "provider": _TEXT,
    "outcome": json_fields.Text(required=False, default="failed"),
    "errorCode": json_fields.Text(required=False, nullable=True),
    "errorKind": json_fields.Text(required=False, nullable=True),
    "reason": json_fields.Text(required=False, nullable=True),
    "failedAt": json_fields.Text(required=False, nullable=True),
}


@dataclass(frozen=True)
class FallbackMessage:
    """What the sender (or a receipt) queues for a recipient who is owed a backup email.
    Phone numbers arrive masked; no credentials. Other fields are ignored; checked by
    `json_fields`, so this function imports no pydantic."""

    smsId: str
    connectorId: str
    tenantId: str
    actionId: str
    to: str
    backupEmail: str
    provider: str
    emailConnectorId: str | None = None
    message: str = ""
    outcome: str = "failed"  # failed, unknown or undelivered
    errorCode: str | None = None
    errorKind: str | None = None
    reason: str | None = None
    failedAt: str | None = None

    @classmethod
    def parse(cls, body: str) -> FallbackMessage:
        """The message in an SQS record's body, or json_fields.Malformed."""
        return cls(**json_fields.parse(body, _FIELDS))


class NotDueYet(Exception):
    """The SMS's record does not owe this email yet (its state change is still being
    committed): SQS brings the message back."""


class Busy(Exception):
    """Another invocation is sending this email right now."""


def handle_batch(event: dict[str, Any], context: Any) -> sqs_batch.PartialBatchResponse:
    """Each email on its own: one that fails (or is not due yet, or busy) goes back alone."""
    return sqs_batch.each_record(event, lambda record: deliver(FallbackMessage.parse(record["body"])))


def deliver(fallback: FallbackMessage) -> str:
    """Send one backup email, at most once per SMS; answers what happened."""
    stored = sms_record.read(fallback.smsId)
    state = (stored or {}).get("emailState")
    if stored is None or state in ("sent", "rejected", "dropped"):
        return "done"  # already handled (or its record expired long ago)
    if state == "accepted":  # SES took it; only the count is missing
        _commit(_email_change(fallback, "accepted", "sent", Delta(at=_now(), fallback_sent=1)))
        return "counted"
    if state not in ("due", "queued", "sending"):
        raise NotDueYet(f"SMS {fallback.smsId} does not owe an email yet")
    if stored.get("state") == sms_record.DELIVERED and state in ("due", "queued"):
        # an SMS whose outcome was unknown, then a receipt showed it arrived: no email to send
        _commit(_email_change(fallback, state, "dropped", None))
        return "delivered"
    owner = uuid.uuid4().hex
    _claim(fallback.smsId, owner)
    sms_connector = connector_store.get(fallback.connectorId)
    if sms_connector is None:  # deleted since: nobody to report to, nothing to count
        logger.warning("fallback for a deleted connector dropped", extra={"connector_id": fallback.connectorId})
        _commit(_email_change(fallback, "sending", "dropped", None, owner=owner))
        return "dropped"
    email_id = sms_connector.get("emailConnectorId") or fallback.emailConnectorId
    email_connector = connector_store.get(email_id) if email_id else None
    if (
        email_connector is None
        or email_connector.get("type") != "email"
        or email_connector.get("tenantId") != fallback.tenantId
    ):
        return _rejected(
            fallback, owner, "no_email_connector", "the email connector for backup emails no longer exists"
        )
    try:
        answer = ses().send_email(
            FromEmailAddress=email_connector["from"],
            Destination={"ToAddresses": [fallback.backupEmail]},
            Content={
                "Simple": {
                    "Subject": {"Data": subject(sms_connector), "Charset": "UTF-8"},
                    "Body": {"Text": {"Data": body(fallback, sms_connector), "Charset": "UTF-8"}},
                }
            },
            EmailTags=[{"Name": "kind", "Value": "sms-fallback"}],
        )
    except (EndpointConnectionError, ConnectTimeoutError):
        _release(fallback.smsId, owner)  # the request never reached SES: safe to send again
        raise
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "Unknown")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in NOT_TAKEN_CODES or status in NOT_TAKEN_STATUSES:
            _release(fallback.smsId, owner)
            raise  # SQS brings the record back after the visibility timeout
        if status >= 500:  # 500, 502, 504: SES (or a gateway) may have taken it
            _answer_lost(fallback, f"HTTP {status}")
            raise
        return _rejected(fallback, owner, code, exc.response.get("Error", {}).get("Message", code))
    except Exception as exc:
        _answer_lost(fallback, type(exc).__name__)
        raise
    change = _email_change(
        fallback,
        "sending",
        "sent",
        Delta(at=_now(), fallback_sent=1),
        owner=owner,
        extra={"emailMessageId": answer.get("MessageId", "")},
    )
    try:
        _commit(change)
    except Exception:
        _note_accepted(fallback.smsId, owner)  # the redelivery counts it without sending again
        raise
    logger.info(
        "fallback email sent",
        extra={"connector_id": fallback.connectorId, "action_id": fallback.actionId, "recipient": fallback.to},
    )
    _metric("FallbackEmailsSent")
    return "sent"


def _answer_lost(fallback: FallbackMessage, error: str) -> None:
    """SES may have taken the email: the claim stays until its lease ends (module docstring)."""
    logger.warning(
        "SES gave no answer: the backup email is sent again when its lease ends, and may arrive twice",
        extra={"connector_id": fallback.connectorId, "action_id": fallback.actionId, "error_type": error},
    )


def ses() -> Any:
    """The SES client for SendEmail: its calls are never repeated by botocore (see above)."""
    return aws.client("sesv2", resent=False)


def _now() -> str:
    return clock.iso(clock.now())


def _claim(sms_id: str, owner: str) -> None:
    now = int(time.time())
    if not dynamo.update_if(  # never for an SMS a receipt has shown delivered meanwhile
        sms_record.key(sms_id),
        sets={"emailState": "sending", "emailOwner": owner, "emailLease": now + LEASE_SECONDS},
        condition="(emailState IN (:due, :queued) OR (emailState = :sending AND emailLease < :now))"
        " AND #state <> :delivered",
        condition_names={"#state": "state"},
        condition_values={
            ":due": "due",
            ":queued": "queued",
            ":sending": "sending",
            ":now": now,
            ":delivered": sms_record.DELIVERED,
        },
    ):
        raise Busy(f"the backup email of SMS {sms_id} is being sent elsewhere")


def _release(sms_id: str, owner: str) -> None:
    _set_if_mine(sms_id, owner, "queued")


def _note_accepted(sms_id: str, owner: str) -> None:
    try:
        _set_if_mine(sms_id, owner, "accepted")
    except Exception as exc:
        logger.warning("could not note an accepted email", extra={"error_type": type(exc).__name__})


def _set_if_mine(sms_id: str, owner: str, state: str) -> None:
    dynamo.update_if(  # False: the lease ran out and another invocation holds it now
        sms_record.key(sms_id),
        sets={"emailState": state},
        removes=("emailLease",),
        condition="emailState = :sending AND emailOwner = :me",
        condition_values={":sending": "sending", ":me": owner},
    )


def _email_change(
    fallback: FallbackMessage,
    was: str,
    becomes: str,
    delta: Delta | None,
    *,
    owner: str | None = None,
    log: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> sms_record.Write:
    condition = "emailState = :was" + (" AND emailOwner = :me" if owner else "")
    values: dict[str, Any] = {":was": was} | ({":me": owner} if owner else {})
    change = sms_record.Change(
        sets={"emailState": becomes, "emailAt": _now()} | (extra or {}),
        removes=("emailLease",),
        condition=condition,
        condition_values=values,
        delta=delta,
        log=log,
    )
    return sms_record.change_write(fallback.smsId, fallback.connectorId, change)


def _commit(write: sms_record.Write) -> None:
    if sms_record.commit([write]):
        raise RuntimeError("the backup email's state change could not be written")


def _rejected(fallback: FallbackMessage, owner: str, code: str, reason: str) -> str:
    at = _now()
    text = f"backup email to {masking.email(fallback.backupEmail)} failed: {code}: {reason}"
    log = sms_record.log_item(
        fallback.connectorId,
        at,
        "error",
        text,
        provider="ses",
        recipient=None,
        code=code,
        action_id=fallback.actionId,
        kind="email",
    )
    delta = Delta(at=at, fallback_failed=1, last_error=text)
    _commit(_email_change(fallback, "sending", "rejected", delta, owner=owner, log=log))
    logger.error(
        "fallback email failed",
        extra={
            "connector_id": fallback.connectorId,
            "tenant_id": fallback.tenantId,
            "provider": "ses",
            "error_code": code,
            "error_message": masking.text(reason),
            "recipient": fallback.to,
            "action_id": fallback.actionId,
        },
    )
    _metric("FallbackEmailsFailed")
    return "rejected"


def _metric(name: str) -> None:
    metrics = EphemeralMetrics()  # one EMF line: fallbacks are rare, there is nothing to aggregate
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()


# --- the email ------------------------------------------------------------------------------

_REASONS = {
    "invalid_number": "the phone number was rejected as not valid",
    "opted_out": "the phone number has opted out of messages from this sender (it replied STOP)",
    "unreachable": "the phone number could not be reached",
    "account": "the SMS provider refused the connector's account or credentials",
    "too_long": "the message is too long to send as an SMS",
    "unavailable": "the SMS provider was unavailable and retrying did not help",
    "unknown": "the SMS provider did not answer, so we cannot tell whether the SMS was sent",
    "undelivered": "the SMS was sent but the phone network could not deliver it",
}
_CODE_REASONS = {
    "21211": "invalid_number",
    "40310": "invalid_number",
    "10016": "invalid_number",
    "21614": "invalid_number",
    "40012": "invalid_number",
    "21610": "opted_out",
    "40300": "opted_out",
    "21612": "unreachable",
    "21635": "unreachable",
    "30006": "unreachable",
    "message_too_long": "too_long",
    "21617": "too_long",
}


def explain(fallback: FallbackMessage) -> str:
    """Why the SMS did not arrive, in words a person understands, with the provider's own words after."""
    key = {"unknown": "unknown", "undelivered": "undelivered"}.get(fallback.outcome)
    key = key or _CODE_REASONS.get(fallback.errorCode or "")
    if key is None:
        if fallback.errorKind == "config" or fallback.errorCode in ("401", "402", "403"):
            key = "account"
        elif fallback.errorKind == "retry" or (fallback.errorCode or "").startswith("5"):
            key = "unavailable"
    words = _REASONS[key] if key else "the SMS provider did not accept the message"
    detail = f" ({fallback.provider} said: {fallback.reason})" if fallback.reason else ""
    return words + detail


def subject(sms_connector: dict[str, Any]) -> str:
    return plain_line(f"SMS could not be delivered: alert from {sms_connector['name']}")[:200]


def body(fallback: FallbackMessage, sms_connector: dict[str, Any]) -> str:
    return (
        f"{fallback.message}\n\n"
        "---\n"
        f"This message was meant for you as an SMS to {fallback.to}, but the SMS did not arrive:\n"
        f"{explain(fallback)}.\n\n"
        f"Connector: {plain_line(sms_connector['name'])} ({fallback.provider})\n"
        f"At: {fallback.failedAt}\n"
        f"Rule action: {fallback.actionId}\n"
    )
