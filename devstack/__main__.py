"""`python -m devstack` (what `make run` calls): the whole service locally.

python -m devstack [run] [--port 3000] [--moto-port N] [--sim-port N] [--no-seed] [--quiet]
python -m devstack token [--tenant demo] [--hours 12]
python -m devstack enqueue CONNECTOR_ID "message" [--action-id ID] [--tenant demo] [--port 3000]

Ports: the API listens on --port (or $PORT, default 3000); moto and the provider simulators
follow it (PORT+2050 and PORT+1010: 5050 and 4010 for 3000), or take any free ports when
those are taken. A second stack needs nothing but another port: `make run PORT=3001`.
`enqueue` exits 1 when it refuses the action (unknown connector, bad text) and 2 when it
finds no stack to send to.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from . import auth, instances
from .stack import DEMO_TENANT, MOTO_OFFSET, SIMULATORS_OFFSET, LocalStack, PortBusy, Ports, port_free
from .template import ROOT

STOP_GRACE_SECONDS = 10  # a stop that takes longer ends the process anyway
_PORTS = {
    "api": ("HTTP API", "PORT or --port"),
    "moto": ("moto", "MOTO_PORT or --moto-port"),
    "simulators": ("provider simulators", "SIM_PORT or --sim-port"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command")
    run = commands.add_parser("run", help="start the local stack (the default)")
    for p in (parser, run):
        p.add_argument("--port", type=int, default=os.environ.get("PORT", "3000"), help="HTTP API port ($PORT)")
        p.add_argument(
            "--moto-port", type=int, default=os.environ.get("MOTO_PORT"), help="default: follows --port, or free"
        )
        p.add_argument(
            "--sim-port", type=int, default=os.environ.get("SIM_PORT"), help="default: follows --port, or free"
        )
        p.add_argument(
            "--retry-delay",
            type=int,
            default=10,
            help="seconds before a failed queue record is retried (Lambda: the visibility timeout)",
        )
        p.add_argument("--no-seed", action="store_true", help="do not create the demo connectors")
        p.add_argument("--quiet", action="store_true", help="no line per HTTP request")
        p.add_argument("--state-file", type=Path, help=argparse.SUPPRESS)
    token = commands.add_parser("token", help="mint a token for a tenant (valid on every local stack)")
    token.add_argument("--tenant", default=DEMO_TENANT)
    token.add_argument("--hours", type=float, default=12)
    enqueue = commands.add_parser(
        "enqueue", help="check a rule action through the API, then put it on a running stack's send queue"
    )
    enqueue.add_argument("connector_id")
    enqueue.add_argument("message")
    enqueue.add_argument("--action-id", help="default: a new one, printed")
    enqueue.add_argument("--tenant", default=DEMO_TENANT, help="the tenant that owns the connector")
    enqueue.add_argument("--port", type=int, help="the stack's API port (needed when several run)")
    enqueue.add_argument("--state-file", type=Path, default=os.environ.get("DEVSTACK_STATE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.command == "token":
        print(auth.mint(args.tenant, ttl_seconds=int(args.hours * 3600)))
        return 0
    if args.command == "enqueue":
        return _enqueue(args)
    return _run(args)


# --- run ------------------------------------------------------------------------------


class _Stop(BaseException):
    """Raised in the main thread by SIGTERM or Ctrl-C (a BaseException: no `except Exception` eats it)."""


def _on_stop_signal(signum: int, frame: Any) -> None:
    # A second signal while stopping: leave at once.
    signal.signal(signal.SIGTERM, _leave_now)
    signal.signal(signal.SIGINT, _leave_now)
    raise _Stop(signum)


def _leave_now(signum: int, frame: Any) -> None:
    print("Stopped without cleaning up.", file=sys.stderr, flush=True)
    os._exit(1)


def _give_up() -> None:
    print(f"Still stopping after {STOP_GRACE_SECONDS} s: exiting anyway.", file=sys.stderr, flush=True)
    os._exit(1)


def _run(args: argparse.Namespace) -> int:
    stack = LocalStack(
        Ports(args.port, args.moto_port, args.sim_port),
        retry_delay=args.retry_delay,
        seed=not args.no_seed,
        state_file=args.state_file,
    )
    # The main thread only sleeps; a signal raises _Stop in it (no lock or Event is involved,
    # so it cannot deadlock against the thread it interrupts).
    signal.signal(signal.SIGTERM, _on_stop_signal)
    signal.signal(signal.SIGINT, _on_stop_signal)
    try:
        print("Starting the local stack...", flush=True)
        try:
            state = stack.start()
        except PortBusy as exc:
            print(_busy_message(exc, args.port), file=sys.stderr, flush=True)
            stack.stop()
            return 2
        except Exception:
            stack.stop()
            raise
        print(_banner(state), flush=True)
        if not args.quiet:
            _log_requests()
        while True:
            time.sleep(3600)
    except _Stop:
        pass
    watchdog = threading.Timer(STOP_GRACE_SECONDS, _give_up)
    watchdog.daemon = True
    watchdog.start()
    print("\nStopping...", flush=True)
    stack.stop()
    print("Stopped.", flush=True)
    return 0


def _log_requests() -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
    log = logging.getLogger("devstack.requests")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def _busy_message(exc: PortBusy, api_port: int) -> str:
    lines = ["Cannot start the local stack:"]
    for what, port in exc.busy:
        name, setting = _PORTS[what]
        owner = instances.owner_of(port)
        by = f", by the local stack of {owner.state['apiUrl']} (pid {owner.state.get('pid')})" if owner else ""
        lines.append(f"  port {port} ({name}, set with {setting}) is in use{by}")
    if any(what == "api" for what, _ in exc.busy):
        lines.append("Start this one on another port; moto and the simulators follow it:")
        lines.append(f"    make run PORT={_free_base(api_port)}")
    if any(what != "api" for what, _ in exc.busy):
        lines.append("Or leave MOTO_PORT / SIM_PORT unset: they then follow PORT, or take free ports.")
    return "\n".join(lines)


def _free_base(taken: int) -> int:
    """The next API port whose followers are free too."""
    for port in range(taken + 1, min(taken + 200, 65536 - MOTO_OFFSET)):
        if all(port_free("127.0.0.1", p) for p in (port, port + MOTO_OFFSET, port + SIMULATORS_OFFSET)):
            return port
    return taken + 1


def _banner(state: dict[str, Any]) -> str:
    py = ".venv/bin/python" if Path(ROOT / ".venv/bin/python").exists() else "python"
    api = state["apiUrl"]
    demo = "\n".join(f"    {kind:<7} {cid}" for kind, cid in state["demoConnectors"].items()) or "    (none)"
    return f"""
