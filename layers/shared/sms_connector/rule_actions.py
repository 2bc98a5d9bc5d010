"""The send queue's consumer: parse a batch of rule actions, send them, report partial failures."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from .json_fields import Malformed
from .sending import RuleAction, send_rule_actions

logger = Logger()
# Report every failed record, even when all failed, rather than raising: same retries, clearer logs.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
SAFETY_SECONDS = 3.0  # left at the end of the invocation for recording what happened (DESIGN.md: at most 3 s)


def handle_batch(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    """Sends the whole batch at once (concurrently), then lets Powertools build the partial
    batch response from each record's result: a malformed or unknown-connector record fails
    alone and goes back to the queue (and, after maxReceiveCount, to the DLQ)."""
    failures: dict[str, Exception] = {}
    actions = []
    for record in event.get("Records", []):
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

    def result_of(record: SQSRecord) -> None:
        if record.message_id in failures:
            raise failures[record.message_id]

    return process_partial_response(event=event, record_handler=result_of, processor=processor, context=context)
