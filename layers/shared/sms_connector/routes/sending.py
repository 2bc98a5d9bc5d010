"""The test-send route."""

from __future__ import annotations

import time
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.event_handler.router import Router

from .. import masking, sending
from ..api import responses, tenant_of
from ..models.sending import SendResult, TestSendIn, TestSendOut

router = Router()


@router.post(
    "/connectors/<connectorId>/test",
    summary="Send a test SMS now, to all recipients or to one; answers each recipient's outcome",
    operation_id="test_send",
    tags=["sending"],
    responses=responses(
        200,
        "Each recipient's outcome",
        body=True,
        connector=True,
        errors={429: "This connector's test SMS for this hour are used up"},
    ),
)
def test_send(
    connectorId: str,
    # An optional body, documented as TestSendIn alone (not "TestSendIn or null"), so that a
    # generated client can leave it out.
    body: Annotated[TestSendIn, Body()] = None,  # type: ignore[assignment]
) -> TestSendOut:
    body = body or TestSendIn()
    remaining = router.lambda_context.get_remaining_time_in_millis() / 1000
    # API Gateway gives up after 29 s: no call starts that could end later than that, less
    # the time recording needs; recipients not reached are answered as not attempted.
    deadline = time.monotonic() + min(remaining, 29) - 3
    outcomes = sending.test_send(tenant_of(router), connectorId, body.to, body.message, deadline)
    return TestSendOut(
        results=[
            SendResult(to=o.to, status=o.status, error=masking.text(o.error) if o.error else None)  # type: ignore[arg-type]
            for o in outcomes
        ]
    )
