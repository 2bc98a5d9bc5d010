"""The statistics panel and the error log of a connector."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import Router
from pydantic.json_schema import SkipJsonSchema

from .. import connector_store, error_log, stats
from ..api import NEXT_PAGE_HELP, responses, tenant_of
from ..models.stats import LogPage, StatsOut

router = Router()


@router.get(
    "/connectors/<connectorId>/stats",
    summary="The statistics panel",
    operation_id="get_stats",
    tags=["statistics"],
    responses=responses(200, "The statistics panel", connector=True),
)
def get_stats(connectorId: str) -> StatsOut:
    return StatsOut.model_validate(stats.panel_of(tenant_of(router), connectorId))


@router.get(
    "/connectors/<connectorId>/logs",
    summary="The connector's error log, newest first",
    operation_id="get_logs",
    tags=["statistics"],
    responses=responses(200, "A page of the error log", connector=True),
)
def get_logs(
    connectorId: str,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    nextToken: Annotated[str | SkipJsonSchema[None], Query(max_length=2048, description=NEXT_PAGE_HELP)] = None,
) -> LogPage:
    connector = connector_store.owned(tenant_of(router), connectorId)
    items, token = error_log.page(connector["id"], limit, nextToken)
    return LogPage.model_validate({"items": items, "nextToken": token})
