"""The local stack as a developer uses it: ports, several stacks side by side, `enqueue`, the
`/_local` views, the request log, and stopping on SIGTERM or Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3

from devstack import instances
from devstack.stack import port_free
from devstack.template import ROOT
from tests.conftest import HTTP, Local, start_local_stack, wait_for_state

STOP_LIMIT_SECONDS = 10


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environment |= {"PYTHONPATH": f"{ROOT / 'layers/shared'}:{ROOT}"} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "devstack", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def free_ports(count: int) -> list[int]:
    """Ports nobody listens on, all different."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [int(s.getsockname()[1]) for s in sockets]
    for s in sockets:
        s.close()
    return ports


def stop(process: subprocess.Popen[str], how: int) -> float:
    """Send `how`; answers the seconds until the process had exited."""
    started = time.monotonic()
    process.send_signal(how)
    try:
        process.wait(timeout=STOP_LIMIT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"the local stack did not stop within {STOP_LIMIT_SECONDS} s of signal {how}")
    return time.monotonic() - started


# --- ports and state files (no stack needed) ------------------------------------------


def test_busy_ports_are_reported_together_with_the_setting_that_chooses_them(tmp_path: Path) -> None:
    # Given two ports held by someone else
    holders = [socket.socket(), socket.socket()]
    ports = []
    for holder in holders:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        ports.append(holder.getsockname()[1])
    try:
        # When a stack is asked to use both, as its API and its moto port
        result = cli("--port", str(ports[0]), "--moto-port", str(ports[1]), env={"DEVSTACK_DIR": str(tmp_path)})
    finally:
        for holder in holders:
            holder.close()
    # Then it stops at once, naming both ports and the settings that chose them, without a traceback
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"port {ports[0]} (HTTP API, set with PORT or --port) is in use" in result.stderr
    assert f"port {ports[1]} (moto, set with MOTO_PORT or --moto-port) is in use" in result.stderr
    assert "make run PORT=" in result.stderr and "Traceback" not in result.stderr


def test_a_dead_stack_is_named_and_its_state_removed(tmp_path: Path) -> None:
    # Given the state file of a stack whose process is gone
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (port,) = free_ports(1)
    state = {"pid": int(dead.stdout), "apiUrl": f"http://127.0.0.1:{port}", "ports": {"api": port}}
    instances.write(instances.state_path(port, tmp_path), state)
    # When a command looks for it by port / Then it says the stack stopped
    with pytest.raises(instances.NotFound, match=f"on port {port} has stopped .*process {dead.stdout.strip()} is gone"):
        instances.find(port, directory=tmp_path)
    # When a command looks for any stack / Then none is running, and the stale file is cleaned up
    with pytest.raises(instances.NotFound, match="No local stack is running") as found:
        instances.find(directory=tmp_path)
    assert f"The stack on port {port} has stopped" in str(found.value)
    assert not list(tmp_path.glob("state-*.json"))


