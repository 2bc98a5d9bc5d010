"""End-to-end: the local stack (`make run`) started on free ports, driven over HTTP and SQS."""

from __future__ import annotations

import time

import pytest

from devstack import auth
from tests.conftest import Local

pytestmark = pytest.mark.e2e


def test_demo_connectors_are_seeded(local: Local) -> None:
    status, page = local.call("GET", "/connectors", query="?limit=100")
    assert status == 200
    assert set(local.state["demoConnectors"].values()) <= {c["id"] for c in page["items"]}
    assert sorted(local.state["demoConnectors"]) == ["46elks", "email", "telnyx", "twilio"]


def test_a_rule_action_reaches_the_simulator_and_the_fallback_email(local: Local) -> None:
    # Given a connector created over HTTP with two recipients, one of them opted out
    status, connector = local.call(
        "POST",
        "/connectors",
        {
            "type": "sms",
            "name": "E2E",
            "provider": "twilio",
            "credentials": {"accountSid": "AC" + "0" * 32, "authToken": "demo-token"},
            "from": "+46700000300",
            "recipients": [{"to": "+46710000077"}, {"to": "+46700000002", "backupEmail": "e2e@example.com"}],
        },
    )
    assert status == 201, connector
    # When the rule engine sends a rule action
    local.enqueue({"connectorId": connector["id"], "message": "E2E freezer warm", "actionId": "e2e-1"})
    # Then the SMS reaches the simulator, the failed recipient gets an email, stats and logs say so
    sms = local.wait_until(lambda: [m for m in local.local_list("sms") if m["to"] == "+46710000077"])
    assert [m["text"] for m in sms] == ["E2E freezer warm"]
    emails = local.wait_until(lambda: [e for e in local.local_list("emails") if e["to"] == ["e2e@example.com"]])
    assert len(emails) == 1 and emails[0]["body"].startswith("E2E freezer warm")
    status, figures = local.call("GET", f"/connectors/{connector['id']}/stats")
    assert status == 200 and (figures["totalSent"], figures["totalFails"]) == (1, 1)
    assert figures["fallbackEmailsSent"] == 1
    status, log = local.call("GET", f"/connectors/{connector['id']}/logs")
    assert status == 200 and [e["errorCode"] for e in log["items"]] == ["21610"]
    assert log["items"][0]["recipient"] == "+46 *******02"


def test_test_send_over_http(local: Local) -> None:
    connector = local.state["demoConnectors"]["46elks"]
    status, answer = local.call("POST", f"/connectors/{connector}/test", {"to": "+46710000001", "message": "ping"})
    assert status == 200 and answer == {"results": [{"to": "+46710000001", "status": "sent", "error": None}]}


def test_a_malformed_rule_action_ends_in_the_dead_letter_queue(local: Local) -> None:
    local.sqs.send_message(QueueUrl=local.state["sendQueueUrl"], MessageBody="not json at all")
    deadline = time.monotonic() + 30
    bodies: list[str] = []
    while time.monotonic() < deadline and "not json at all" not in bodies:
        got = local.sqs.receive_message(QueueUrl=local.state["sendDeadLetterQueueUrl"], WaitTimeSeconds=1)
        bodies += [m["Body"] for m in got.get("Messages", [])]
    assert "not json at all" in bodies


def test_the_authorizer_refuses_bad_tokens(local: Local) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused = {
        "none": None,
        "garbage": "not-a-jwt",
        "expired": auth.mint("demo", ttl_seconds=-60),
        "other key": auth.mint("demo", key=other_key),
        "other audience": auth.mint("demo", audience="someone-else"),
    }
    for name, token in refused.items():
        status, _ = local.call("GET", "/connectors", token=token)
        assert status == 401, name
    status, answer = local.call("GET", "/connectors", token=auth.mint(None))
    assert status == 403 and "tenant_id" in answer["message"]


def test_another_tenant_sees_nothing(local: Local) -> None:
    connector = local.state["demoConnectors"]["telnyx"]
    other = auth.mint("someone-else")
    for method, path in (
        ("GET", f"/connectors/{connector}"),
        ("GET", f"/connectors/{connector}/stats"),
        ("GET", f"/connectors/{connector}/logs"),
        ("POST", f"/connectors/{connector}/test"),
        ("DELETE", f"/connectors/{connector}"),
    ):
        status, _ = local.call(method, path, {} if method == "POST" else None, token=other)
        assert status == 404, (method, path)
    assert local.call("GET", "/connectors", token=other)[1]["items"] == []
    assert local.call("GET", f"/connectors/{connector}")[0] == 200


def test_swagger_ui_is_served(local: Local) -> None:
    status, page = local.call("GET", "/swagger", token=None)
    assert status == 200 and "swagger-ui" in page


@pytest.mark.parametrize("provider", ["46elks", "telnyx", "twilio"])
def test_the_demo_connectors_credentials_verify_over_http(local: Local, provider: str) -> None:
    connector = local.state["demoConnectors"][provider]
    status, answer = local.call("POST", f"/connectors/{connector}/verify")
    assert status == 200 and answer["ok"] is True, answer
    assert answer["balance"] and answer["currency"]


def test_preview_over_http_needs_a_token_and_no_connector(local: Local) -> None:
    status, answer = local.call("POST", "/preview", {"message": "Ça va? 20 €", "provider": "telnyx"})
    assert status == 200
    assert answer == {
        "encoding": "UCS-2",
        "characters": 11,
        "segments": 1,
        "tooLong": False,
        "ucs2Characters": ["Ç", "€"],
    }
    assert local.call("POST", "/preview", {"message": "hi"}, token=None)[0] == 401
