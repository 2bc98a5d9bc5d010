"""`make bench`: what users pay for, against the floors, as medians and ratios of one run.

Every figure is a median over repeated runs, and each ratio divides by a floor measured in
the same run, so a shared, noisy machine shifts both alike.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LAYER = ROOT / "layers" / "shared"
BUILD = ROOT / ".bench"
PY = sys.executable

# The AWS clients each function creates on its first invocation (lazily, in sms_connector.aws).
CLIENTS = {
    "ConnectorsFunction": ("dynamodb", "secretsmanager"),
    "SendApiFunction": ("dynamodb", "secretsmanager"),
    "SenderFunction": ("dynamodb", "secretsmanager", "sqs"),
    "FallbackFunction": ("dynamodb", "sesv2"),
    "StatsFunction": ("dynamodb",),
    "DocsFunction": (),
    "PreviewFunction": (),  # no AWS call at all
}
ENV = {
    "TABLE_NAME": "bench",
    "AWS_DEFAULT_REGION": "eu-north-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "POWERTOOLS_SERVICE_NAME": "sms-connector",
    "POWERTOOLS_METRICS_NAMESPACE": "SmsConnector",
}

Row = tuple[str, str, str, str, str, str]  # measure, value, floor, ratio, target, met


def _median_process(code: str, runs: int) -> float:
    """Median of `runs` fresh interpreters printing their own elapsed seconds."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHONPATH"))} | ENV
    times = []
    for _ in range(runs):
        out = subprocess.run([PY, "-c", code], capture_output=True, text=True, env=env, check=True, cwd=ROOT)
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def cold_init(runs: int) -> list[Row]:
    sys.path.insert(0, str(ROOT))
    from devstack import template

    rows: list[Row] = []
    for name, fn in template.functions().items():
        clients = CLIENTS.get(name, ())
        module = ROOT / fn.code_uri / (fn.handler.rsplit(".", 1)[0] + ".py")
        handler = (
            f"import sys, time; sys.path.append({str(LAYER)!r}); t = time.perf_counter()\n"
            "import importlib.util\n"
            f"spec = importlib.util.spec_from_file_location('app', {str(module)!r})\n"
            # registered before it runs, as Lambda's import does (a dataclass looks its module up)
            "m = importlib.util.module_from_spec(spec); sys.modules['app'] = m; spec.loader.exec_module(m)\n"
            # the clients it creates on its first call; a function that makes none imports no boto3
            + (f"from sms_connector import aws\n[aws.client(s) for s in {clients!r}]\n" if clients else "")
            + "print(time.perf_counter() - t)"
        )
        floor = (
            "import time; t = time.perf_counter()\nimport boto3\n"
            f"[boto3.client(s) for s in {clients!r}]\nprint(time.perf_counter() - t)"
        )
        # Interleave handler and floor runs so drifting load hits both.
        h, f = [], []
        for _ in range(runs):
            h.append(_median_process(handler, 1))
            f.append(_median_process(floor, 1))
        mh, mf = statistics.median(h), statistics.median(f)
        what = f"boto3 + {len(clients)} client(s)" if clients else "import boto3"
        rows.append(
            (
                f"cold init {name}",
                f"{mh * 1000:.0f} ms",
                f"{mf * 1000:.0f} ms ({what})",
                f"{mh / mf:.2f}x",
                "<= 1.2x",
                _met(mh / mf <= 1.2),
            )
        )
    return rows


