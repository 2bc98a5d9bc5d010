"""Backup emails owed by SMS records: the message for the fallback queue, and queueing it.

A message names its SMS (`smsId`): the fallback function guards the email on that record.
It carries the text to send and the recipient's number masked; no credentials.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aws_lambda_powertools import Logger

from .. import aws, connector_store, dynamo, masking
from ..config import settings
from . import record
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


def owed(stored: dict[str, Any]) -> dict[str, Any]:
    """The fields `message` needs, from an SMS record whose backup email is due."""
    return stored | {
        "outcome": str(stored.get("state", "")).lower(),
        "reason": stored.get("errorMessage"),
        "at": stored.get("receiptAt") or stored.get("at"),
    }


def queue_due(seconds: float = 20.0) -> int:
    """Queue the backup emails that are due but were never queued (the queue failed when they
    became due, or a receipt came before its outcome was recorded). Answers how many; stops
    after `seconds` (the next sweep goes on). Each is marked queued once; a message queued twice
    still sends one email (the fallback claims it on the record)."""
    until = time.monotonic() + seconds
    done = 0
    start: dict[str, Any] | None = None
    while time.monotonic() < until:
        query: dict[str, Any] = {
            "TableName": dynamo.table(),
            "IndexName": "gsi2",
            "KeyConditionExpression": "gsi2pk = :due",
            "ExpressionAttributeValues": {":due": {"S": record.EMAIL_DUE}},
            "Limit": 10,
        }
        if start:
            query["ExclusiveStartKey"] = start
        answer = dynamo.client().query(**query)
        # the index holds the keys and connectorId only: read the records themselves
        keys = [{"pk": i["pk"], "sk": i["sk"]} for i in answer.get("Items", [])]
        items = [dynamo.from_item(i) for i in dynamo.batch_get(keys, consistent=True)] if keys else []
        connectors = connector_store.get_many({str(i["connectorId"]) for i in items})
        due = [(i, connectors.get(str(i["connectorId"]))) for i in items]
        owed_now = [(i, c) for i, c in due if c is not None and _still_owed(i)]
        queued = queue([message(c, owed(i)) for i, c in owed_now])
        writes = [
            record.change_write(str(i["pk"]).removeprefix("SMS#"), c["id"], record.email_queued())
            for (i, c), ok in zip(owed_now, queued, strict=True)
            if ok
        ]
        record.commit(writes)
        done += len(writes)
        for i, c in due:
            if c is None:  # its connector was deleted: no email connector to send it with
                logger.warning("backup email dropped: its connector was deleted")
                _forget(str(i["pk"]))
            elif not _still_owed(i):  # the fallback has it already, or a receipt showed it arrived
                _forget(str(i["pk"]))
        start = answer.get("LastEvaluatedKey")
        if not start:
            break
    return done


def _still_owed(stored: dict[str, Any]) -> bool:
    return stored.get("emailState") == "due" and stored.get("state") != record.DELIVERED


def _forget(pk: str) -> None:
    """Out of the due emails' index (only if it is still there as one)."""
    dynamo.update_if(
        record.key(pk.removeprefix("SMS#")),
        removes=("gsi2pk", "gsi2sk"),
        condition="gsi2pk = :due",
        condition_values={":due": record.EMAIL_DUE},
    )


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
