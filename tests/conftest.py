"""Shared fixtures: AWS through moto, tables built from template.yaml, API events."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import boto3
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

from devstack import template
from devstack.apigw import http_event
from devstack.lambda_context import LambdaContext
from sms_connector import aws, config, credentials


def create_tables() -> None:
    dynamodb = boto3.client("dynamodb")
    dynamodb.create_table(TableName=os.environ["TABLE_NAME"], **template.table_definition("Table"))
    ttl = template.ttl_attribute("Table")
    if ttl:
        dynamodb.update_time_to_live(
            TableName=os.environ["TABLE_NAME"], TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl}
        )


@pytest.fixture
def aws_env() -> Iterator[None]:
    """A fresh moto account with the template's table; cached clients and caches reset."""
    with mock_aws():
        aws.reset()
        config.reset()
        credentials.forget()
        create_tables()
        yield
        aws.reset()
        config.reset()
        credentials.forget()


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
def fallback_queue(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> str:
    dlq = boto3.client("sqs").create_queue(QueueName="fallback-dlq")["QueueUrl"]
    dlq_arn = boto3.client("sqs").get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]
    url = boto3.client("sqs").create_queue(
        QueueName="fallback",
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn["QueueArn"], "maxReceiveCount": 5})},
    )["QueueUrl"]
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
