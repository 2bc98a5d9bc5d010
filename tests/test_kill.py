"""A sender killed in the middle of a batch (Lambda's timeout, an out-of-memory, a crash):
the redelivery finishes the batch and nobody is texted twice.

The sender runs in its own process against moto in server mode and the provider simulator,
and is killed with SIGKILL after the provider has taken some of the batch: no recording, no
release, nothing. Once the claims' leases are over, SQS brings the batch back (here with new
message ids) and another invocation takes over: Telnyx is asked again with the same
Idempotency-Key, Twilio and 46elks are asked whether each message exists first.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import urllib3

from devstack import resources
from devstack.handlers import load
from devstack.lambda_context import LambdaContext
from devstack.simulators import ProviderSimulator
from devstack.sqs import sqs_event, sqs_record
from devstack.template import ROOT
from sms_connector import aws, config, credentials, stats
from sms_connector.providers import base
from sms_connector.sending import record
from tests.conftest import Api
from tests.test_models import GUIDE_46ELKS, GUIDE_TELNYX, GUIDE_TWILIO, with_

GUIDES = {"46elks": GUIDE_46ELKS, "telnyx": GUIDE_TELNYX, "twilio": GUIDE_TWILIO}
CHILD = """
import json, sys
from devstack.handlers import load
from devstack.lambda_context import LambdaContext
event = json.loads(sys.stdin.read())
print(load("SenderFunction")(event, LambdaContext("sender", timeout_seconds=9)), flush=True)
"""


@pytest.fixture
def served_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """moto in server mode (another process can reach it), with the template's resources."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    urllib3.request("POST", f"http://{host}:{port}/moto-api/reset")  # moto's backends live per process
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
    aws.reset()
    config.reset()
    credentials.forget()
    stack = resources.create(os.environ["AWS_DEFAULT_REGION"], resources.default_parameters(), os.environ["TABLE_NAME"])
    monkeypatch.setenv("FALLBACK_QUEUE_URL", stack.refs["FallbackQueue"])
    yield {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "FALLBACK_QUEUE_URL": stack.refs["FallbackQueue"]}
    urllib3.request("POST", f"http://{host}:{port}/moto-api/reset")
    server.stop()
    aws.reset()
    config.reset()
    credentials.forget()
    base.reset()


@pytest.mark.parametrize("provider", ["telnyx", "twilio", "46elks"])
def test_a_sender_killed_mid_batch_is_finished_without_texting_twice(
    served_aws: dict[str, str], monkeypatch: pytest.MonkeyPatch, provider: str
) -> None:
    with ProviderSimulator() as sim:
        for name in ("ELKS46_API_URL", "TELNYX_API_URL", "TWILIO_API_URL"):
            monkeypatch.setenv(name, sim.url)
        config.reset()
        sim.add_elks46_account("your_46elks_username", "your_46elks_password")
        sim.add_telnyx_key("your_telnyx_api_key")
        sim.add_twilio_account("ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "your_auth_token")
        team = [{"to": f"+4671000{i:04d}"} for i in range(5)]
        connectors = Api(load("ConnectorsFunction"), "tenant-a")
        status, created = connectors("POST", "/connectors", with_(GUIDES[provider], recipients=team))
        assert status == 201, created
        bodies = [{"connectorId": created["id"], "message": f"Alarm {i}", "actionId": f"k{i}"} for i in range(3)]
        # Given a sender whose provider answers slowly, killed once a few SMS were taken
        sim.latency = 0.6
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=os.environ
            | served_aws
            | {
                "PYTHONPATH": f"{ROOT / 'layers/shared'}:{ROOT}",
                "SEND_CONCURRENCY": "2",
                "PROVIDER_READ_TIMEOUT": "1",
                "ELKS46_API_URL": sim.url,
                "TELNYX_API_URL": sim.url,
                "TWILIO_API_URL": sim.url,
                "POWERTOOLS_METRICS_DISABLED": "true",
            },
        )
        assert child.stdin is not None
        child.stdin.write(json.dumps(sqs_event(*[sqs_record(b) for b in bodies])).encode())
        child.stdin.close()
        started = time.monotonic()
        while len(sim.sent()) < 3 and time.monotonic() - started < 20:
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait()
        taken_before = len(sim.sent())
        assert child.stdout is not None
        output = child.stdout.read().decode()
        assert 3 <= taken_before < 15, f"the kill came too late to test anything:\n{output}"
        assert stats.read(created["id"])["attempts"] == 0  # nothing was recorded
        # When the claims' leases are over and SQS brings the batch back, with new message ids
        time.sleep(max(0.0, 9 + 8 - (time.monotonic() - started)) + 0.5)  # the child's timeout + lease margin
        sim.latency = 0.0
        handler = load("SenderFunction")
        answer = handler(sqs_event(*[sqs_record(b) for b in bodies]), LambdaContext("sender", timeout_seconds=60))
        # Then every recipient got each alarm exactly once, and each SMS counts once
        assert answer["batchItemFailures"] == []
        texted = Counter((r.fields["to"], r.fields["text"]) for r in sim.sent())
        assert len(texted) == 15 and max(texted.values()) == 1, texted
        figures = stats.read(created["id"])
        assert (figures["totalSent"], figures["totalFails"], figures["totalUnknown"]) == (15, 0, 0)
        states = {
            (record.read(record.sms_id(created["id"], b["actionId"], m["to"])) or {}).get("state")
            for b in bodies
            for m in team
        }
        assert states == {record.STATE_SENT}
        # And once more, tomorrow: nothing at all happens
        assert handler(sqs_event(*[sqs_record(b) for b in bodies]), LambdaContext("s", 60))["batchItemFailures"] == []
        assert len(sim.sent()) == 15
        print(json.dumps({"suite": "kill", "provider": provider, "takenBeforeKill": taken_before, "duplicated": 0}))
