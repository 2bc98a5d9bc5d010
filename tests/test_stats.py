"""Statistics panel, error log and the failure log lines, after known mixes of sends."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

import pytest

from devstack.simulators import ProviderSimulator
from sms_connector import clock
from tests.conftest import Api
from tests.test_models import EMAIL, GUIDE_46ELKS, GUIDE_TELNYX, with_
from tests.test_sending import make


@pytest.fixture
def frozen_clock() -> Any:
    moments: list[datetime] = [datetime(2026, 11, 25, 12, 0, tzinfo=UTC)]
    clock.set_clock(lambda: moments[-1])
    yield moments
    clock.set_clock(None)


def test_a_connector_with_no_sends_has_zeros_and_no_rate(stats_api: Api, connectors_api: Api) -> None:
    connector = make(connectors_api, with_(GUIDE_46ELKS, recipients=[{"to": "+46710000001"}]))
    status, figures = stats_api("GET", f"/connectors/{connector}/stats")
    assert status == 200
    assert figures == {
        "totalSent": 0,
        "totalFails": 0,
        "sentThisMonth": 0,
        "attempts": 0,
        "successRate": None,
        "lastSentAt": None,
        "lastFailedAt": None,
        "lastError": None,
        "fallbackEmailsSent": 0,
        "fallbackEmailsFailed": 0,
        "totalUnknown": 0,
        "totalDelivered": 0,
        "totalUndelivered": 0,
        "pendingReceipts": 0,
        "totalNoReceipt": 0,
        "deliveryRate": None,
        "lastDeliveredAt": None,
        "totalSuppressed": 0,
        "segmentsThisMonth": 0,
        "costThisMonth": [],
        "daily": figures["daily"],
    }
    assert [d["sent"] + d["failed"] for d in figures["daily"]] == [0] * len(figures["daily"])
    assert stats_api("GET", f"/connectors/{connector}/logs") == (200, {"items": [], "nextToken": None})


def test_a_known_mix_gives_exact_figures_and_log(
    stats_api: Api, connectors_api: Api, pipeline: Any, frozen_clock: list[datetime]
) -> None:
    make(connectors_api, EMAIL)
    team = [
        {"to": "+46710000001"},
        {"to": "+46710000002"},
        {"to": "+46700000002", "backupEmail": "b@example.com"},  # opted out, falls back to email
        {"to": "+46700000001"},  # invalid number
    ]
    connector = make(connectors_api, with_(GUIDE_TELNYX, recipients=team))
    for minute in range(3):
        frozen_clock.append(datetime(2026, 11, 25, 12, minute + 1, tzinfo=UTC))
        pipeline.enqueue({"connectorId": connector, "message": f"Alarm {minute}", "actionId": f"act-{minute}"})
        pipeline.run()
    status, figures = stats_api("GET", f"/connectors/{connector}/stats")
    assert status == 200
    # The opted-out recipient fails once (40300), is marked, and is then skipped (suppressed)
    assert (figures["totalSent"], figures["totalFails"], figures["totalSuppressed"]) == (6, 4, 2)
    assert figures["attempts"] == 10 and figures["sentThisMonth"] == 6 and figures["successRate"] == 60.0
    assert figures["lastSentAt"] == figures["lastFailedAt"] == "2026-11-25T12:03:00.000Z"
    assert figures["lastError"]["at"] == "2026-11-25T12:03:00.000Z"
    assert (figures["fallbackEmailsSent"], figures["fallbackEmailsFailed"]) == (3, 0)  # the skipped still email
    status, log = stats_api("GET", f"/connectors/{connector}/logs", query={"limit": "100"})
    errors = [e for e in log["items"] if e["level"] == "error"]
    assert status == 200 and len(errors) == 4
    assert [e["at"] for e in log["items"]] == sorted((e["at"] for e in log["items"]), reverse=True)
    assert {e["recipient"] for e in errors} == {"+46 *******02", "+46 *******01"}
    assert sorted(e["errorCode"] for e in errors) == ["40300", "40310", "40310", "40310"]
    assert {e["actionId"] for e in errors} == {"act-0", "act-1", "act-2"}
    assert all(e["provider"] == "telnyx" for e in log["items"])
    [burst] = [e for e in log["items"] if e["level"] == "warning"]  # one word for the skipped ones
    assert burst["errorCode"] == "limit_opted_out"


def test_sent_this_month_rolls_over_at_the_utc_month_boundary(
    stats_api: Api, connectors_api: Api, sender: Any, frozen_clock: list[datetime]
) -> None:
    connector = make(connectors_api, with_(GUIDE_46ELKS, recipients=[{"to": "+46710000001"}]))
    frozen_clock.append(datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC))
    assert sender({"connectorId": connector, "message": "a"}, {"connectorId": connector, "message": "b"}) == []
    assert stats_api("GET", f"/connectors/{connector}/stats")[1]["sentThisMonth"] == 2
    frozen_clock.append(datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC))
    assert stats_api("GET", f"/connectors/{connector}/stats")[1]["sentThisMonth"] == 0
    assert sender({"connectorId": connector, "message": "c"}) == []
    figures = stats_api("GET", f"/connectors/{connector}/stats")[1]
    assert (figures["totalSent"], figures["sentThisMonth"]) == (3, 1)


def test_concurrent_batches_on_one_connector_count_exactly(
    stats_api: Api, connectors_api: Api, sim: ProviderSimulator, sender: Any, atomic_aws_calls: None
) -> None:
    team = [{"to": "+46710000001"}, {"to": "+46710000002"}, {"to": "+46700000001"}]
    connector = make(connectors_api, with_(GUIDE_46ELKS, recipients=team))
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for batch in range(3):
                bodies = [{"connectorId": connector, "message": f"w{n} b{batch} m{i}"} for i in range(10)]
                assert sender(*bodies) == []
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    figures = stats_api("GET", f"/connectors/{connector}/stats")[1]
    actions = 4 * 3 * 10
    assert figures["totalSent"] == 2 * actions == len(sim.sent())
    assert figures["totalFails"] == actions


def test_the_log_is_paginated_newest_first(
    stats_api: Api, connectors_api: Api, sender: Any, frozen_clock: list[datetime]
) -> None:
    connector = make(connectors_api, with_(GUIDE_46ELKS, recipients=[{"to": "+46700000001"}]))
    for i in range(25):
        frozen_clock.append(datetime(2026, 11, 25, 13, 0, i, tzinfo=UTC))
        assert sender({"connectorId": connector, "message": "x", "actionId": f"a{i:02d}"}) == []
    seen: list[str] = []
    token = None
    sizes = []
    while True:
        query = {"limit": "10"} | ({"nextToken": token} if token else {})
        status, page = stats_api("GET", f"/connectors/{connector}/logs", query=query)
        assert status == 200
        sizes.append(len(page["items"]))
        seen += [e["actionId"] for e in page["items"]]
        token = page["nextToken"]
        if not token:
            break
    assert seen == [f"a{i:02d}" for i in reversed(range(25))]
    assert sizes[:3] == [10, 10, 5]


def test_log_entries_expire_after_the_retention(
    connectors_api: Api, sender: Any, frozen_clock: list[datetime], monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    import boto3

    from sms_connector import config

    monkeypatch.setenv("LOG_RETENTION_DAYS", "30")
    config.reset()
    connector = make(connectors_api, with_(GUIDE_46ELKS, recipients=[{"to": "+46700000001"}]))
    assert sender({"connectorId": connector, "message": "x"}) == []
    items = boto3.client("dynamodb").scan(TableName=os.environ["TABLE_NAME"])["Items"]
    [entry] = [i for i in items if i["sk"]["S"].startswith("LOG#")]
    assert int(entry["expiresAt"]["N"]) == int(datetime(2026, 12, 25, 12, 0, tzinfo=UTC).timestamp())


def test_another_tenant_cannot_read_stats_or_logs(stats_api: Api, connectors_api: Api) -> None:
    connector = make(connectors_api, with_(GUIDE_46ELKS, recipients=[{"to": "+46710000001"}]))
    intruder = stats_api.as_tenant("tenant-b")
    assert intruder("GET", f"/connectors/{connector}/stats")[0] == 404
    assert intruder("GET", f"/connectors/{connector}/logs")[0] == 404


def test_a_failure_log_line_carries_the_fields_and_no_secrets(
    connectors_api: Api, sender: Any, log_output: Any
) -> None:
    connector = make(connectors_api, with_(GUIDE_46ELKS, recipients=[{"to": "+46700000001"}]))
    assert sender({"connectorId": connector, "message": "Secret plant is on fire"}) == []
    lines = [json.loads(line) for line in log_output.getvalue().splitlines() if line.startswith("{")]
    [failure] = [line for line in lines if line.get("message") == "sms failed"]
    assert failure["level"] == "ERROR"
    assert failure["connector_id"] == connector and failure["tenant_id"] == "tenant-a"
    assert failure["provider"] == "46elks" and failure["error_code"] == "400"
    assert failure["error_message"] == "Invalid to number" and failure["recipient"] == "+46 *******01"
    everything = "\n".join(json.dumps(line) for line in lines)
    assert "+46700000001" not in everything and "Secret plant" not in everything
    assert "your_46elks_password" not in everything


def test_emf_metrics_per_provider(connectors_api: Api, sender: Any, capsys: pytest.CaptureFixture[str]) -> None:
    connector = make(connectors_api, with_(GUIDE_46ELKS, recipients=[{"to": "+46710000001"}, {"to": "+46700000001"}]))
    capsys.readouterr()
    assert sender({"connectorId": connector, "message": "x"}) == []
    [emf] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    names = {m["Name"] for m in emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert names == {"SmsSent", "SmsFailed", "SmsUnknown", "ProviderLatency"}
    assert emf["provider"] == "46elks" and emf["SmsSent"] == [1.0] and emf["SmsFailed"] == [1.0]
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "SmsConnector"
