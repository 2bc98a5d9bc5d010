"""The send queue's consumer: parse a batch of rule actions, send them, report partial failures."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger

from . import sqs_batch
from .json_fields import Malformed
from .sending import RuleAction, send_rule_actions

logger = Logger()
SAFETY_SECONDS = 3.0  # left at the end of the invocation for recording what happened (DESIGN.md: at most 3 s)


def handle_batch(event: dict[str, Any], context: Any) -> sqs_batch.PartialBatchResponse:
    """Sends the whole batch at once (concurrently), then answers which records failed: a
    malformed or unknown-connector record fails alone and goes back to the queue (and, after
    maxReceiveCount, to the DLQ). Every failed record is reported, even when all failed,
    rather than raised: the same retries, clearer logs."""
    failures: dict[str, Exception] = {}
    actions = []
    for record in sqs_batch.records(event):
        message_id = record["messageId"]
        try:
            action = RuleAction.parse(record["body"])
        except Malformed as exc:
            # Never log the body: it holds message text. Locations and types say what is wrong.
            problems = [{"field": ".".join(str(p) for p in e["loc"]), "type": e["type"]} for e in exc.errors()]
            logger.warning("malformed rule action", extra={"message_id": message_id, "problems": problems})
            failures[message_id] = exc
            continue
        actions.append((message_id, action.actionId or message_id, action))
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - SAFETY_SECONDS
    failures |= send_rule_actions(actions, deadline)
    for message_id, failure in failures.items():
        if not isinstance(failure, Malformed):
            # Our own exceptions say what happened in our words; others only by their type.
            reason = str(failure) if type(failure).__module__.startswith("sms_connector") else type(failure).__name__
            logger.warning("rule action not done", extra={"message_id": message_id, "reason": reason})
    return sqs_batch.partial_response(event, failures.keys())
