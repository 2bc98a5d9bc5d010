"""Handlers run in-process against moto: their AWS calls counted, timed and recorded.

moto answers in-process, in Python, and its transactions deep-copy the whole table once per
item, so its time says nothing about DynamoDB's. With `Calls.latency` set, each AWS call also
waits that long after moto answered, as for a network answer (the calling thread sleeps; the
others run on), and `Calls.moto_cpu` says how much CPU moto spent: moto holds the interpreter
while it computes, stalling every thread, so the wall time less that CPU is the wall time with
each call taking `latency` and no local work, the way DynamoDB's calls are.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import coldstart

ROOT = Path(__file__).resolve().parent.parent
LAYER = ROOT / "layers" / "shared"
SIM_ACCOUNT = ("AC" + "2" * 32, "bench-token")  # the account bench.simulator_process knows


@dataclass
class Calls:
    """Every AWS call made by clients created after `install` (botocore hooks)."""

    names: list[str] = field(default_factory=list)
    latency: float = 0.0  # seconds each call waits after moto answered
    cpu: list[tuple[float, float]] = field(default_factory=list)  # (sent at, moto's CPU seconds) per request
    recorded: list[dict[str, Any]] | None = None  # when recording: operation, params, answer
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _local: threading.local = field(default_factory=threading.local)

    def install(self) -> None:
        import boto3

        boto3.setup_default_session()
        assert boto3.DEFAULT_SESSION is not None
        events = boto3.DEFAULT_SESSION.events
        events.register("before-parameter-build", self._call)
        events.register_first("before-send", self._sent)
        events.register("before-parse", self._answered)
        events.register("response-received", self._response)

    def _call(self, event_name: str, params: dict[str, Any], model: Any, **_: Any) -> None:
        with self._lock:
            self.names.append(event_name.removeprefix("before-parameter-build."))
            if self.recorded is not None:
                self.recorded.append(
                    {
                        "service": model.service_model.service_name,
                        "operation": model.name,
                        "method": _snake(model.name),
                        "params": json.loads(json.dumps(params)),
                    }
                )

    def _sent(self, **_: Any) -> None:
        self._local.sent = (time.perf_counter(), time.thread_time())

    def _answered(self, **_: Any) -> None:
        sent = getattr(self._local, "sent", None)
        if sent is None:
            return
        self._local.sent = None
        with self._lock:
            self.cpu.append((sent[0], time.thread_time() - sent[1]))
        if self.latency:
            time.sleep(self.latency)

    def _response(self, response_dict: dict[str, Any] | None, event_name: str, **_: Any) -> None:
        if self.recorded is None or response_dict is None:
            return
        operation = event_name.rsplit(".", 1)[1]
        with self._lock:
            call = next(c for c in reversed(self.recorded) if c["operation"] == operation and "status" not in c)
            call["status"] = response_dict["status_code"]
            call["headers"] = dict(response_dict["headers"])
            call["body"] = response_dict["body"].decode()

    def moto_cpu(self, since: float) -> float:
        """The CPU moto spent answering the calls sent since `since` (perf_counter)."""
        with self._lock:
            return sum(cpu for sent, cpu in self.cpu if sent >= since)


def _snake(name: str) -> str:
    from botocore import xform_name

    return str(xform_name(name))


# The cold starts' environment, quiet: no metrics, no log lines in the timed loops
ENV = coldstart.ENV | {"POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "CRITICAL"}


def in_moto(body: Callable[[Any, Calls], Any]) -> Any:
    """Run `body(stack, calls)` against moto with the template's resources."""
    os.environ.update(ENV)
    for path in (str(LAYER), str(ROOT)):
        if path not in sys.path:
            sys.path.insert(0, path)
    from moto import mock_aws

    from devstack import resources

    calls = Calls()
    with mock_aws():
        calls.install()  # after mock_aws, which starts a fresh default session
        stack = resources.create("eu-north-1", resources.default_parameters(), table_name="bench")
        forget_caches()
        return body(stack, calls)


def forget_caches() -> None:
    """What a fresh Lambda environment does not have: clients, settings, secrets, connectors."""
    from sms_connector import aws, config, connector_store, credentials
    from sms_connector.providers import base

    aws.reset()
    config.reset()
    credentials.forget()
    base.reset()
    connector_store.forget()


def create_connector(recipients: int, account: tuple[str, str] = SIM_ACCOUNT) -> str:
    from devstack.apigw import http_event
    from devstack.handlers import load
    from devstack.lambda_context import LambdaContext

    body = {
        "type": "sms",
        "name": "bench",
        "provider": "twilio",
        "from": "+46700000000",
        "credentials": {"accountSid": account[0], "authToken": account[1]},
        "recipients": [{"to": f"+467100000{i:02d}"} for i in range(recipients)],
    }
    answer = load("ConnectorsFunction")(
        http_event("POST", "/connectors", body=body, claims={"tenant_id": "t"}), LambdaContext("connectors")
    )
    return str(json.loads(answer["body"])["id"])


@contextmanager
def recording(calls: Calls) -> Any:
    """Record the AWS calls made inside (operation, parameters, moto's answer)."""
    calls.recorded = []
    try:
        yield calls.recorded
    finally:
        calls.recorded = None


class SimulatorProcess:
    """The provider simulator in a process of its own (a provider is another machine: its
    CPU time is not the client's), with its answers delayed by `latency` seconds."""

    def __init__(self, latency: float = 0.0) -> None:
        import subprocess

        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.simulator_process", str(latency)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
            env=dict(os.environ, PYTHONPATH=f"{LAYER}:{ROOT}"),
        )
        assert self._process.stdout is not None
        self.url = self._process.stdout.readline().strip()

    def sent(self) -> int:
        import urllib3

        answer = urllib3.request("GET", f"{self.url}/_sim/messages", timeout=10)
        return len(json.loads(answer.data)["messages"])

    def __enter__(self) -> SimulatorProcess:
        return self

    def __exit__(self, *_: object) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)
