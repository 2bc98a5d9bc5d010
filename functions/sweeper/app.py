"""The scheduled sweep (every 5 minutes): receipt deadlines, the summaries of what the
hourly limit held back, and backup emails whose queueing failed: wiring only."""

from typing import Any

from aws_lambda_powertools import Logger

from sms_connector.limits import summaries
from sms_connector.receipts.deadline import sweep
from sms_connector.sending.emails import queue_due

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    remaining = context.get_remaining_time_in_millis() / 1000
    moved = sweep(seconds=max(1.0, (remaining - 10) / 2))
    if moved:
        logger.info("receipt deadlines passed", extra={"no_receipt": moved})
    emails = queue_due(seconds=5.0)
    if emails:
        logger.info("backup emails queued late", extra={"emails": emails})
    summed = summaries(seconds=max(1.0, context.get_remaining_time_in_millis() / 1000 - 10))
    return {"noReceipt": moved, "emailsQueued": emails, "summaries": summed}
