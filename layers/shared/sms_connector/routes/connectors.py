"""Connector CRUD routes."""

from __future__ import annotations

import time
from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.event_handler.router import Router
from pydantic import WithJsonSchema
from pydantic.json_schema import SkipJsonSchema

from .. import connector_store, connectors
from ..api import NEXT_PAGE_HELP, responses, tenant_of
from ..models.connectors import ConnectorIn, ConnectorOut, ConnectorPage, ConnectorUpdate, VerifyOut

router = Router()
_TAGS = ["connectors"]
_UNAVAILABLE = (
    "With verify: true, the provider could not be asked (or, for an email connector, SES could not say "
    "whether the sender is verified); nothing was saved"
)


def _deadline() -> float:
    """When a provider call must be over (time.monotonic()): API Gateway gives up after 29 s,
    and the secret and the connector still have to be written after the check."""
    remaining = router.lambda_context.get_remaining_time_in_millis() / 1000
    return time.monotonic() + min(remaining, 29) - 2


@router.post(
    "/connectors",
    status_code=201,
    summary="Create a connector (with verify: true, only once the provider accepted the credentials)",
    operation_id="create_connector",
    tags=_TAGS,
    responses=responses(201, "The connector", body=True, errors={503: _UNAVAILABLE}),
)
def create_connector(body: Annotated[ConnectorIn, Body()]) -> ConnectorOut:
    return connectors.create(tenant_of(router), body, _deadline())


@router.get(
    "/connectors",
    summary="List this tenant's connectors",
    operation_id="list_connectors",
    tags=_TAGS,
    responses=responses(200, "A page of connectors"),
)
# A query parameter left out is absent, never null: the document says so (no "or null"), and a
# generated client types it as the value alone.
def list_connectors(
    type: Annotated[
        Literal["sms", "email"] | None,
        WithJsonSchema({"type": "string", "enum": ["sms", "email"]}),
        Query(description="only connectors of this type"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    nextToken: Annotated[str | SkipJsonSchema[None], Query(max_length=2048, description=NEXT_PAGE_HELP)] = None,
) -> ConnectorPage:
    return connectors.list_page(tenant_of(router), type, limit, nextToken)


@router.get(
    "/connectors/<connectorId>",
    summary="Read one connector",
    operation_id="get_connector",
    tags=_TAGS,
    responses=responses(200, "The connector", connector=True),
)
def get_connector(connectorId: str) -> ConnectorOut:
    return connectors.show(connector_store.owned(tenant_of(router), connectorId))


@router.put(
    "/connectors/<connectorId>",
    summary="Replace a connector's settings (credential fields left out keep their stored values)",
    operation_id="replace_connector",
    tags=_TAGS,
    responses=responses(200, "The connector as stored", body=True, connector=True, errors={503: _UNAVAILABLE}),
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
    operation_id="verify_connector",
    tags=_TAGS,
    responses=responses(
        200,
        "The provider's verdict, and the balance where it gives one",
        connector=True,
        errors={503: "The provider could not be reached or did not answer"},
    ),
)
def verify_connector(connectorId: str) -> VerifyOut:
    return connectors.verify(tenant_of(router), connectorId, _deadline())


@router.delete(
    "/connectors/<connectorId>",
    status_code=204,
    summary="Delete a connector, its secret (recoverable for a while), counters and log",
    operation_id="delete_connector",
    tags=_TAGS,
    responses=responses(
        204,
        "Deleted",
        connector=True,
        errors={409: "An email connector that SMS connectors still use; nothing changed"},
    ),
)
def delete_connector(connectorId: str) -> Response[None]:
    connectors.delete(tenant_of(router), connectorId)
    return Response(status_code=204)
