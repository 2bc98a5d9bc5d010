"""Shared fixtures: AWS through moto, tables built from template.yaml, API events."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import urllib3
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
        "EMAIL_IDENTITY": "example.com",  # the template's EmailIdentity, verified in SES by `stack`
        "TEST_SENDS_PER_HOUR": "1000",  # the allowance has its own test
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)

from devstack import resources
from devstack.apigw import http_event
from devstack.lambda_context import LambdaContext
from devstack.template import ROOT
from sms_connector import aws, config, connector_store, credentials


def create_tables() -> resources.Stack:
    """The template's table and queues, created in moto (the template is the one truth)."""
    return resources.create(
        os.environ["AWS_DEFAULT_REGION"], resources.default_parameters(), table_name=os.environ["TABLE_NAME"]
    )


@pytest.fixture
def stack() -> Iterator[resources.Stack]:
    """A fresh moto account with the template's resources; cached clients and caches reset."""
    from sms_connector.providers import base

    with mock_aws():
        aws.reset()
        config.reset()
        credentials.forget()
        connector_store.forget()
        created = create_tables()
        boto3.client("sesv2").create_email_identity(EmailIdentity=os.environ["EMAIL_IDENTITY"])
        yield created
        resources.forget_table_copies()
        aws.reset()
        config.reset()
        credentials.forget()
        connector_store.forget()
        base.reset()  # a test may have changed the provider timeouts


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
def quick_timeouts(monkeypatch: pytest.MonkeyPatch, sim: Any) -> None:
    """A 1 s read timeout, so a provider that hangs costs a second, not ten."""
    from sms_connector.providers import base

    monkeypatch.setenv("PROVIDER_READ_TIMEOUT", "1.0")
    config.reset()
    base.reset()
    sim.hang_seconds = 1.5


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

            # a peek: the messages stay visible (a redrive may take them next)
            got = boto3.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
            return [m["Body"] for m in got.get("Messages", [])]

    return Pipeline()


@pytest.fixture
def stats_api(connectors_api: Api) -> Api:
    from devstack.handlers import load

    return Api(load("StatsFunction"), "tenant-a")


@pytest.fixture
def atomic_aws_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's in-process backends are not thread-safe (a transaction deep-copies a table while
    other threads write it). Real DynamoDB makes each call atomic; so does this lock, and the
    calls of concurrent invocations still interleave between calls, as they do in AWS."""
    from moto.core.botocore_stubber import BotocoreStubber

    lock = threading.Lock()
    original = BotocoreStubber.__call__

    def one_at_a_time(self: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            try:
                return original(self, *args, **kwargs)
            finally:
                resources.forget_table_copies()

    monkeypatch.setattr(BotocoreStubber, "__call__", one_at_a_time)


@pytest.fixture
def log_output() -> Any:
    """What the functions' Powertools logger prints (its handler keeps the stream it was given)."""
    import io
    import logging

    handler = logging.getLogger("sms-connector").handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)


# --- the local stack, started once per test session -------------------------------------

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

    def call(
        self, method: str, path: str, body: Any = None, token: str | None = "demo", query: str = ""
    ) -> tuple[int, Any]:
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


def start_local_stack(
    *args: str, output: Path, state_file: Path | None = None, env: dict[str, str] | None = None, quiet: bool = True
) -> subprocess.Popen[str]:
    """`python -m devstack ARGS` in the background, its output in a file (a pipe nobody reads
    would fill up and block it). Quiet (no request log) unless DEVSTACK_LOG_REQUESTS is set."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environment["PYTHONPATH"] = f"{ROOT / 'layers/shared'}:{ROOT}"
    environment |= env or {}
    if quiet and not os.environ.get("DEVSTACK_LOG_REQUESTS"):
        args += ("--quiet",)
    if state_file:
        args += ("--state-file", str(state_file))
    command = [sys.executable, "-m", "devstack", *args]
    with output.open("w") as out:
        return subprocess.Popen(command, cwd=ROOT, env=environment, stdout=out, stderr=subprocess.STDOUT, text=True)


def wait_for_state(process: subprocess.Popen[str], state_file: Path, output: Path, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not state_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the local stack did not start:\n{output.read_text()}")
        time.sleep(0.2)
    return json.loads(state_file.read_text())


@pytest.fixture(scope="session")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    folder = Path(tmp_path_factory.mktemp("devstack"))
    state_file, output = folder / "state.json", folder / "output.txt"
    process = start_local_stack(
        "--port", "0", "--retry-delay", "1", state_file=state_file, output=output, env={"DEVSTACK_DIR": str(folder)}
    )
    yield Local(wait_for_state(process, state_file, output))
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("the local stack did not stop on SIGTERM")
    assert process.returncode == 0, output.read_text()


def dies_before_recording(monkeypatch: pytest.MonkeyPatch, send: Any) -> Any:
    """Run `send()` as an invocation that texts, then dies before recording anything: every
    recording fails, and so does keeping the outcomes on the claims. Answers what `send` did."""
    from sms_connector.sending import record

    real_commit, real_keep = record.commit, record.keep_unrecorded
    monkeypatch.setattr(record, "commit", lambda writes: list(writes))
    monkeypatch.setattr(record, "keep_unrecorded", lambda smses, owner: None)
    try:
        return send()
    finally:
        monkeypatch.setattr(record, "commit", real_commit)
        monkeypatch.setattr(record, "keep_unrecorded", real_keep)
