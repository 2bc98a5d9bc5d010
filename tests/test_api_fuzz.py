"""API fuzzing: schemathesis against the service's own OpenAPI document, in process, through
the local stack's HTTP adapter (routing and JWT checks as in the template), against moto."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from unittest import mock

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from moto import mock_aws

from devstack import auth, template
from devstack.api_server import ApiServer, wsgi_app
from devstack.handlers import load
from sms_connector import aws, config, credentials
from tests.conftest import create_tables

KEY = auth.signing_key()
TOKEN = auth.mint("fuzz-tenant", key=KEY)
SERVER = ApiServer({name: load(name) for name in template.functions()}, auth.Authorizer(KEY), port=0)
# The document as the running service serves it (GET /swagger?format=json, no token needed).
schema = schemathesis.openapi.from_wsgi("/swagger?format=json", wsgi_app(SERVER))


@pytest.fixture(scope="module", autouse=True)
def aws_for_the_api() -> Iterator[None]:
    # A generated body may ask for a credential check ("verify": true): it must reach no real
    # provider. Nothing listens on this port; the check answers 503, as documented.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{s.getsockname()[1]}"
    origins = dict.fromkeys(("ELKS46_API_URL", "TELNYX_API_URL", "TWILIO_API_URL"), nowhere)
    with mock_aws(), mock.patch.dict(os.environ, origins):
        aws.reset()
        config.reset()
        credentials.forget()
        create_tables()
        yield
        aws.reset()
    config.reset()


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_honours_its_own_document(case: schemathesis.Case) -> None:
    # Every default check but `positive_data_acceptance`: JSON Schema cannot say "a number
    # possible in its country" or "a deliverable address", so those 422s are right. A method a
    # path does not take is a 405 with Allow (`unsupported_method`), through the ANY routes.
    excluded = [schemathesis.checks.positive_data_acceptance]
    if any(value == [] for value in (case.query or {}).values()):
        # An unknown query parameter whose value is an empty list is sent as nothing at all:
        # the request on the wire is a valid one, and answering it 200 is right.
        excluded.append(schemathesis.checks.negative_data_rejection)
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, excluded_checks=excluded)
