"""Delivery receipts from the providers (no JWT: each provider's own proof): wiring only."""

from typing import Any

from aws_lambda_powertools import Logger

from sms_connector.receipts.route import handle

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(event, context)
