"""Shared fixtures: AWS through moto, tables built from template.yaml, API events."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

# Set before anything imports boto3 clients: no test may reach real AWS.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-north-1",
        "AWS_REGION": "eu-north-1",
        "TABLE_NAME": "sms-connector-test",
        "TENANT_CLAIM": "tenant_id",
        "SECRET_PREFIX": "sms-connector/test/",
        "POWERTOOLS_SERVICE_NAME": "sms-connector",
        "POWERTOOLS_METRICS_NAMESPACE": "SmsConnector",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)

from devstack import resources
from devstack.apigw import http_event
from devstack.lambda_context import LambdaContext
from sms_connector import aws, config, credentials


def create_tables() -> resources.Stack:
    """The template's table and queues, created in moto (the template is the one truth)."""
    return resources.create(
        os.environ["AWS_DEFAULT_REGION"], resources.default_parameters(), table_name=os.environ["TABLE_NAME"]
    )


@pytest.fixture
def stack() -> Iterator[resources.Stack]:
    """A fresh moto account with the template's resources; cached clients and caches reset."""
    with mock_aws():
        aws.reset()
        config.reset()
        credentials.forget()
        yield create_tables()
        aws.reset()
        config.reset()
        credentials.forget()


@pytest.fixture
def aws_env(stack: resources.Stack) -> None:
    return None


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext(function_name="test")


class Api:
    """Calls an API handler the way API Gateway would, as one tenant."""

    def __init__(self, handler: Any, tenant: str | None) -> None:
        self.handler = handler
        self.tenant = tenant

    def __call__(self, method: str, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
        import json

        claims = kwargs.pop("claims", {"tenant_id": self.tenant} if self.tenant else {})
        event = http_event(method, path, body=body, claims=claims, **kwargs)
        answer = self.handler(event, LambdaContext(function_name="api"))
        payload = json.loads(answer["body"]) if answer.get("body") else None
        return answer["statusCode"], payload

    def as_tenant(self, tenant: str | None) -> Api:
        return Api(self.handler, tenant)


@pytest.fixture
def connectors_api(aws_env: None) -> Api:
    from devstack.handlers import load

    return Api(load("ConnectorsFunction"), "tenant-a")


@pytest.fixture
def sim(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The provider simulator on a free port, with the provider origins pointing at it."""
    from devstack.simulators import ProviderSimulator

    with ProviderSimulator() as simulator:
        for name in ("ELKS46_API_URL", "TELNYX_API_URL", "TWILIO_API_URL"):
            monkeypatch.setenv(name, simulator.url)
        simulator.add_elks46_account("your_46elks_username", "your_46elks_password")
        simulator.add_telnyx_key("your_telnyx_api_key")
        simulator.add_twilio_account("ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "your_auth_token")
        config.reset()
        yield simulator
    config.reset()


@pytest.fixture
def fallback_queue(stack: resources.Stack, monkeypatch: pytest.MonkeyPatch) -> str:
    url = stack.refs["FallbackQueue"]
    monkeypatch.setenv("FALLBACK_QUEUE_URL", url)
    config.reset()
    return url


@pytest.fixture
def sender(sim: Any, fallback_queue: str) -> Any:
    """Calls the sender function with an SQS batch; answers its batchItemFailures ids."""
    from devstack.handlers import load
    from devstack.sqs import sqs_event, sqs_record

    handler = load("SenderFunction")

    def send(*bodies: Any, message_ids: list[str] | None = None) -> list[str]:
        records = [sqs_record(b, message_id=(message_ids[i] if message_ids else None)) for i, b in enumerate(bodies)]
        answer = handler(sqs_event(*records), LambdaContext(function_name="sender", timeout_seconds=60))
        return [f["itemIdentifier"] for f in answer["batchItemFailures"]]

    return send


@pytest.fixture
def ses_identity(stack: resources.Stack) -> str:
    import boto3

    boto3.client("sesv2").create_email_identity(EmailIdentity="alerts@example.com")
    return "alerts@example.com"


def sent_emails() -> list[Any]:
    """The emails moto's SES accepted, oldest first."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    return list(ses_backends[DEFAULT_ACCOUNT_ID][os.environ["AWS_DEFAULT_REGION"]].sent_messages)


@pytest.fixture
def pipeline(stack: resources.Stack, sim: Any, fallback_queue: str, ses_identity: str) -> Any:
    """The send queue -> sender -> fallback queue -> fallback function, pumped like Lambda would."""
    from devstack.handlers import load
    from devstack.pollers import QueuePoller

    class Pipeline:
        send_queue = stack.refs["SendQueue"]
        send_dlq = stack.refs["SendDeadLetterQueue"]
        fallback_dlq = stack.refs["FallbackDeadLetterQueue"]
        sender = QueuePoller(
            stack.refs["SendQueue"], load("SenderFunction"), function_name="sender", timeout_seconds=60, retry_delay=0
        )
        fallback = QueuePoller(
            fallback_queue, load("FallbackFunction"), function_name="fallback", timeout_seconds=30, retry_delay=0
        )

        def enqueue(self, body: Any) -> str:
            import json

            import boto3

            text = body if isinstance(body, str) else json.dumps(body)
            return boto3.client("sqs").send_message(QueueUrl=self.send_queue, MessageBody=text)["MessageId"]

        def run(self) -> None:
            for _ in range(10):
                if not (self.sender.drain() + self.fallback.drain()):
                    return

        def dead_letters(self, url: str) -> list[str]:
            import boto3

            got = boto3.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10)
            return [m["Body"] for m in got.get("Messages", [])]

    return Pipeline()


@pytest.fixture
def stats_api(connectors_api: Api) -> Api:
    from devstack.handlers import load

    return Api(load("StatsFunction"), "tenant-a")
