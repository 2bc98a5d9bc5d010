"""The test-send route."""

from __future__ import annotations

import time
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.event_handler.router import Router

from .. import masking, sending
from ..api import responses, tenant_of
from ..models import SendResult, TestSendIn, TestSendOut

router = Router()


@router.post(
    "/connectors/<connectorId>/test",
    summary="Send a test SMS now, to all recipients or to one; answers each recipient's outcome",
    tags=["sending"],
    responses=responses(200, "Each recipient's outcome"),
)
def test_send(connectorId: str, body: Annotated[TestSendIn | None, Body()] = None) -> TestSendOut:
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