SMS connector service, running locally (no AWS account).

  Control panel, signed in as tenant '{state["tenant"]}':
    {api}/#token={state["token"]}
  API          {api}   (Swagger UI: {state["swaggerUrl"]})
  Token        tenant '{state["tenant"]}', valid 12 hours:
    export TOKEN={state["token"]}
    more tokens: {py} -m devstack token --tenant another-tenant
  Rule action  {py} -m devstack enqueue --port {state["ports"]["api"]} CONNECTOR_ID "Temperature above 30 C"
  Local views  curl {api}/_local/sms       SMS the provider simulators received
               curl {api}/_local/emails    emails SES sent (fallbacks)
               curl {api}/_local/dlq       what the dead-letter queues hold
               curl -X POST {api}/_local/reset   forget those SMS and emails
  Email        connectors send from any address @{state["emailIdentity"]} (the local EmailIdentity)
  AWS (moto)   {state["motoUrl"]}, region {state["region"]}; simulators {state["simulatorUrl"]}
  Demo connectors of tenant '{state["tenant"]}':
{demo}

Ready: one line per request below. Ctrl-C stops everything.
"""


# --- enqueue --------------------------------------------------------------------------


def _enqueue(args: argparse.Namespace) -> int:
    try:
        state = instances.find(args.port, args.state_file)
    except instances.NotFound as exc:
        print(exc, file=sys.stderr)
        return 2
    action_id = args.action_id or f"local-{uuid.uuid4().hex[:12]}"
    body: dict[str, Any] = {
        "connectorId": args.connector_id,
        "message": args.message,
        "actionId": action_id,
        "tenantId": args.tenant,
    }
    problem = _action_problem(body)
    if problem:
        print(f"Not queued: {problem}.", file=sys.stderr)
        return 1
    refused = _connector_problem(state, args.connector_id, args.tenant)
    if refused:
        print(f"Not queued: {refused[1]}", file=sys.stderr)
        return refused[0]
    import json

    import boto3

    sqs = boto3.client(
        "sqs",
        endpoint_url=state["motoUrl"],
        region_name=state["region"],
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    try:
        sqs.send_message(QueueUrl=state["sendQueueUrl"], MessageBody=json.dumps(body))
    except Exception as exc:  # the stack went away meanwhile
        print(f"Could not reach the local stack at {state['motoUrl']}: {exc}", file=sys.stderr)
        return 2
    print(f"queued rule action {action_id} for connector {args.connector_id} on {state['apiUrl']}")
    return 0


def _action_problem(body: dict[str, Any]) -> str | None:
    """What the sender would refuse in this rule action (the sender's own model says)."""
    from .handlers import mount_layers

    mount_layers()
    from sms_connector.json_fields import Malformed
    from sms_connector.sending import RuleAction

    try:
        RuleAction.check(body)
    except Malformed as exc:
        return "; ".join(_explain(e) for e in exc.errors())
    return None


def _explain(error: Any) -> str:
    field = str(error["loc"][0]) if error["loc"] else ""
    name = {"message": "the message", "actionId": "--action-id", "connectorId": "the connector id"}.get(field, field)
    limit = (error.get("ctx") or {}).get("max_length")
    if error["type"] == "string_too_short":
        return f"{name} is empty"
    if error["type"] == "string_too_long":
        return f"{name} has {len(error['input'])} characters, more than the {limit} allowed"
    return f"{name} {error['msg'].removeprefix('Value error, ')}"


def _connector_problem(state: dict[str, Any], connector_id: str, tenant: str) -> tuple[int, str] | None:
    """Why the connector cannot take rule actions, asked of the API as the tenant (exit code, text)."""
    from urllib.parse import quote

    import urllib3

    url = f"{state['apiUrl']}/connectors/{quote(connector_id, safe='')}"
    try:
        answer = urllib3.PoolManager(timeout=10, retries=False).request(
            "GET", url, headers={"Authorization": f"Bearer {auth.mint(tenant)}"}
        )
    except urllib3.exceptions.HTTPError as exc:
        return 2, f"the local stack's API at {state['apiUrl']} does not answer ({exc})."
    if answer.status == 404:
        return 1, (
            f"tenant '{tenant}' has no connector {connector_id!r} on {state['apiUrl']} "
            f'(its connectors: curl {state["apiUrl"]}/connectors -H "Authorization: Bearer $TOKEN").'
        )
    if answer.status == 401:
        return 2, (
            "the local stack refused the token: was .devstack/jwt-signing-key.pem replaced after it started? "
            "Restart it."
        )
    if answer.status != 200:
        text = answer.data[:300].decode(errors="replace")
        return 1, f"GET /connectors/{connector_id} answered {answer.status}: {text}"
    connector = answer.json()
    if connector.get("type") != "sms":
        return 1, f"{connector_id} is an {connector.get('type')} connector; rule actions go to SMS connectors."
    return None


if __name__ == "__main__":
    sys.exit(main())
