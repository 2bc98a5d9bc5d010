"""End-to-end: the local stack (`make run`) started on free ports, driven over HTTP and SQS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import urllib3

from devstack import auth
from devstack.template import ROOT

pytestmark = pytest.mark.e2e
HTTP = urllib3.PoolManager(timeout=30, retries=False)


class Local:
    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state
        self.url = state["apiUrl"]
        self.sqs = boto3.client(
            "sqs",
            endpoint_url=state["motoUrl"],
            region_name=state["region"],
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def call(self, method: str, path: str, body: Any = None, token: str | None = "demo") -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if token == "demo":
            token = self.state["token"]
        if token:
            headers["Authorization"] = f"Bearer {token}"
        answer = HTTP.request(
            method, self.url + path, body=json.dumps(body) if body is not None else None, headers=headers
        )
        text = answer.data.decode()
        return answer.status, (json.loads(text) if text and text.lstrip()[:1] in "{[" else text)

    def enqueue(self, body: dict[str, Any]) -> None:
        self.sqs.send_message(QueueUrl=self.state["sendQueueUrl"], MessageBody=json.dumps(body))

    def wait_until(self, look: Any, timeout: float = 20) -> Any:
        """Call `look` until it answers something truthy (or time runs out); answers that."""
        deadline = time.monotonic() + timeout
        while True:
            found = look()
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.2)

    def local_list(self, what: str) -> list[dict[str, Any]]:
        return list(self.call("GET", f"/_local/{what}", token=None)[1]["messages" if what == "sms" else "emails"])


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    state_file = Path(tmp_path_factory.mktemp("devstack")) / "state.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = f"{ROOT / 'layers/shared'}:{ROOT}"
    process = subprocess.Popen(  # noqa: S603 - our own module
        [
            sys.executable,
            "-m",
            "devstack",
            "--port",
            "0",
            "--moto-port",
            "0",
            "--sim-port",
            "0",
            "--retry-delay",
            "1",
            "--state-file",
            str(state_file),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not state_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the local stack did not start:\n{process.stdout.read() if process.stdout else ''}")
        time.sleep(0.2)
    time.sleep(0.2)  # the banner follows the state file
    yield Local(json.loads(state_file.read_text()))
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("the local stack did not stop on SIGTERM")
    assert process.returncode == 0


def test_demo_connectors_are_seeded(local: Local) -> None:
    status, page = local.call("GET", "/connectors")
    assert status == 200
    assert sorted(c.get("provider") or c["type"] for c in page["items"]) == ["46elks", "email", "telnyx", "twilio"]


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
    assert log["items"][0]["recipient"] == "+46 70 *** ** 02"


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
