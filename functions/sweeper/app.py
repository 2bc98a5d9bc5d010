"""The scheduled sweep (every 5 minutes): receipt deadlines, and the summaries of what the
hourly limit held back: wiring only."""

from typing import Any

from aws_lambda_powertools import Logger

from sms_connector.limits import summaries
from sms_connector.receipts.deadline import sweep

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    remaining = context.get_remaining_time_in_millis() / 1000
    moved = sweep(seconds=max(1.0, (remaining - 10) / 2))
    if moved:
        logger.info("receipt deadlines passed", extra={"no_receipt": moved})
    summed = summaries(seconds=max(1.0, context.get_remaining_time_in_millis() / 1000 - 10))
    return {"noReceipt": moved, "summaries": summed}
