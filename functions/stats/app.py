"""Statistics and error logs behind the HTTP API: wiring only."""

from sms_connector.api import create_app, lambda_handler
from sms_connector.routes.stats import router

app = create_app(router)
handler = lambda_handler(app)
