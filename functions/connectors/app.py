"""Connector CRUD behind the HTTP API: wiring only."""

from sms_connector.api import create_app, lambda_handler
from sms_connector.routes.connectors import router

app = create_app(router)
handler = lambda_handler(app)