class CallCounter:
    """Counts every AWS API call made by clients created after `install` (a botocore hook)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.seconds = 0.0  # time spent inside AWS calls (here: in moto)
        self._started: dict[int, float] = {}

    def install(self) -> None:
        import boto3

        boto3.setup_default_session()
        assert boto3.DEFAULT_SESSION is not None
        boto3.DEFAULT_SESSION.events.register("before-call", self._count)
        boto3.DEFAULT_SESSION.events.register("after-call", self._done)

    def _count(self, event_name: str, context: dict[str, Any], **_: Any) -> None:
        self.calls.append(event_name.removeprefix("before-call."))
        context["bench_started"] = time.perf_counter()

    def _done(self, context: dict[str, Any], **_: Any) -> None:
        if "bench_started" in context:
            self.seconds += time.perf_counter() - context["bench_started"]


def _in_moto(body: Callable[[Any], list[Row]]) -> list[Row]:
    """Run `body(stack)` against moto with the template's resources and the simulators."""
    os.environ.update(ENV | {"POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "CRITICAL"})
    for path in (str(LAYER), str(ROOT)):
        if path not in sys.path:
            sys.path.insert(0, path)
    from moto import mock_aws

    from devstack import resources
    from sms_connector import aws, config

    counter = CallCounter()
    with mock_aws():
        counter.install()  # after mock_aws, which starts a fresh default session
        stack = resources.create("eu-north-1", resources.default_parameters(), table_name="bench")
        aws.reset()
        config.reset()
        return body((stack, counter))


def _create_connector(recipients: int) -> str:
    from devstack.apigw import http_event
    from devstack.handlers import load
    from devstack.lambda_context import LambdaContext

    body = {
        "type": "sms",
        "name": "bench",
        "provider": "twilio",
        "from": "+46700000000",
        "credentials": {"accountSid": "AC" + "1" * 32, "authToken": "bench-token"},
        "recipients": [{"to": f"+467100000{i:02d}"} for i in range(recipients)],
    }
    answer = load("ConnectorsFunction")(
        http_event("POST", "/connectors", body=body, claims={"tenant_id": "t"}), LambdaContext("connectors")
    )
    return str(json.loads(answer["body"])["id"])


def warm_batch(repeats: int, latency: float) -> list[Row]:
    def body(ctx: Any) -> list[Row]:
        stack, counter = ctx
        from devstack.handlers import load
        from devstack.lambda_context import LambdaContext
        from devstack.simulators import ProviderSimulator
        from devstack.sqs import sqs_event, sqs_record
        from sms_connector import config

        with ProviderSimulator() as sim:
            os.environ["TWILIO_API_URL"] = sim.url
            os.environ["FALLBACK_QUEUE_URL"] = stack.refs["FallbackQueue"]
            config.reset()
            sim.add_twilio_account("AC" + "1" * 32, "bench-token")
            connector = _create_connector(3)
            sender = load("SenderFunction")

            def batch(n: int) -> dict[str, Any]:
                records = [
                    sqs_record({"connectorId": connector, "message": f"bench {n}-{i}", "actionId": f"{n}-{i}"})
                    for i in range(10)
                ]
                return sender(sqs_event(*records), LambdaContext("sender", 60))

            batch(-1)  # warm: connections, secret cache, imports
            sim.latency = latency
            times, calls, outside = [], [], []
            for n in range(repeats):
                before, in_aws = len(counter.calls), counter.seconds
                started = time.perf_counter()
                answer = batch(n)
                times.append(time.perf_counter() - started)
                calls.append(len(counter.calls) - before)
                outside.append(times[-1] - (counter.seconds - in_aws))
                assert answer["batchItemFailures"] == [], answer
            assert len(sim.sent()) == 30 * (repeats + 1)
            wall = statistics.median(times)
            ours = statistics.median(outside)
            per_sms = statistics.median(calls) / 30
            last = counter.calls[-statistics.median_low(calls) :]
        return [
            (
                "warm batch, 10 actions x 3 recipients",
                f"{wall * 1000:.0f} ms",
                f"{latency * 1000:.0f} ms (1 round trip)",
                f"{wall / latency:.2f}x",
                "<= 1.3x",
                _met(wall / latency <= 1.3),
            ),
            (
                "  the same, less time inside moto's AWS calls",
                f"{ours * 1000:.0f} ms",
                f"{latency * 1000:.0f} ms (1 round trip)",
                f"{ours / latency:.2f}x",
                "<= 1.3x",
                _met(ours / latency <= 1.3),
            ),
            (
                "AWS calls per SMS (warm batch)",
                f"{per_sms:.2f} ({statistics.median(calls):.0f} calls: {', '.join(sorted(set(last)))})",
                "30 SMS",
                f"{per_sms:.2f}",
                "<= 0.5",
                _met(per_sms <= 0.5),
            ),
        ]

    return _in_moto(body)


def stats_read(repeats: int) -> list[Row]:
    def body(ctx: Any) -> list[Row]:
        _, counter = ctx
        from devstack.apigw import http_event
        from devstack.handlers import load
        from devstack.lambda_context import LambdaContext
        from sms_connector import clock, dynamo, stats

        connector = _create_connector(1)
        handler = load("StatsFunction")

        def record(n: int) -> None:  # through the counters' own transaction items
            now = clock.iso(clock.now())
            deltas = [
                stats.Delta(at=now, sent=int(bool(i % 10)), fails=int(not i % 10), last_error="x") for i in range(n)
            ]
            for start in range(0, n, 500):
                items = stats.updates(connector, deltas[start : start + 500])
                dynamo.client().transact_write_items(TransactItems=items)

        def read() -> tuple[float, int, dict[str, Any]]:
            times, calls = [], []
            for _ in range(repeats):
                before = len(counter.calls)
                started = time.perf_counter()
                answer = handler(
                    http_event("GET", f"/connectors/{connector}/stats", claims={"tenant_id": "t"}),
                    LambdaContext("stats"),
                )
                times.append(time.perf_counter() - started)
                calls.append(len(counter.calls) - before)
            return statistics.median(times), int(statistics.median(calls)), json.loads(answer["body"])

        record(10)
        t10, c10, f10 = read()
        record(9990)
        t10k, c10k, f10k = read()
        assert (f10["attempts"], f10k["attempts"]) == (10, 10000)
        return [
            ("stats read after 10 sends", f"{t10 * 1000:.1f} ms, {c10} calls", "-", "-", "1-2 calls", _met(c10 <= 2)),
            (
                "stats read after 10,000 sends",
                f"{t10k * 1000:.1f} ms, {c10k} calls",
                f"{t10 * 1000:.1f} ms (10 sends)",
                f"{t10k / t10:.2f}x",
                "1-2 calls, same time",
                _met(c10k <= 2 and t10k / t10 < 1.5),
            ),
        ]

    return _in_moto(body)


def preview(runs: int, calls: int) -> list[Row]:
    """POST /preview, asked on each pause in typing: its handler's time per call in-process
    (JSON event in, JSON answer out) against the same resolver and entry point answering a route
    that validates a one-field body and returns it; and its function's cold init against that
    bare resolver's, in fresh interpreters."""
    os.environ.update(ENV | {"POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "CRITICAL"})
    for path in (str(LAYER), str(ROOT)):
        if path not in sys.path:
            sys.path.insert(0, path)
    from bench.echo import handler as echo
    from devstack.apigw import http_event
    from devstack.handlers import load
    from devstack.lambda_context import LambdaContext

    handler = load("PreviewFunction")
    context = LambdaContext("preview")
    claims = {"tenant_id": "t"}
    alert = "Temperature above 30 C in room 4 of building B (sensor 17); check the cooling unit. " * 2
    cases = {
        f"{len(alert[:160])}-char GSM-7 message": alert[:160],
        "1,600-char UCS-2 message": ("Tempé 30 °C, салон 4 😀 " * 80)[:1600],
    }

    def per_call(h: Any, event: dict[str, Any]) -> float:
        for _ in range(20):  # warm: imports, validation caches
            assert h(event, context)["statusCode"] == 200
        samples = []
        for _ in range(calls):
            started = time.perf_counter()
            h(event, context)
            samples.append(time.perf_counter() - started)
        return statistics.median(samples)

    floor = per_call(echo, http_event("POST", "/echo", body={"message": alert[:160]}, claims=claims))
    rows: list[Row] = []
    for label, text in cases.items():
        ours = per_call(
            handler, http_event("POST", "/preview", body={"message": text, "provider": "twilio"}, claims=claims)
        )
        rows.append(
            (
                f"preview per call, {label}",
                f"{ours * 1e6:.0f} us",
                f"{floor * 1e6:.0f} us (echo route, same resolver)",
                f"{ours / floor:.2f}x",
                "<= 5 ms",
                _met(ours <= 0.005),
            )
        )
    bare = (
        f"import sys, time; sys.path[:0] = [{str(LAYER)!r}, {str(ROOT)!r}]; t = time.perf_counter()\n"
        "from sms_connector.api import create_app, lambda_handler\n"
        "handler = lambda_handler(create_app())\nprint(time.perf_counter() - t)"
    )
    module = ROOT / "functions" / "preview" / "app.py"
    function = (
        f"import sys, time; sys.path.append({str(LAYER)!r}); t = time.perf_counter()\n"
        "import importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('app', {str(module)!r})\n"
        "m = importlib.util.module_from_spec(spec); sys.modules['app'] = m; spec.loader.exec_module(m)\n"
        "print(time.perf_counter() - t)"
    )
    f, b = [], []
    for _ in range(runs):
        f.append(_median_process(function, 1))
        b.append(_median_process(bare, 1))
    mf, mb = statistics.median(f), statistics.median(b)
    rows.append(
        (
            "cold init PreviewFunction, vs the bare resolver",
            f"{mf * 1000:.0f} ms",
            f"{mb * 1000:.0f} ms (resolver, no route)",
            f"{mf / mb:.2f}x",
            "<= 1.2x",
            _met(mf / mb <= 1.2),
        )
    )
    return rows


def _tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def deployed_size() -> list[Row]:
    """The layer as `sam build` makes it for python3.12 on arm64 (wheels unpacked, no bytecode
    compiled), and each function's folder."""
    target = BUILD / "layer" / "python"
    stamp = BUILD / "layer.requirements"
    requirements = (LAYER / "requirements.txt").read_text() + "\n# --no-compile"
    if not stamp.exists() or stamp.read_text() != requirements:
        shutil.rmtree(BUILD / "layer", ignore_errors=True)
        subprocess.run(
            [
                PY,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--target",
                str(target),
                "--platform",
                "manylinux2014_aarch64",
                "--python-version",
                "3.12",
                "--implementation",
                "cp",
                "--only-binary=:all:",
                "-r",
                str(LAYER / "requirements.txt"),
            ],
            check=True,
        )
        stamp.write_text(requirements)
    shutil.rmtree(target / "sms_connector", ignore_errors=True)
    shutil.copytree(LAYER / "sms_connector", target / "sms_connector", ignore=shutil.ignore_patterns("__pycache__"))
    layer = _tree_size(BUILD / "layer")
    functions = sum(_tree_size(p) - _tree_size(p / "__pycache__") for p in (ROOT / "functions").iterdir() if p.is_dir())
    biggest = sorted(((_tree_size(p), p.name) for p in target.iterdir() if p.is_dir()), reverse=True)[:4]
    total = (layer + functions) / 1e6
    detail = ", ".join(f"{name} {size / 1e6:.1f}" for size, name in biggest)
    return [
        (
            "deployed size, unzipped (layer + functions)",
            f"{total:.1f} MB (largest: {detail})",
            "-",
            "-",
            "<= 15 MB",
            _met(total <= 15),
        )
    ]


def twilio_vs_sdk(runs: int, requests: int) -> list[Row]:
    try:
        import twilio  # noqa: F401
    except ImportError:
        return [("ours vs twilio SDK", "skipped: `pip install -r requirements-bench.txt`", "-", "-", "report", "-")]
    ours_import = _median_process(
        f"import sys, time; sys.path.append({str(LAYER)!r}); t = time.perf_counter()\n"
        "from sms_connector.providers.twilio import Twilio\nprint(time.perf_counter() - t)",
        runs,
    )
    sdk_import = _median_process(
        "import time; t = time.perf_counter()\nfrom twilio.rest import Client\nprint(time.perf_counter() - t)", runs
    )
    # The simulator runs in its own process, so CPU time measured here is the client's alone.
    server = subprocess.Popen(
        [PY, "-m", "bench.simulator_process"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=f"{LAYER}:{ROOT}"),
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        sid, token = "AC" + "2" * 32, "bench-token"
        os.environ["TWILIO_API_URL"] = url
        sys.path.insert(0, str(LAYER))
        from sms_connector import config
        from sms_connector.providers.base import Outbound
        from sms_connector.providers.twilio import Twilio

        config.reset()
        ours = Twilio()
        from twilio.rest import Client

        client = Client(sid, token)
        client.api.base_url = url

        def ours_send() -> None:
            sms = Outbound("+46700000000", "+46710000001", "bench", "b" * 32)
            ours.send({"accountSid": sid, "authToken": token}, sms)

        def sdk_send() -> None:
            client.messages.create(to="+46710000001", from_="+46700000000", body="bench")

        cpu = {}
        for name, send in (("ours", ours_send), ("sdk", sdk_send)):
            send()  # warm the connection
            samples = []
            for _ in range(5):
                started = time.process_time()
                for _ in range(requests):
                    send()
                samples.append((time.process_time() - started) / requests)
            cpu[name] = statistics.median(samples)
    finally:
        server.terminate()
        server.wait(timeout=10)
    return [
        (
            "Twilio client import",
            f"ours {ours_import * 1000:.0f} ms",
            f"SDK {sdk_import * 1000:.0f} ms",
            f"{ours_import / sdk_import:.2f}x",
            "report",
            "-",
        ),
        (
            "Twilio request CPU",
            f"ours {cpu['ours'] * 1e6:.0f} us",
            f"SDK {cpu['sdk'] * 1e6:.0f} us",
            f"{cpu['ours'] / cpu['sdk']:.2f}x",
            "report",
            "-",
        ),
    ]


def _met(ok: bool) -> str:
    return "yes" if ok else "NO"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--runs", type=int, default=9, help="fresh processes per cold-start figure")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    args = parser.parse_args()
    runs = 3 if args.quick else max(9, args.runs)
    started = time.time()
    rows: list[Row] = []
    rows += cold_init(runs)
    rows += warm_batch(3 if args.quick else 9, latency=0.2)
    rows += stats_read(5 if args.quick else 21)
    rows += preview(runs, 200 if args.quick else 2000)
    rows += deployed_size()
    rows += twilio_vs_sdk(runs, 20 if args.quick else 100)
    header: Row = ("measure", "median", "floor", "ratio", "target", "met")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(6)]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in [header, *rows]]
    lines.insert(1, "| " + " | ".join("-" * w for w in widths) + " |")
    print("\n".join(lines))
    print(
        f"\n{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}, {time.time() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
