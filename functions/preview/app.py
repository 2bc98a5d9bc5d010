"""The message preview (POST /preview) behind the HTTP API: wiring only.

A function of its own, because the rule editor calls it on every pause in typing and its cold
start is a user waiting: it imports neither boto3 nor the connector code (only the resolver,
the models and the segment count), and it has no AWS permission at all, since it reads nothing.
"""

from sms_connector.api import create_app, lambda_handler
from sms_connector.routes.preview import router

app = create_app(router)
handler = lambda_handler(app)
