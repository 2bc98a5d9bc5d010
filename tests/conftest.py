"""Shared fixtures: AWS through moto, tables built from template.yaml, API events."""

from __future__ import annotations

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
