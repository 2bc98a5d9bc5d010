"""The warm batch (10 rule actions x 3 recipients against one provider round trip), its AWS
calls per SMS, and the statistics read, against moto (see `moto_calls` for its time)."""

from __future__ import annotations

import json
import os
import statistics
import time
from typing import Any

from bench.moto_calls import SIM_ACCOUNT, Calls, SimulatorProcess, create_connector, in_moto

Row = tuple[str, str, str, str, str, str]  # measure, value, floor, ratio, target, met


def _met(ok: bool) -> str:
    return "yes" if ok else "NO"


def warm_batch(repeats: int, latency: float, aws_latency: float) -> list[Row]:
    """The sender's wall time for a warm batch against one provider round trip (`latency`
    plus the simulator's own handling, measured in the same run)."""
    with SimulatorProcess(latency) as sim:

        def body(stack: Any, calls: Calls) -> list[Row]:
            from devstack.handlers import load
            from devstack.lambda_context import LambdaContext
            from devstack.sqs import sqs_event, sqs_record
            from sms_connector import config

            os.environ["TWILIO_API_URL"] = sim.url
            os.environ["FALLBACK_QUEUE_URL"] = stack.refs["FallbackQueue"]
            config.reset()
            connector = create_connector(3)
            sender = load("SenderFunction")

            def batch(n: int) -> dict[str, Any]:
                records = [
                    sqs_record({"connectorId": connector, "message": f"bench {n}-{i}", "actionId": f"{n}-{i}"})
                    for i in range(10)
                ]
                return sender(sqs_event(*records), LambdaContext("sender", 60))

            batch(-1)  # warm: connections, threads, secret cache, connectors, imports
            runs: dict[str, list[float]] = {"raw": [], "without": [], "modelled": []}
            counts = []
            kinds: set[str] = set()
            n = 0
            for _ in range(repeats):
                for latency_of_aws in (0.0, aws_latency):  # raw, then each call modelled
                    calls.latency = latency_of_aws
                    before = len(calls.names)
                    started = time.perf_counter()
                    answer = batch(n)
                    ended = time.perf_counter()
                    n += 1
                    assert answer["batchItemFailures"] == [], answer
                    counts.append(len(calls.names) - before)
                    kinds |= set(calls.names[before:])
                    if latency_of_aws:
                        runs["modelled"].append(ended - started - calls.moto_cpu(started))
                    else:
                        runs["raw"].append(ended - started)
                        runs["without"].append(ended - started - calls.moto_cpu(started))
                    _forget_smses()
            calls.latency = 0.0
            assert sim.sent() == 30 * (n + 1)
            wall, model, less = (statistics.median(runs[k]) for k in ("raw", "modelled", "without"))
            trip = _round_trip(sim.url, repeats)
            together = _round_trip(sim.url, repeats, at_once=30)
            per_sms = statistics.median(counts) / 30
            round_trip = f"{trip * 1000:.0f} ms (1 round trip, measured)"
            return [
                (
                    f"warm batch, 10 actions x 3 recipients, each AWS call {aws_latency * 1000:.0f} ms",
                    f"{model * 1000:.0f} ms",
                    round_trip,
                    f"{model / trip:.2f}x",
                    "<= 1.3x",
                    _met(model / trip <= 1.3),
                ),
                (
                    "  the same, AWS calls taking no time (moto's CPU left out)",
                    f"{less * 1000:.0f} ms",
                    round_trip,
                    f"{less / trip:.2f}x",
                    "<= 1.3x",
                    _met(less / trip <= 1.3),
                ),
                (
                    "  30 sends at once by a bare HTTP client (30 threads), no AWS call",
                    f"{together * 1000:.0f} ms",
                    round_trip,
                    f"{together / trip:.2f}x",
                    "report",
                    "-",
                ),
                (
                    "  the same, raw: AWS calls as long as moto takes (table cleared between batches)",
                    f"{wall * 1000:.0f} ms",
                    round_trip,
                    f"{wall / trip:.2f}x",
                    "report",
                    "-",
                ),
                (
                    "AWS calls per SMS (warm batch)",
                    f"{per_sms:.2f} ({statistics.median(counts):.0f} calls: {', '.join(sorted(kinds))})",
                    "30 SMS",
                    f"{per_sms:.2f}",
                    "<= 0.1",
                    _met(per_sms <= 0.1 + 1e-9),
                ),
            ]

        rows: list[Row] = in_moto(body)
        return rows


