"""Email fallback: a recipient whose SMS failed gets the message by email, sent with SES v2.

Each message on the fallback queue is handled once (Powertools idempotency keyed on its
`fallbackId`, stored in the service table under its own partition key). SES throttling is
retried through SQS; a permanent SES rejection, or an email connector that no longer
exists, is written to the SMS connector's error log and statistics and not retried.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, StringConstraints

from . import aws, clock, connector_store, dynamo, error_log
from .config import settings
from .phone import mask

logger = Logger()
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

# SES v2 errors worth another try later (SQS redelivers the record); any other error is final.
RETRYABLE = {
    "TooManyRequestsException",
    "Throttling",
    "ThrottlingException",
    "ServiceUnavailable",
    "InternalFailure",
    "LimitExceededException",
}

Text = Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class FallbackMessage(BaseModel):
    """What the sender queues for a failed recipient with a backup email. No credentials."""

    model_config = ConfigDict(extra="ignore")

    fallbackId: Text
    connectorId: Text
    tenantId: Text
    actionId: Text
    to: Text
    backupEmail: Text
    emailConnectorId: Text | None = None
    message: Text
    provider: Text
    errorCode: str | None = None
    errorKind: str | None = None
    reason: str | None = None
    failedAt: Text


@cache
def _persistence() -> DynamoDBPersistenceLayer:
    return DynamoDBPersistenceLayer(
        table_name=settings().table_name,
        key_attr="pk",
        sort_key_attr="sk",
        static_pk_value="IDEMPOTENCY#fallback",
        expiry_attr="expiresAt",  # the table's TTL attribute: records clean themselves up
        boto3_client=aws.client("dynamodb"),
    )


_idempotency_config = IdempotencyConfig(event_key_jmespath="fallbackId", expires_after_seconds=14 * 24 * 3600)


def handle_batch(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    _idempotency_config.register_lambda_context(context)

    def record_handler(record: SQSRecord) -> Any:
        message = FallbackMessage.model_validate_json(record.body)
        return deliver(message=message.model_dump())

    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)


def deliver(message: dict[str, Any]) -> dict[str, Any]:
    """Send one fallback email, at most once per fallbackId."""
    return _idempotent_deliver()(message=message)


@cache
def _idempotent_deliver() -> Any:
    # Built on first use, not at import: the persistence layer needs the settings and a client.
    return idempotent_function(
        _deliver, data_keyword_argument="message", persistence_store=_persistence(), config=_idempotency_config
    )


def _deliver(message: dict[str, Any]) -> dict[str, Any]:
    fallback = FallbackMessage.model_validate(message)
    sms_connector = connector_store.get(fallback.connectorId)
    if sms_connector is None:  # deleted since: nobody to report to, nothing to count
        logger.warning(
            "fallback for a deleted connector dropped",
            extra={"connector_id": fallback.connectorId, "action_id": fallback.actionId},
        )
        return {"status": "dropped"}
    email_id = sms_connector.get("emailConnectorId") or fallback.emailConnectorId
    email_connector = connector_store.get(email_id) if email_id else None
    if (
        email_connector is None
        or email_connector.get("type") != "email"
        or (email_connector.get("tenantId") != fallback.tenantId)
    ):
        return _failed(fallback, "no_email_connector", "the email connector for backup emails no longer exists")
    try:
        answer = aws.client("sesv2").send_email(
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
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "Unknown")
        if code in RETRYABLE:
            raise  # SQS brings the record back after the visibility timeout
        return _failed(fallback, code, exc.response.get("Error", {}).get("Message", code))
    _count(fallback.connectorId, sent=True)
    logger.info(
        "fallback email sent",
        extra={
            "connector_id": fallback.connectorId,
            "tenant_id": fallback.tenantId,
            "action_id": fallback.actionId,
            "recipient": mask(fallback.to),
        },
    )
    return {"status": "sent", "messageId": answer.get("MessageId")}


def _failed(fallback: FallbackMessage, code: str, reason: str) -> dict[str, Any]:
    at = clock.iso(clock.now())
    text = f"backup email to {mask_email(fallback.backupEmail)} failed: {code}: {reason}"
    dynamo.client().put_item(
        TableName=dynamo.table(),
        Item=error_log.entry_item(
            fallback.connectorId,
            at=at,
            level="error",
            message=text,
            provider="ses",
            recipient=fallback.to,
            error_code=code,
            action_id=fallback.actionId,
            kind="email",
        ),
    )
    _count(fallback.connectorId, sent=False, error=text, at=at)
    logger.error(
        "fallback email failed",
        extra={
            "connector_id": fallback.connectorId,
            "tenant_id": fallback.tenantId,
            "provider": "ses",
            "error_code": code,
            "error_message": reason,
            "recipient": mask(fallback.to),
            "action_id": fallback.actionId,
        },
    )
    return {"status": "failed", "error": code}


def _count(connector_id: str, *, sent: bool, error: str | None = None, at: str | None = None) -> None:
    values: dict[str, Any] = {":one": {"N": "1"}}
    expression = f"ADD {'fallbackSent' if sent else 'fallbackFailed'} :one"
    if error and at:
        expression += " SET lastError = :e"
        values[":e"] = {"M": {"message": {"S": error}, "at": {"S": at}}}
    dynamo.client().update_item(
        TableName=dynamo.table(),
        Key={"pk": {"S": connector_store.pk(connector_id)}, "sk": {"S": "STATS"}},
        UpdateExpression=expression,
        ExpressionAttributeValues=values,
    )
    metrics = EphemeralMetrics()  # one EMF line: fallbacks are rare, there is nothing to aggregate
    metrics.add_metric(name="FallbackEmailsSent" if sent else "FallbackEmailsFailed", unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()


# --- the email ------------------------------------------------------------------------------

_REASONS = {
    "invalid_number": "the phone number was rejected as not valid",
    "opted_out": "the phone number has opted out of messages from this sender (it replied STOP)",
    "unreachable": "the phone number could not be reached",
    "account": "the SMS provider refused the connector's account or credentials",
    "too_long": "the message is too long to send as an SMS",
    "unavailable": "the SMS provider was unavailable and retrying did not help",
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
    """Why the SMS failed, in words a person understands, with the provider's own words after."""
    key = _CODE_REASONS.get(fallback.errorCode or "")
    if key is None:
        if fallback.errorKind == "config" or fallback.errorCode in ("401", "402", "403"):
            key = "account"
        elif fallback.errorKind == "retry" or (fallback.errorCode or "").startswith("5"):
            key = "unavailable"
    words = _REASONS[key] if key else "the SMS provider did not accept the message"
    detail = f" ({fallback.provider} said: {fallback.reason})" if fallback.reason else ""
    return words + detail


def subject(sms_connector: dict[str, Any]) -> str:
    return f"SMS could not be delivered: alert from {sms_connector['name']}"[:200]


def body(fallback: FallbackMessage, sms_connector: dict[str, Any]) -> str:
    return (
        f"{fallback.message}\n\n"
        "---\n"
        f"This message was meant for you as an SMS to {fallback.to}, but the SMS could not be delivered:\n"
        f"{explain(fallback)}.\n\n"
        f"Connector: {sms_connector['name']} ({fallback.provider})\n"
        f"Failed at: {fallback.failedAt}\n"
        f"Rule action: {fallback.actionId}\n"
    )


def mask_email(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"
