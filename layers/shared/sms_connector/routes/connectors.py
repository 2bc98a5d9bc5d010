"""Connector CRUD routes."""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.event_handler.router import Router

from .. import connectors
from ..api import responses, tenant_of
from ..models import ConnectorIn, ConnectorOut, ConnectorPage, ConnectorUpdate

router = Router()
_TAGS = ["connectors"]


@router.post(
    "/connectors", status_code=201, summary="Create a connector", tags=_TAGS, responses=responses(201, "The connector")
)
def create_connector(body: Annotated[ConnectorIn, Body()]) -> ConnectorOut:
    return connectors.create(tenant_of(router), body)


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
    responses=responses(200, "The connector as stored"),
)
def replace_connector(connectorId: str, body: Annotated[ConnectorUpdate, Body()]) -> ConnectorOut:
    return connectors.replace(tenant_of(router), connectorId, body)


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