def _forget_smses() -> None:
    """Delete the batch's SMS records (untimed): moto's transactions deep-copy the whole table
    per item, so a growing table would make its CPU, and the noise of a shared machine on it,
    grow from batch to batch. Every batch has new action ids, so nothing is found sent."""
    from sms_connector import dynamo

    scan: dict[str, Any] = {
        "TableName": dynamo.table(),
        "FilterExpression": "begins_with(pk, :sms)",
        "ExpressionAttributeValues": {":sms": {"S": "SMS#"}},
        "ProjectionExpression": "pk, sk",
    }
    keys = dynamo.client().scan(**scan)["Items"]
    dynamo.batch_write([{"DeleteRequest": {"Key": key}} for key in keys])


def _round_trip(url: str, repeats: int, at_once: int = 1) -> float:
    """One send to the simulated provider by a bare HTTP client, on a kept-alive connection:
    the `latency` it waits plus its own handling, the floor the batch is compared with. With
    `at_once`, that many sends from as many threads, until the last answer: what a batch's
    sends cost by themselves on this machine (the interpreter lock, the simulator's threads)."""
    from concurrent.futures import ThreadPoolExecutor

    import urllib3

    sid, token = SIM_ACCOUNT
    headers = urllib3.make_headers(basic_auth=f"{sid}:{token}")
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    body = b"To=%2B46710000001&From=%2B46700000000&Body=bench"
    pool = urllib3.PoolManager(maxsize=at_once)
    threads = ThreadPoolExecutor(at_once)

    def send(_: int) -> None:
        answer = pool.request("POST", f"{url}/2010-04-01/Accounts/{sid}/Messages.json", headers=headers, body=body)
        assert answer.status == 201, answer.data

    times = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        list(threads.map(send, range(at_once)))
        times.append(time.perf_counter() - started)
    threads.shutdown()
    return statistics.median(times[1:])  # the first one connects


def stats_read(repeats: int) -> list[Row]:
    def body(stack: Any, calls: Calls) -> list[Row]:
        from devstack.apigw import http_event
        from devstack.handlers import load
        from devstack.lambda_context import LambdaContext
        from sms_connector import clock, dynamo, stats

        connector = create_connector(1)
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
            times, counts = [], []
            for _ in range(repeats):
                before = len(calls.names)
                started = time.perf_counter()
                answer = handler(
                    http_event("GET", f"/connectors/{connector}/stats", claims={"tenant_id": "t"}),
                    LambdaContext("stats"),
                )
                times.append(time.perf_counter() - started)
                counts.append(len(calls.names) - before)
            return statistics.median(times), int(statistics.median(counts)), json.loads(answer["body"])

        record(10)
        t10, c10, f10 = read()
        record(9990)
        t10k, c10k, f10k = read()
        assert (f10["attempts"], f10k["attempts"]) == (10, 10000)
        kinds = ", ".join(sorted(set(calls.names[-c10k:])))
        return [
            (
                "stats read after 10 sends",
                f"{t10 * 1000:.1f} ms, {c10} call ({kinds})",
                "-",
                "-",
                "1 call",
                _met(c10 == 1),
            ),
            (
                "stats read after 10,000 sends",
                f"{t10k * 1000:.1f} ms, {c10k} call",
                f"{t10 * 1000:.1f} ms (10 sends)",
                f"{t10k / t10:.2f}x",
                "1 call, same time",
                _met(c10k == 1 and t10k / t10 < 1.5),
            ),
        ]

    rows: list[Row] = in_moto(body)
    return rows
