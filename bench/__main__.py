"""`make bench`: what users pay for, against the floors, as medians and ratios of one run.

Every figure is a median over repeated runs, and each ratio divides by a floor measured in
the same run, so a shared, noisy machine shifts both alike. `coldstart` says how cold starts
are measured, `moto_calls` how moto's time is replaced in the warm batch.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import batch, coldstart
from bench.moto_calls import ENV, SimulatorProcess

ROOT = Path(__file__).resolve().parent.parent
LAYER = ROOT / "layers" / "shared"
BUILD = ROOT / ".bench"
PY = sys.executable

Row = tuple[str, str, str, str, str, str]  # measure, value, floor, ratio, target, met


def _median_process(code: str, runs: int) -> float:
    """Median of `runs` fresh interpreters printing their own elapsed seconds (bytecode from
    the bench's cache, as in the cold starts; a first run writes it)."""
    times = []
    for n in range(runs + 1):
        env = coldstart._env({}, write=n == 0)
        command = [PY, "-X", f"pycache_prefix={coldstart.PYCACHE}", "-c", code]
        out = subprocess.run(command, capture_output=True, text=True, env=env, check=True, cwd=ROOT)
        if n:
            times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def preview(calls: int) -> list[Row]:
    """POST /preview, asked on each pause in typing: its handler's time per call in-process
    (JSON event in, JSON answer out) against the same resolver and entry point answering a route
    that validates a one-field body and returns it. (Its cold start is in the cold-start table.)"""
    os.environ.update(ENV)
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
    return rows


def _tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def deployed_size() -> list[Row]:
    """The layer as `sam build` makes it (`coldstart.build_layer`: with bytecode), and each
    function's folder."""
    target, python = coldstart.build_layer()
    layer = _tree_size(BUILD / "layer")
    bytecode = sum(p.stat().st_size for p in (BUILD / "layer").rglob("*.pyc"))
    functions = sum(_tree_size(p) - _tree_size(p / "__pycache__") for p in (ROOT / "functions").iterdir() if p.is_dir())
    biggest = sorted(((_tree_size(p), p.name) for p in target.iterdir() if p.is_dir()), reverse=True)[:4]
    total = (layer + functions) / 1e6
    detail = ", ".join(f"{name} {size / 1e6:.1f}" for size, name in biggest)
    compiled = "" if python.endswith("python3.12") else f", bytecode of {Path(python).name}: no 3.12 found"
    return [
        (
            "deployed size, unzipped (layer + functions)",
            f"{total:.1f} MB, of which bytecode {bytecode / 1e6:.1f} (largest: {detail}{compiled})",
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
    with SimulatorProcess() as server:
        url = server.url
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


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in [header, *rows]]
    lines.insert(1, "| " + " | ".join("-" * w for w in widths) + " |")
    return "\n".join(lines)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def cold_starts(figures: list[coldstart.Figures]) -> str:
    header = (
        "function",
        "floor",
        "cold init",
        "ratio",
        "<= 1.2x",
        "floor + Powertools",
        "the same, validation off",
        "layer from source",
        "first request",
        "init + first request",
        "memory after init",
    )
    rows = []
    for f in figures:
        first = "-"
        total = "-"
        if f.first is not None and f.first_floor is not None:
            first = f"{_ms(f.first)} ({f.request}; AWS calls: {f.calls})"
            ours, floor = f.init + f.first, f.floor + f.first_floor
            total = f"{_ms(ours)} vs {_ms(floor)}: {ours / floor:.2f}x"
        stack = "-"
        if f.stack is not None:
            stack = f"{_ms(f.stack)} ({f.stack_label}): {f.stack / f.floor:.2f}x floor; ours {f.init / f.stack:.2f}x it"
        unvalidated = "-" if f.unvalidated is None else f"{_ms(f.unvalidated)}: {f.unvalidated / f.floor:.2f}x floor"
        rows.append(
            (
                f.name,
                f"{_ms(f.floor)} ({f.floor_label})"
                + ("" if f.boto3 is None else f"; import boto3 {_ms(f.boto3)}: ours {f.init / f.boto3:.2f}x it"),
                _ms(f.init),
                f"{f.init / f.floor:.2f}x",
                _met(f.init / f.floor <= 1.2),
                stack,
                unvalidated,
                f"{_ms(f.source)}: {f.source / f.floor:.2f}x",
                first,
                total,
                f"{f.memory / 1e6:.0f} MB",
            )
        )
    return _table(header, rows)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--runs", type=int, default=9, help="fresh processes per cold-start figure")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    args = parser.parse_args()
    runs = 3 if args.quick else max(9, args.runs)
    started = time.time()
    rows: list[Row] = []
    size = deployed_size()  # first: the cold starts need the layer's list of packages
    with SimulatorProcess() as provider:
        requests = coldstart.record_requests(provider.url)
        figures = coldstart.measure(requests, runs, {"TWILIO_API_URL": provider.url})
    rows += batch.warm_batch(3 if args.quick else 9, latency=0.2, aws_latency=0.02)
    rows += batch.stats_read(5 if args.quick else 21)
    rows += preview(200 if args.quick else 2000)
    rows += size
    rows += twilio_vs_sdk(runs, 20 if args.quick else 100)
    print(cold_starts(figures))
    print()
    print(_table(("measure", "median", "floor", "ratio", "target", "met"), rows))
    print(
        f"\n{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}, {time.time() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
