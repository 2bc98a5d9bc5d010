"""Rule actions from the send queue: wiring only."""

from typing import Any

from aws_lambda_powertools import Logger

from sms_connector.rule_actions import handle_batch

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> Any:
    return handle_batch(event, context)
