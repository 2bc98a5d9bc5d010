"""Every route of the HTTP API in one resolver: for the OpenAPI document and Swagger UI."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from ..api import create_app, enable_swagger
from . import connectors, preview, sending, stats


def full_app() -> APIGatewayHttpResolver:
    app = create_app(connectors.router, sending.router, stats.router, preview.router)
    enable_swagger(app)
    return app
