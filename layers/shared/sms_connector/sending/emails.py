"""Backup emails owed by SMS records: the message for the fallback queue, and queueing it.

A message names its SMS (`smsId`): the fallback function guards the email on that record.
It carries the text to send and the recipient's number masked; no credentials.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger

from .. import aws, masking
from ..config import settings
from .record import sms_id

logger = Logger()


def message(connector: dict[str, Any], sms: dict[str, Any]) -> dict[str, Any]:
    """The fallback message for the SMS `sms` (record fields: actionId, to, backupEmail, text,
    outcome, errorCode, errorKind, reason, at) of `connector`."""
    return {
        "smsId": sms_id(connector["id"], sms["actionId"], sms["to"]),
        "connectorId": connector["id"],
        "tenantId": connector["tenantId"],
        "actionId": sms["actionId"],
        "to": masking.number(sms["to"]),
        "backupEmail": sms["backupEmail"],
        "emailConnectorId": connector.get("emailConnectorId"),
        "message": sms.get("text") or "",
        "provider": connector["provider"],
        "outcome": sms.get("outcome") or "failed",
        "errorCode": sms.get("errorCode"),
        "errorKind": sms.get("errorKind"),
        "reason": masking.text(sms.get("reason") or ""),
        "failedAt": sms.get("at"),
    }


def queue(messages: list[dict[str, Any]]) -> list[bool]:
    """Put `messages` on the fallback queue (10 per call); answers which were queued."""
    url = settings().fallback_queue_url
    if not url:
        return [False] * len(messages)
    queued = [False] * len(messages)
    for start in range(0, len(messages), 10):
        entries = [
            {"Id": str(i), "MessageBody": json.dumps(messages[i])} for i in range(start, min(start + 10, len(messages)))
        ]
        try:
            answer = aws.client("sqs").send_message_batch(QueueUrl=url, Entries=entries)
            if answer.get("Failed"):
                failed = {f["Id"] for f in answer["Failed"]}
                answer = aws.client("sqs").send_message_batch(
                    QueueUrl=url, Entries=[e for e in entries if e["Id"] in failed]
                )
            failed = {f["Id"] for f in answer.get("Failed", [])}
        except Exception as exc:  # the record keeps the email as due: a redelivery queues it
            logger.warning("could not queue backup emails", extra={"error_type": type(exc).__name__})
            failed = {e["Id"] for e in entries}
        for e in entries:
            queued[int(e["Id"])] = e["Id"] not in failed
    return queued
