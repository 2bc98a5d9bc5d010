"""Serves the OpenAPI document and Swagger UI at /swagger (no token needed): wiring only."""

from sms_connector.api import lambda_handler
from sms_connector.routes.everything import full_app

app = full_app()
handler = lambda_handler(app)