def test_enqueue_without_a_stack_says_so(tmp_path: Path) -> None:
    result = cli("enqueue", "C1", "hello", env={"DEVSTACK_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert "No local stack is running: start one with `make run`." in result.stderr


# --- enqueue against the session's stack -----------------------------------------------


@pytest.fixture(scope="module")
def state_env(local: Local, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    state = tmp_path_factory.mktemp("enqueue") / "state.json"
    state.write_text(json.dumps(local.state))
    return {"DEVSTACK_STATE": str(state)}


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("connector", "text", "expected"),
    [
        ("NOPE", "hello", "tenant 'demo' has no connector 'NOPE'"),
        ("46elks", "", "the message is empty"),
        ("46elks", "   ", "the message must contain at least one visible character"),
        ("46elks", "x" * 1601, "the message has 1601 characters, more than the 1600 allowed"),
        ("email", "hello", "is an email connector; rule actions go to SMS connectors"),
    ],
)
def test_enqueue_refuses_what_the_sender_would(
    local: Local, state_env: dict[str, str], connector: str, text: str, expected: str
) -> None:
    connector_id = local.state["demoConnectors"].get(connector, connector)
    result = cli("enqueue", connector_id, text, env=state_env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.startswith("Not queued: ") and expected in result.stderr
    assert result.stdout == ""


@pytest.mark.e2e
def test_enqueue_prints_the_action_id_it_used(local: Local, state_env: dict[str, str]) -> None:
    # A connector of its own whose second recipient always fails (an invalid number)
    status, created = local.call(
        "POST",
        "/connectors",
        {
            "type": "sms",
            "name": "enqueue ids",
            "provider": "telnyx",
            "credentials": {"apiKey": "KEY_demo"},
            "from": "+46700000100",
            "recipients": [{"to": "+46710000001"}, {"to": "+46700000001"}],
        },
    )
    assert status == 201, created
    connector = created["id"]
    given = cli("enqueue", connector, "Freezer door open", "--action-id", "fire-1", env=state_env)
    assert given.returncode == 0, given.stderr
    assert given.stdout.startswith("queued rule action fire-1 for connector ")
    made = cli("enqueue", connector, "Freezer door still open", env=state_env)
    assert made.returncode == 0, made.stderr
    action_id = made.stdout.split()[3]
    assert action_id.startswith("local-")

    # Then the log of the failed recipient names both ids: the ones the sender used
    def logged() -> set[str]:
        items = local.call("GET", f"/connectors/{connector}/logs")[1]["items"]
        return {e["actionId"] for e in items} & {"fire-1", action_id}

    assert local.wait_until(lambda: len(logged()) == 2) and logged() == {"fire-1", action_id}


# --- /_local views ---------------------------------------------------------------------


@pytest.mark.e2e
def test_the_dead_letter_view_peeks_without_consuming(local: Local) -> None:
    local.sqs.send_message(QueueUrl=local.state["sendQueueUrl"], MessageBody="dlq view: not json")

    def in_dlq() -> list[dict[str, Any]]:
        queues = local.call("GET", "/_local/dlq", token=None)[1]["queues"]
        return [m for m in queues["SendDeadLetterQueue"]["messages"] if m["body"] == "dlq view: not json"]

    first = local.wait_until(in_dlq, timeout=30)
    assert first and first[0]["receiveCount"] >= 5  # five tries on the send queue (maxReceiveCount)
    again = in_dlq()
    assert [m["messageId"] for m in again] == [first[0]["messageId"]]  # still there, once
    assert "FallbackDeadLetterQueue" in local.call("GET", "/_local/dlq", token=None)[1]["queues"]


@pytest.mark.e2e
def test_reset_forgets_the_simulated_sms_and_emails(local: Local) -> None:
    # Given an SMS and a fallback email (the demo connectors' second recipient is opted out)
    local.enqueue({"connectorId": local.state["demoConnectors"]["twilio"], "message": "before the reset"})
    assert local.wait_until(lambda: local.local_list("emails") and local.local_list("sms"))
    # When reset / Then both lists are empty, and the stack still works
    status, answer = local.call("POST", "/_local/reset", token=None)
    assert status == 200 and answer["cleared"]["sms"] >= 1 and answer["cleared"]["emails"] >= 1
    assert local.local_list("sms") == [] and local.local_list("emails") == []
    local.enqueue({"connectorId": local.state["demoConnectors"]["twilio"], "message": "after the reset"})
    sms = local.wait_until(lambda: local.local_list("sms"))
    assert {m["text"] for m in sms} == {"after the reset"}


# --- two stacks side by side, the request log, and stopping -----------------------------


@pytest.fixture
def two_stacks(tmp_path: Path) -> Iterator[list[tuple[subprocess.Popen[str], dict[str, Any], Path]]]:
    """Two `make run`s differing only in PORT (as `make run PORT=...` starts them), one after the other."""
    stacks = []
    for port in free_ports(2):
        output = tmp_path / f"output-{port}.txt"
        env = {"PORT": str(port), "DEVSTACK_DIR": str(tmp_path)}
        process = start_local_stack(output=output, env=env, quiet=False)
        stacks.append((process, wait_for_state(process, instances.state_path(port, tmp_path), output), output))
    yield stacks
    for process, _, _ in stacks:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.e2e
def test_two_stacks_side_by_side_log_requests_and_stop_on_sigterm_and_ctrl_c(
    two_stacks: list[tuple[subprocess.Popen[str], dict[str, Any], Path]], tmp_path: Path
) -> None:
    (a_process, a, a_output), (b_process, b, b_output) = two_stacks
    env = {"DEVSTACK_DIR": str(tmp_path)}
    # Then each has its own ports and its own state
    ports = [*a["ports"].values(), *b["ports"].values()]
    assert len(set(ports)) == 6, ports
    assert {p.name for p in tmp_path.glob("state-*.json")} == {
        f"state-{a['ports']['api']}.json",
        f"state-{b['ports']['api']}.json",
    }
    # `enqueue` will not guess between them
    ambiguous = cli("enqueue", a["demoConnectors"]["46elks"], "which one?", env=env)
    assert ambiguous.returncode == 2 and "2 local stacks are running" in ambiguous.stderr
    # A rule action for A reaches A's simulator only
    sent = cli("enqueue", "--port", str(a["ports"]["api"]), a["demoConnectors"]["46elks"], "only on A", env=env)
    assert sent.returncode == 0, sent.stderr

    def texts(state: dict[str, Any]) -> list[str]:
        answer = HTTP.request("GET", f"{state['apiUrl']}/_local/sms")
        return [m["text"] for m in json.loads(answer.data)["messages"]]

    deadline = time.monotonic() + 20
    while "only on A" not in texts(a) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "only on A" in texts(a) and "only on A" not in texts(b)

    # One log line per request: no query values, no token; a client that hangs up is no traceback
    HTTP.request(
        "GET",
        f"{a['apiUrl']}/connectors?limit=5&nextToken=SECRETVALUE",
        headers={"Authorization": f"Bearer {a['token']}"},
    )
    with socket.create_connection(("127.0.0.1", a["ports"]["api"])) as early:
        early.sendall(b"GET /_local/dlq HTTP/1.1\r\nHost: x\r\n\r\n")
        early.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    with pytest.raises(urllib3.exceptions.HTTPError):  # a client that gives up before the answer
        urllib3.PoolManager(retries=False).request(
            "GET", f"{a['apiUrl']}/_local/dlq", timeout=urllib3.Timeout(read=0.001)
        )
    time.sleep(0.5)

    # SIGTERM stops A within seconds, frees its ports and removes its state
    took = stop(a_process, signal.SIGTERM)
    log = a_output.read_text()
    assert a_process.returncode == 0, log
    assert re.search(r"^\d\d:\d\d:\d\d GET /connectors\?limit=\.\.\.&nextToken=\.\.\. 422 \d+ ms$", log, re.M)
    assert "GET /_local/dlq (client disconnected)" in log
    assert "SECRETVALUE" not in log and log.count(a["token"]) == 2  # in the banner only (page URL and export)
    assert "/receipts/46elks/" not in log or re.search(r"/receipts/46elks/[^/ ]+/\{token\}", log)
    assert "Traceback" not in log, log
    assert all(port_free("127.0.0.1", p) for p in a["ports"].values())
    assert not instances.state_path(a["ports"]["api"], tmp_path).exists()
    print(f"SIGTERM stop: {took:.1f} s")
    # B is untouched, and now the only one: `enqueue` finds it without --port
    alone = cli("enqueue", b["demoConnectors"]["twilio"], "B alone", env=env)
    assert alone.returncode == 0 and b["apiUrl"] in alone.stdout, alone.stderr
    # Ctrl-C stops B the same way
    took = stop(b_process, signal.SIGINT)
    assert b_process.returncode == 0 and "Traceback" not in b_output.read_text()
    assert all(port_free("127.0.0.1", p) for p in b["ports"].values())
    print(f"Ctrl-C stop: {took:.1f} s")
