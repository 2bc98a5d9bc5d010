"""Alert storms and opt-outs: a flapping rule does not flood anyone, a STOP is respected."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devstack.handlers import load
from devstack.lambda_context import LambdaContext
from devstack.simulators import ProviderSimulator
from devstack.sqs import sqs_event, sqs_record
from sms_connector import aws, clock, connector_store, dynamo, limits, stats
from sms_connector.sending import batch, record
from tests.conftest import Api, dies_before_recording, sent_emails
from tests.test_models import EMAIL, GUIDE_46ELKS, GUIDE_TELNYX, GUIDE_TWILIO, with_
from tests.test_sending import log_entries, make

SOAK = os.environ.get("SOAK") == "1"
STORM = int(os.environ.get("STORM_OVERRIDE") or (1000 if SOAK else 100))


@pytest.fixture
def frozen_clock() -> Any:
    moments = [datetime(2026, 11, 25, 12, 0, 5, tzinfo=UTC)]
    clock.set_clock(lambda: moments[-1])
    yield moments
    clock.set_clock(None)


def test_a_storm_ends_with_the_hourly_cap_and_one_summary_per_recipient(
    connectors_api: Api, sender: Any, sim: ProviderSimulator, frozen_clock: list[datetime], atomic_aws_calls: None
) -> None:
    # Given a connector with three recipients, at most 5 SMS each per hour
    team = [{"to": "+46710000001"}, {"to": "+46710000002"}, {"to": "+46710000003"}]
    connector = make(
        connectors_api, with_(GUIDE_46ELKS, name="Freezer", recipients=team, limits={"maxPerRecipientPerHour": 5})
    )
    # When a flapping rule fires STORM times within minutes, from four concurrent consumers
    errors: list[BaseException] = []

    def consumer(n: int) -> None:
        try:
            for start in range(n * 10, STORM, 40):
                bodies = [
                    {"connectorId": connector, "message": f"Freezer warm ({i})", "actionId": f"flap-{i}"}
                    for i in range(start, min(start + 10, STORM))
                ]
                assert sender(*bodies) == []
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=consumer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    # Then each recipient got exactly 5 SMS, and every other one is counted as suppressed
    per_person = Counter(r.fields["to"] for r in sim.sent())
    assert per_person == {m["to"]: 5 for m in team}
    figures = stats.read(connector)
    assert (figures["totalSent"], figures["totalSuppressed"]) == (15, 3 * (STORM - 5))
    # and the log says so once, not once per SMS
    entries = log_entries(connector)
    assert [e["errorCode"] for e in entries] == ["limit_hourly"] and entries[0]["level"] == "warning"
    # When the hour is over, the sweep sends one summary per recipient, once
    frozen_clock.append(datetime(2026, 11, 25, 13, 2, tzinfo=UTC))
    assert limits.summaries() == 3
    assert limits.summaries() == 0
    summaries = [r for r in sim.sent() if "more alerts" in r.fields["text"]]
    assert sorted(r.fields["to"] for r in summaries) == sorted(m["to"] for m in team)
    assert summaries[0].fields["text"].startswith(f"{STORM - 5} more alerts from Freezer were held back")
    assert stats.read(connector)["totalSent"] == 18
    print(
        json.dumps(
            {
                "suite": "storm",
                "actions": STORM,
                "recipients": 3,
                "cap": 5,
                "sms": 15,
                "summaries": 3,
                "suppressed": 3 * (STORM - 5),
                "logLines": len(entries),
            }
        )
    )


def test_the_same_text_within_the_window_is_sent_once(
    connectors_api: Api, sender: Any, sim: ProviderSimulator, frozen_clock: list[datetime]
) -> None:
    connector = make(
        connectors_api,
        with_(GUIDE_TWILIO, recipients=[{"to": "+46710000001"}], limits={"duplicateWindowMinutes": 10}),
    )
    for i in range(3):  # three firings of the same alarm, within minutes
        frozen_clock.append(frozen_clock[0] + timedelta(minutes=i))
        assert sender({"connectorId": connector, "message": "Door open", "actionId": f"door-{i}"}) == []
    assert sender({"connectorId": connector, "message": "Door closed", "actionId": "door-x"}) == []
    frozen_clock.append(frozen_clock[0] + timedelta(minutes=11))
    assert sender({"connectorId": connector, "message": "Door open", "actionId": "door-later"}) == []
    assert [r.fields["text"] for r in sim.sent()] == ["Door open", "Door closed", "Door open"]
    assert stats.read(connector)["totalSuppressed"] == 2


def test_the_monthly_budget_warns_before_and_stops_at_the_budget(
    connectors_api: Api, sender: Any, sim: ProviderSimulator, pipeline: Any, frozen_clock: list[datetime]
) -> None:
    make(connectors_api, EMAIL)
    connector = make(
        connectors_api,
        with_(
            GUIDE_46ELKS,
            recipients=[{"to": "+46710000001", "backupEmail": "ops@example.com"}],
            limits={"monthlySegmentBudget": 10},
        ),
    )
    for i in range(12):
        pipeline.enqueue({"connectorId": connector, "message": f"Reading {i}", "actionId": f"b{i}"})
        pipeline.run()
    assert len(sim.sent()) == 10
    figures = stats.read(connector)
    assert (figures["totalSent"], figures["totalSuppressed"], figures["segmentsThisMonth"]) == (10, 2, 10)
    codes = [e["errorCode"] for e in log_entries(connector)]
    assert sorted(codes) == ["limit_budget", "limit_budget_warning"]
    warning = next(e for e in log_entries(connector) if e["errorCode"] == "limit_budget_warning")
    assert "80 % of this month's 10" in warning["message"]
    assert "budget of 10 segments is used up" in figures["lastError"]["message"]
    # the alert still reaches the person: by email
    assert len(sent_emails()) == 2


def test_an_opted_out_recipient_is_skipped_and_emailed_until_cleared(
    connectors_api: Api, pipeline: Any, sim: ProviderSimulator
) -> None:
    make(connectors_api, EMAIL)
    team = [{"to": "+46710000001"}, {"to": "+46700000002", "backupEmail": "stopped@example.com"}]
    connector = make(connectors_api, with_(GUIDE_TWILIO, recipients=team))
    # The provider refuses the second one: it replied STOP
    pipeline.enqueue({"connectorId": connector, "message": "First", "actionId": "s1"})
    pipeline.run()
    _status, shown = connectors_api("GET", f"/connectors/{connector}")
    assert [r["optedOut"] for r in shown["recipients"]] == [False, True]
    calls_before = len(sim.received("twilio"))
    # Later sends skip it, count it as suppressed, and email instead
    pipeline.enqueue({"connectorId": connector, "message": "Second", "actionId": "s2"})
    pipeline.run()
    assert len(sim.received("twilio")) == calls_before + 1  # only the first recipient
    figures = stats.read(connector)
    assert (figures["totalSent"], figures["totalFails"], figures["totalSuppressed"]) == (2, 1, 1)
    assert [e.body.split("\n")[0] for e in sent_emails()] == ["First", "Second"]
    # A PUT that leaves optedOut out keeps it; one that says false clears it
    body = with_(GUIDE_TWILIO, recipients=team)
    assert connectors_api("PUT", f"/connectors/{connector}", body)[1]["recipients"][1]["optedOut"] is True
    cleared = with_(GUIDE_TWILIO, recipients=[team[0], team[1] | {"optedOut": False}])
    assert connectors_api("PUT", f"/connectors/{connector}", cleared)[1]["recipients"][1]["optedOut"] is False
    pipeline.enqueue({"connectorId": connector, "message": "Third", "actionId": "s3"})
    pipeline.run()
    assert len(sim.received("twilio")) == calls_before + 3  # tried again (and refused again)


def test_limits_are_validated_shown_and_editable(connectors_api: Api) -> None:
    status, answer = connectors_api(
        "POST",
        "/connectors",
        with_(GUIDE_46ELKS, recipients=[{"to": "+46710000001"}], limits={"maxPerRecipientPerHour": 0}),
    )
    assert status == 422 and answer["detail"][0]["field"] == "limits.maxPerRecipientPerHour"
    status, answer = connectors_api(
        "POST", "/connectors", with_(GUIDE_46ELKS, recipients=[{"to": "+46710000001"}], limits={"perDay": 3})
    )
    assert status == 422 and answer["detail"][0]["field"] == "limits.perDay"
    body = with_(GUIDE_46ELKS, recipients=[{"to": "+46710000001"}], limits={"duplicateWindowMinutes": 5})
    status, created = connectors_api("POST", "/connectors", body)
    assert status == 201 and created["limits"] == {"duplicateWindowMinutes": 5}  # only the limits set
    body["limits"] = {"monthlySegmentBudget": 1000}
    assert connectors_api("PUT", f"/connectors/{created['id']}", body)[1]["limits"]["monthlySegmentBudget"] == 1000
    del body["limits"]
    assert "limits" not in connectors_api("PUT", f"/connectors/{created['id']}", body)[1]


def test_limits_cost_one_aws_call_per_batch_and_nothing_without_them(
    connectors_api: Api, sender: Any, sim: ProviderSimulator
) -> None:
    team = [{"to": f"+4671000{i:04d}"} for i in range(3)]
    plain = make(connectors_api, with_(GUIDE_46ELKS, name="plain", recipients=team))
    limits_on = {"maxPerRecipientPerHour": 50, "duplicateWindowMinutes": 5, "monthlySegmentBudget": 1000}
    limited = make(connectors_api, with_(GUIDE_46ELKS, name="limited", recipients=team, limits=limits_on))
    calls: list[str] = []
    aws.client("dynamodb").meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    for connector, expected in ((plain, 3), (limited, 4)):
        calls.clear()
        bodies = [{"connectorId": connector, "message": f"m{i}", "actionId": f"{connector}-{i}"} for i in range(10)]
        assert sender(*bodies) == []  # 30 SMS
        assert len(calls) == expected, calls  # read, claim, [limits], record


# --- the hourly summaries under a sweep that runs twice, is busy, or cannot record --------------


SUMMARY_TO = "+46710000001"


def held_back(connectors_api: Api, sender: Any, frozen_clock: list[datetime]) -> str:
    """A connector capped at 1 SMS an hour, 3 actions fired at 12:00: 2 held back; the hour then ends."""
    connector = make(
        connectors_api,
        with_(GUIDE_46ELKS, name="Freezer", recipients=[{"to": SUMMARY_TO}], limits={"maxPerRecipientPerHour": 1}),
    )
    for i in range(3):
        assert sender({"connectorId": connector, "message": f"warm {i}", "actionId": f"f{i}"}) == []
    assert stats.read(connector)["totalSent"] == 1
    frozen_clock.append(datetime(2026, 11, 25, 13, 2, tzinfo=UTC))
    return connector


def summary_sms(sim: ProviderSimulator) -> list[Any]:
    return [r for r in sim.sent() if "more alerts" in r.fields["text"]]


def test_two_sweeps_at_once_send_one_summary_and_neither_crashes(
    connectors_api: Api, sender: Any, sim: ProviderSimulator, frozen_clock: list[datetime], monkeypatch: Any
) -> None:
    connector = held_back(connectors_api, sender, frozen_clock)
    real = batch.send_summary
    inner: list[Any] = []
    started: list[bool] = []

    def with_a_second_sweep(*args: Any, **kwargs: Any) -> Any:
        status = real(*args, **kwargs)
        if not started:  # EventBridge delivered the schedule twice: the other sweep runs now
            started.append(True)
            inner.append(limits.summaries())
        return status

    monkeypatch.setattr(batch, "send_summary", with_a_second_sweep)
    outer = limits.summaries()  # the second sweep took the index entry out first: no crash
    assert (outer, inner) == (1, [0])
    assert len(summary_sms(sim)) == 1
    assert stats.read(connector)["totalSent"] == 2


def test_a_summary_another_sweep_holds_is_not_dropped_from_the_index(
    connectors_api: Api, sender: Any, sim: ProviderSimulator, frozen_clock: list[datetime]
) -> None:
    connector_id = held_back(connectors_api, sender, frozen_clock)
    connector = connector_store.get(connector_id)
    assert connector is not None
    # Another sweep (EventBridge delivered the schedule twice) has claimed the summary SMS...
    other = record.Sms(connector, "summary-2026-11-25T12", SUMMARY_TO, "2 more alerts", None, "summary")
    record.claim([other], "other-sweep", time.time() + 60)
    assert other.claim == "claimed"
    assert limits.summaries() == 0  # busy: this sweep does not send it
    # ...and then had no time left to send it: it gives the claim back, keeping the index entry
    record.release([other], "other-sweep")
    # Then a later sweep sends the summary
    assert limits.summaries() == 1  # the busy sweep left the index entry
    assert len(summary_sms(sim)) == 1


def test_a_summary_sent_but_not_recorded_is_recorded_by_the_next_sweep(
    connectors_api: Api, sender: Any, sim: ProviderSimulator, frozen_clock: list[datetime], monkeypatch: Any
) -> None:
    connector = held_back(connectors_api, sender, frozen_clock)
    real = record.commit

    def recording_down(writes: list[record.Write]) -> list[record.Write]:
        return list(writes)  # every write failed (DynamoDB throttled, say)

    monkeypatch.setattr(record, "commit", recording_down)
    limits.summaries()
    monkeypatch.setattr(record, "commit", real)
    assert len(summary_sms(sim)) == 1  # the summary went out
    limits.summaries()
    limits.summaries()
    assert len(summary_sms(sim)) == 1  # and not twice
    # the SMS that went out is counted, once
    stored = record.read(record.sms_id(connector, "summary-2026-11-25T12", SUMMARY_TO)) or {}
    assert stored.get("state") == record.STATE_SENT, stored.get("state")  # not UNRECORDED forever
    assert stats.read(connector)["totalSent"] == 2


# --- an SMS is weighed against the limits once, however often it is claimed ------------------


def _first_delivery_without_time(connector: str, body: dict[str, Any]) -> list[str]:
    """The first delivery of `body` has no time to call the provider (Lambda timeout 4 s,
    3 s safety margin): its SMS is not attempted, released, and the action comes back."""
    handler = load("SenderFunction")
    answer = handler(sqs_event(sqs_record(body, message_id="m")), LambdaContext("sender", timeout_seconds=4))
    return [f["itemIdentifier"] for f in answer["batchItemFailures"]]


LIMIT_KINDS = {
    "duplicate": {"duplicateWindowMinutes": 10},
    "hourly": {"maxPerRecipientPerHour": 1},
    "budget": {"monthlySegmentBudget": 1},
}


@pytest.mark.parametrize("limit", list(LIMIT_KINDS))
def test_an_sms_not_attempted_for_lack_of_time_is_sent_on_redelivery_despite_limits(
    connectors_api: Api, sim: ProviderSimulator, sender: Any, frozen_clock: Any, limit: str
) -> None:
    """DESIGN: 'SMS not attempted in time are not outcomes: their records go back to SQS ...
    and their claims are released so the redelivery takes them.' The limits were taken for the
    SMS on the first delivery; the redelivery must not take them again (or be held back by its
    own duplicate marker)."""
    connector = make(connectors_api, with_(GUIDE_46ELKS, recipients=[{"to": SUMMARY_TO}], limits=LIMIT_KINDS[limit]))
    body = {"connectorId": connector, "message": "Freezer warm", "actionId": "a1"}
    assert _first_delivery_without_time(connector, body) == ["m"]
    assert sim.sent() == []
    # When SQS redelivers it with time enough
    assert sender(body, message_ids=["m"]) == []
    # Then the one and only SMS of this action is sent, not suppressed by itself
    figures = stats.read(connector)
    assert (len(sim.sent()), figures["totalSent"], figures["totalSuppressed"]) == (1, 1, 0), figures


@pytest.mark.parametrize("limit", list(LIMIT_KINDS))
def test_an_sms_whose_holder_died_before_recording_is_not_suppressed_by_its_own_limits(
    connectors_api: Api, sim: ProviderSimulator, sender: Any, frozen_clock: Any, monkeypatch: Any, limit: str
) -> None:
    """The first holder took the limits, texted, then died before any recording (its
    keep_unrecorded failed too); its lease ran out. The redelivery looks the message up
    (Telnyx: same Idempotency-Key) and must record it as SENT, once; not as suppressed."""
    connector = make(connectors_api, with_(GUIDE_TELNYX, recipients=[{"to": SUMMARY_TO}], limits=LIMIT_KINDS[limit]))
    body = {"connectorId": connector, "message": "Freezer warm", "actionId": "a1"}
    dies_before_recording(monkeypatch, lambda: sender(body, message_ids=["m"]))
    assert len(sim.sent()) == 1
    sms = record.sms_id(connector, "a1", SUMMARY_TO)
    dynamo.update_if(record.key(sms), sets={"leaseUntil": 1})  # the Lambda was killed
    assert sender(body, message_ids=["m-redriven"]) == []  # a redrive gives it a new SQS id
    figures = stats.read(connector)
    assert (record.read(sms) or {}).get("state") in (record.STATE_SENT, record.DELIVERED)
    assert (len(sim.sent()), figures["totalSent"], figures["totalSuppressed"]) == (1, 1, 0), figures


def test_a_put_that_leaves_opted_out_out_keeps_a_mark_set_while_it_ran(connectors_api: Api, monkeypatch: Any) -> None:
    """DESIGN/guide: a PUT that leaves optedOut out keeps the mark. A batch marks the recipient
    (provider answered 'opted out') between the PUT's read and its write."""
    team = [{"to": SUMMARY_TO}, {"to": "+46710000002"}]
    connector = make(connectors_api, with_(GUIDE_46ELKS, recipients=team))
    real = connector_store.replace

    def batch_marks_meanwhile(rec: dict[str, Any], **kwargs: Any) -> bool:
        if not marked:
            marked.append(True)
            limits.mark_opted_out(connector, SUMMARY_TO)
        return real(rec, **kwargs)

    marked: list[bool] = []

    monkeypatch.setattr(connector_store, "replace", batch_marks_meanwhile)
    status, _ = connectors_api("PUT", f"/connectors/{connector}", with_(GUIDE_46ELKS, name="Renamed", recipients=team))
    assert status == 200
    monkeypatch.setattr(connector_store, "replace", real)
    shown = connectors_api("GET", f"/connectors/{connector}")[1]
    assert shown["recipients"][0]["optedOut"] is True  # the STOP is not forgotten
    assert shown["name"] == "Renamed" and shown["recipients"][1]["optedOut"] is False
