"""Connector CRUD routes."""

from __future__ import annotations

import time
from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.event_handler.router import Router

from .. import connectors
from ..api import responses, tenant_of
from ..models import ConnectorIn, ConnectorOut, ConnectorPage, ConnectorUpdate, VerifyOut

router = Router()
_TAGS = ["connectors"]


def _deadline() -> float:
    """When a provider call must be over (time.monotonic()): API Gateway gives up after 29 s,
    and the secret and the connector still have to be written after the check."""
    remaining = router.lambda_context.get_remaining_time_in_millis() / 1000
    return time.monotonic() + min(remaining, 29) - 2


@router.post(
    "/connectors",
    status_code=201,
    summary="Create a connector (with verify: true, only once the provider accepted the credentials)",
    tags=_TAGS,
    responses=responses(201, "The connector", provider=True),
)
def create_connector(body: Annotated[ConnectorIn, Body()]) -> ConnectorOut:
    return connectors.create(tenant_of(router), body, _deadline())


@router.get(
    "/connectors", summary="List this tenant's connectors", tags=_TAGS, responses=responses(200, "A page of connectors")
)
def list_connectors(
    type: Annotated[Literal["sms", "email"] | None, Query(description="only connectors of this type")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    nextToken: Annotated[str | None, Query(max_length=2048)] = None,
) -> ConnectorPage:
    return connectors.list_page(tenant_of(router), type, limit, nextToken)


@router.get(
    "/connectors/<connectorId>", summary="Read one connector", tags=_TAGS, responses=responses(200, "The connector")
)
def get_connector(connectorId: str) -> ConnectorOut:
    return connectors.show(connectors.get(tenant_of(router), connectorId))


@router.put(
    "/connectors/<connectorId>",
    summary="Replace a connector's settings (credential fields left out keep their stored values)",
    tags=_TAGS,
    responses=responses(200, "The connector as stored", provider=True),
)
def replace_connector(connectorId: str, body: Annotated[ConnectorUpdate, Body()]) -> ConnectorOut:
    return connectors.replace(tenant_of(router), connectorId, body, _deadline())


# Served by the connectors function: it already reads the connectors' secrets, and the checks
# that `"verify": true` makes on create and update run here anyway (one function with the
# provider adapters' account checks, no new permission). Its timeout covers a check (connect
# 3 s + PROVIDER_READ_TIMEOUT per call, two calls at Twilio) within API Gateway's 29 s.
@router.post(
    "/connectors/<connectorId>/verify",
    summary="Check the stored credentials with the provider now (a free account call)",
    tags=_TAGS,
    responses=responses(200, "The provider's verdict, and the balance where it gives one", provider=True),
)
def verify_connector(connectorId: str) -> VerifyOut:
    return connectors.verify(tenant_of(router), connectorId, _deadline())


@router.delete(
    "/connectors/<connectorId>",
    status_code=204,
    summary="Delete a connector, its secret (recoverable for a while), counters and log",
    tags=_TAGS,
    responses=responses(204, "Deleted"),
)
def delete_connector(connectorId: str) -> Response[None]:
    connectors.delete(tenant_of(router), connectorId)
    return Response(status_code=204)
