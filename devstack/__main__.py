"""`python -m devstack` (what `make run` calls): the whole service locally.

python -m devstack [run] [--port 3000] [--moto-port 5050] [--sim-port 4010] [--no-seed]
python -m devstack token [--tenant demo] [--hours 12]
python -m devstack enqueue CONNECTOR_ID "message" [--action-id ID]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from . import auth
from .stack import DEMO_TENANT, LocalStack, PortBusy, Ports
from .template import ROOT

# Where a running stack describes itself (URLs, queue, demo token); `enqueue` reads it.
STATE = Path(os.environ.get("DEVSTACK_STATE", ROOT / ".devstack" / "state.json"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command")
    run = commands.add_parser("run", help="start the local stack (the default)")
    for p in (parser, run):
        p.add_argument("--port", type=int, default=int(os.environ.get("PORT", 3000)), help="HTTP API port")
        p.add_argument("--moto-port", type=int, default=int(os.environ.get("MOTO_PORT", 5050)))
        p.add_argument("--sim-port", type=int, default=int(os.environ.get("SIM_PORT", 4010)))
        p.add_argument(
            "--retry-delay",
            type=int,
            default=10,
            help="seconds before a failed queue record is retried (Lambda: the visibility timeout)",
        )
        p.add_argument("--no-seed", action="store_true", help="do not create the demo connectors")
        p.add_argument("--state-file", type=Path, default=STATE, help=argparse.SUPPRESS)
    token = commands.add_parser("token", help="mint a token for a tenant")
    token.add_argument("--tenant", default=DEMO_TENANT)
    token.add_argument("--hours", type=float, default=12)
    enqueue = commands.add_parser("enqueue", help="put a rule action on the running stack's send queue")
    enqueue.add_argument("connector_id")
    enqueue.add_argument("message")
    enqueue.add_argument("--action-id")
    args = parser.parse_args(argv)

    if args.command == "token":
        print(auth.mint(args.tenant, ttl_seconds=int(args.hours * 3600)))
        return 0
    if args.command == "enqueue":
        return _enqueue(args.connector_id, args.message, args.action_id)
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    stack = LocalStack(
        Ports(args.port, args.moto_port, args.sim_port),
        retry_delay=args.retry_delay,
        seed=not args.no_seed,
        state_file=args.state_file,
    )
    try:
        state = stack.start()
    except PortBusy as exc:
        print(f'Cannot start: {exc}. Try e.g. `make run ARGS="--port {exc.port + 1}"`.', file=sys.stderr)
        stack.stop()
        return 2
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    print(_banner(state), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        stopped.wait()
    print("\nStopping...", flush=True)
    stack.stop()
    return 0


def _banner(state: dict[str, Any]) -> str:
    py = ".venv/bin/python" if Path(ROOT / ".venv/bin/python").exists() else "python"
    demo = "\n".join(f"    {kind:<7} {cid}" for kind, cid in state["demoConnectors"].items()) or "    (none)"
    return f"""
SMS connector service, running locally (no AWS account).

  API          {state["apiUrl"]}
  Control panel, signed in as tenant '{state["tenant"]}':
    {state["apiUrl"]}/#token={state["token"]}
  Swagger UI   {state["swaggerUrl"]}
  Token        tenant '{state["tenant"]}', valid 12 hours:
    export TOKEN={state["token"]}
    more tokens: {py} -m devstack token --tenant another-tenant
  Send queue   {state["sendQueueUrl"]}
    enqueue a rule action: {py} -m devstack enqueue CONNECTOR_ID "Temperature above 30 C"
  SMS the provider simulators received:  curl {state["apiUrl"]}/_local/sms
  Emails SES "sent" (fallbacks):        curl {state["apiUrl"]}/_local/emails
  AWS (moto)   {state["motoUrl"]}   (aws --endpoint-url {state["motoUrl"]} ...)
  Demo connectors of tenant '{state["tenant"]}':
{demo}

Ready. Ctrl-C stops everything.
"""


def _enqueue(connector_id: str, message: str, action_id: str | None) -> int:
    if not STATE.exists():
        print("The local stack is not running: start it with `make run`.", file=sys.stderr)
        return 2
    state = json.loads(STATE.read_text())
    import boto3

    sqs = boto3.client(
        "sqs",
        endpoint_url=state["motoUrl"],
        region_name=state["region"],
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    body: dict[str, Any] = {"connectorId": connector_id, "message": message}
    if action_id:
        body["actionId"] = action_id
    try:
        answer = sqs.send_message(QueueUrl=state["sendQueueUrl"], MessageBody=json.dumps(body))
    except Exception as exc:  # the stack is gone or unreachable
        print(f"Could not reach the local stack at {state['motoUrl']}: {exc}", file=sys.stderr)
        return 2
    print(f"queued rule action {answer['MessageId']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
