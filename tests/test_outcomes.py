"""Outcomes, unknowns and time (DESIGN.md): the faults real providers produce, from outside.

Every scenario ends with each recipient texted once (or, for an unknown outcome, at most once
and emailed), counters equal to what the simulator took, one log entry per failure and one
backup email per failed recipient.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from typing import Any

import boto3
import pytest

from devstack.handlers import load
from devstack.lambda_context import LambdaContext
from devstack.simulators import Answer, ProviderSimulator
from devstack.sqs import sqs_event, sqs_record
from scripts.redrive import redrive
from sms_connector import aws, config, stats
from sms_connector.providers import base
from sms_connector.sending import record
from tests.conftest import Api, dies_before_recording, sent_emails
from tests.test_models import EMAIL, GUIDE_46ELKS, GUIDE_TELNYX, GUIDE_TWILIO, with_
from tests.test_sending import log_entries, make

GUIDES = {"46elks": GUIDE_46ELKS, "telnyx": GUIDE_TELNYX, "twilio": GUIDE_TWILIO}
TAKEN_FAULTS = ["accept_then_hang", "accept_then_reset", "unreadable", "accept_then_500"]


def texted(sim: ProviderSimulator) -> Counter[tuple[str, str]]:
    return Counter((r.fields["to"], r.fields["text"]) for r in sim.sent())


def stored(connector: str, action: str, to: str) -> dict[str, Any]:
    found = record.read(record.sms_id(connector, action, to))
    assert found is not None
    return found


@pytest.mark.parametrize("fault", TAKEN_FAULTS)
@pytest.mark.parametrize("provider", ["46elks", "telnyx", "twilio"])
def test_a_message_taken_with_its_answer_lost_is_texted_once(
    connectors_api: Api, sim: ProviderSimulator, sender: Any, quick_timeouts: None, provider: str, fault: str
) -> None:
    # Given a provider that takes the message but whose answer is lost (no answer, a reset,
    # a proxy's page with a success status, a proxy's 502)
    connector = make(connectors_api, with_(GUIDES[provider], recipients=[{"to": "+46710000001"}]))
    sim.script(provider, fault, "ok", "ok")
    # When the rule action is sent
    assert sender({"connectorId": connector, "message": f"Alarm {fault}", "actionId": "a1"}) == []
    # Then the recipient got it once: Telnyx was asked again with the same Idempotency-Key and
    # replayed its answer; Twilio and 46elks were asked whether the message existed first
    assert texted(sim) == {("+46710000001", f"Alarm {fault}"): 1}
    [message] = sim.sent()
    assert stored(connector, "a1", "+46710000001")["messageId"] == message.message_id
    figures = stats.read(connector)
    assert (figures["totalSent"], figures["totalFails"], figures["totalUnknown"]) == (1, 0, 0)
    [warning] = log_entries(connector)  # the lost answer is worth a warning, not an error
    assert warning["level"] == "warning" and warning["message"].startswith("sent")
    if provider == "telnyx":
        keys = {r.headers["idempotency-key"] for r in sim.received("telnyx")}
        assert keys == {record.sms_id(connector, "a1", "+46710000001")}
    else:
        assert "GET" in [r.method for r in sim.received(provider)]


def test_telnyx_still_busy_with_the_first_request_is_asked_again_only_after_it_can_be_done(
    connectors_api: Api, sim: ProviderSimulator, sender: Any, quick_timeouts: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given Telnyx taking a message and answering nothing for 1.5 s (our read timeout is 1 s),
    # and backoff jitter that draws no pause at all (what flaked a CI run: three 409s in 0.3 s)
    from sms_connector.sending import attempts

    monkeypatch.setattr(attempts.random, "uniform", lambda low, high: low)
    connector = make(connectors_api, with_(GUIDE_TELNYX, recipients=[{"to": "+46710000001"}]))
    sim.script("telnyx", "accept_then_hang", "ok", "ok")
    # When the rule action is sent
    assert sender({"connectorId": connector, "message": "Door open", "actionId": "b1"}) == []
    # Then a 409 "still in flight" is waited out, the first request's answer is replayed, and the
    # SMS is SENT with its id, not left unknown
    answers = [r.answer for r in sim.received("telnyx")]
    assert answers[0] == "accept_then_hang" and answers[-1] == "replayed", answers
    assert len(sim.sent()) == 1
    assert stored(connector, "b1", "+46710000001")["messageId"] == sim.sent()[0].message_id
    assert stats.read(connector)["totalUnknown"] == 0


@pytest.mark.parametrize("provider", ["46elks", "twilio"])
def test_a_lost_answer_the_provider_cannot_settle_is_unknown_counted_logged_and_emailed(
    connectors_api: Api, pipeline: Any, sim: ProviderSimulator, quick_timeouts: None, provider: str
) -> None:
    # Given a provider that takes the message, loses its answer, and whose look-ups fail
    make(connectors_api, EMAIL)
    team = [{"to": "+46710000001", "backupEmail": "first@example.com"}]
    connector = make(connectors_api, with_(GUIDES[provider], recipients=team))
    sim.script(provider, "accept_then_hang")
    sim.lookup_fault_rate = 1.0
    pipeline.enqueue({"connectorId": connector, "message": "Gas leak", "actionId": "u1"})
    pipeline.run()
    # Then it is texted at most once, never resent blindly, and the person gets the email
    assert texted(sim) == {("+46710000001", "Gas leak"): 1}
    assert [r.method for r in sim.received(provider)].count("POST") == 1
    figures = stats.read(connector)
    assert (figures["totalSent"], figures["totalFails"], figures["totalUnknown"]) == (0, 0, 1)
    assert figures["fallbackEmailsSent"] == 1
    [entry] = log_entries(connector)
    assert entry["level"] == "warning" and "outcome unknown" in entry["message"]
    [email] = sent_emails()
    assert email.destinations["ToAddresses"] == ["first@example.com"] and "cannot tell" in email.body
    # And a redelivery tomorrow changes nothing
    sim.lookup_fault_rate = 0.0
    pipeline.enqueue({"connectorId": connector, "message": "Gas leak", "actionId": "u1"})
    pipeline.run()
    assert len(sim.sent()) == 1 and len(sent_emails()) == 1 and stats.read(connector)["totalUnknown"] == 1


def test_a_batch_stops_starting_calls_before_its_deadline_and_the_rest_comes_back(
    connectors_api: Api, sim: ProviderSimulator, fallback_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a slow provider (1 s an answer), 2 calls at a time, and an invocation of 9 s
    monkeypatch.setenv("PROVIDER_READ_TIMEOUT", "2.0")
    monkeypatch.setenv("SEND_CONCURRENCY", "2")
    config.reset()
    base.reset()
    from sms_connector.sending import batch

    monkeypatch.setattr(batch, "_executor", None)
    sim.latency = 1.0
    team = [{"to": f"+4671000{i:04d}"} for i in range(10)]
    connector = make(connectors_api, with_(GUIDE_TELNYX, recipients=team))
    handler = load("SenderFunction")
    bodies = [{"connectorId": connector, "message": f"Alarm {i}", "actionId": f"d{i}"} for i in range(3)]
    event = sqs_event(*[sqs_record(b, message_id=f"m{i}") for i, b in enumerate(bodies)])
    # When the batch of 30 SMS runs against its deadline
    started = time.monotonic()
    answer = handler(event, LambdaContext("sender", timeout_seconds=9))
    took = time.monotonic() - started
    # Then it returned before Lambda would kill it, with what it did not attempt going back
    assert took < 9 - 0.5, took
    failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
    first = len(sim.sent())
    assert 0 < first < 30 and failed
    assert stats.read(connector)["totalSent"] == first
    # And the redelivery (more time) sends exactly the rest
    answer = handler(
        sqs_event(*[sqs_record(b, message_id=f"m{i}") for i, b in enumerate(bodies) if f"m{i}" in failed]),
        LambdaContext("sender", timeout_seconds=60),
    )
    assert answer["batchItemFailures"] == []
    assert len(sim.sent()) == 30 and max(texted(sim).values()) == 1
    assert stats.read(connector)["totalSent"] == 30


def test_a_failed_second_recording_transaction_counts_each_sms_once(
    connectors_api: Api, sim: ProviderSimulator, sender: Any
) -> None:
    # Given a batch of 100 SMS, recorded in two transactions, the second of which fails
    team = [{"to": f"+4671000{i:04d}"} for i in range(10)]
    connector = make(connectors_api, with_(GUIDE_46ELKS, recipients=team))
    calls = {"n": 0}

    def second_recording_fails(params: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:  # 1: the claims, 2: the first recording chunk, 3: the second
            return _error(400, "ValidationException", "the second recording transaction fails")
        return None

    from sms_connector import aws

    dynamodb = aws.client("dynamodb")
    dynamodb.meta.events.register("before-call.dynamodb.TransactWriteItems", second_recording_fails)
    bodies = [{"connectorId": connector, "message": f"Alarm {i}", "actionId": f"r{i}"} for i in range(10)]
    ids = [f"m{i}" for i in range(10)]
    try:
        failed = sender(*bodies, message_ids=ids)
    finally:
        dynamodb.meta.events.unregister("before-call.dynamodb.TransactWriteItems", second_recording_fails)
    assert failed and len(failed) < 10  # only the actions with SMS in the failed chunk come back
    assert len(sim.sent()) == 100
    assert stats.read(connector)["totalSent"] == 100 - sum(
        stored(connector, f"r{i}", m["to"])["state"] == record.UNRECORDED for i in range(10) for m in team
    )
    # When SQS brings back everything (the failed ones, and by mistake the others too)
    assert sender(*bodies, message_ids=ids) == []
    # Then nobody was texted again and each SMS counts once
    assert len(sim.sent()) == 100 and max(texted(sim).values()) == 1
    assert stats.read(connector)["totalSent"] == 100


def _error(status: int, code: str, message: str) -> Any:
    class Response:
        status_code = status
        headers: dict[str, str] = {}

    return Response(), {"Error": {"Code": code, "Message": message}}


def test_a_reused_action_id_with_another_text_is_not_sent_and_is_logged_once_per_message(
    connectors_api: Api, sim: ProviderSimulator, sender: Any
) -> None:
    connector = make(connectors_api, with_(GUIDE_TWILIO, recipients=[{"to": "+46710000001"}, {"to": "+46710000002"}]))
    assert sender({"connectorId": connector, "message": "Door open", "actionId": "fire-1"}, message_ids=["m1"]) == []
    reuse = {"connectorId": connector, "message": "Window open", "actionId": "fire-1"}
    assert sender(reuse, message_ids=["m2"]) == []
    assert sender(reuse, message_ids=["m2"]) == []  # the same SQS message again: no second warning
    assert [r.fields["text"] for r in sim.sent()] == ["Door open", "Door open"]
    warnings = [e for e in log_entries(connector) if e["errorCode"] == "action_id_reused"]
    assert len(warnings) == 1 and "fire-1" in warnings[0]["message"] and warnings[0]["level"] == "warning"
    assert sender(reuse, message_ids=["m3"]) == []  # another message reusing it: said again
    assert len([e for e in log_entries(connector) if e["errorCode"] == "action_id_reused"]) == 2
    assert stats.read(connector)["totalSent"] == 2


def test_a_redriven_action_without_action_id_texts_nobody_twice(
    connectors_api: Api, pipeline: Any, sim: ProviderSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an action without actionId whose sends went out but could never be recorded,
    # so that after 5 receives SQS moved it to the DLQ
    team = [{"to": "+46710000001"}, {"to": "+46710000002"}]
    connector = make(connectors_api, with_(GUIDE_46ELKS, recipients=team))
    real = record.commit
    monkeypatch.setattr(record, "commit", lambda writes: list(writes))  # nothing is ever written
    first_id = pipeline.enqueue({"connectorId": connector, "message": "Freezer warm"})
    pipeline.run()
    monkeypatch.setattr(record, "commit", real)
    sqs = boto3.client("sqs")
    assert pipeline.dead_letters(pipeline.send_dlq) == [
        json.dumps({"connectorId": connector, "message": "Freezer warm"})
    ]
    assert len(sim.sent()) == 2 and stats.read(connector)["attempts"] == 0
    # When the operator redrives the DLQ (which gives the message a new id)
    report = redrive(sqs, pipeline.send_dlq, pipeline.send_queue, keep_identity=True)
    assert report.moved == [first_id] and report.given_action_ids == 1
    pipeline.run()
    # Then the action kept its identity: its SMS are recorded, nobody is texted again
    assert len(sim.sent()) == 2
    figures = stats.read(connector)
    assert (figures["totalSent"], figures["attempts"]) == (2, 2)
    assert stored(connector, first_id, "+46710000001")["state"] == record.STATE_SENT
    assert pipeline.dead_letters(pipeline.send_dlq) == []


def test_the_redrive_leaves_malformed_messages_and_a_dry_run_moves_nothing(pipeline: Any) -> None:
    sqs = boto3.client("sqs")
    sqs.send_message(QueueUrl=pipeline.send_dlq, MessageBody="not json")
    sqs.send_message(QueueUrl=pipeline.send_dlq, MessageBody=json.dumps({"connectorId": "c", "message": "m"}))
    dry = redrive(sqs, pipeline.send_dlq, pipeline.send_queue, keep_identity=True, dry_run=True)
    assert len(dry.moved) == 1 and [why for _, why in dry.left] == ["not JSON"]
    assert sorted(pipeline.dead_letters(pipeline.send_dlq)) == sorted(
        ["not json", json.dumps({"connectorId": "c", "message": "m"})]
    )


def test_telnyx_rate_limit_waits_as_its_headers_say(connectors_api: Api, sim: ProviderSimulator, sender: Any) -> None:
    connector = make(connectors_api, with_(GUIDE_TELNYX, recipients=[{"to": "+46710000001"}]))
    sim.script("telnyx", Answer("rate_limited", retry_after=1), "ok")
    assert sender({"connectorId": connector, "message": "Alarm"}) == []
    first, second = sim.received("telnyx")
    assert first.status == 429 and "retry-after" not in {k.lower() for k in first.headers}
    assert second.at - first.at >= 0.9  # x-ratelimit-reset: 1
    assert len(sim.sent()) == 1


def test_twilio_21660_is_a_configuration_error_not_retried(
    connectors_api: Api, sim: ProviderSimulator, sender: Any
) -> None:
    connector = make(
        connectors_api, with_(GUIDE_TWILIO, recipients=[{"to": "+46710000001"}], **{"from": "+46700000660"})
    )
    assert sender({"connectorId": connector, "message": "Alarm"}) == []
    assert len(sim.received("twilio")) == 1
    [entry] = log_entries(connector)
    assert entry["errorCode"] == "21660" and "+46700000660" not in entry["message"]


def test_the_test_route_answers_in_time_with_not_attempted(
    connectors_api: Api, sim: ProviderSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a provider whose answers take longer than the route may wait
    monkeypatch.setenv("PROVIDER_READ_TIMEOUT", "4.0")  # a call may take 3 + 4 s
    config.reset()
    base.reset()
    connector = make(connectors_api, with_(GUIDE_46ELKS, recipients=[{"to": "+46710000001"}, {"to": "+46710000002"}]))
    from devstack.apigw import http_event

    handler = load("SendApiFunction")
    event = http_event("POST", f"/connectors/{connector}/test", body={}, claims={"tenant_id": "tenant-a"})
    # When it is called with 11 s left (API Gateway's 29 s, scaled down)
    started = time.monotonic()
    sim.latency = 3.0
    answer = handler(event, LambdaContext("api", timeout_seconds=11))
    # Then the first calls ran, nothing started that could outlast the time, and it says so
    assert time.monotonic() - started < 11
    results = json.loads(answer["body"])["results"]
    assert {r["status"] for r in results} == {"sent"}  # both started at once, in parallel
    sim.latency = 0.0
    answer = handler(event, LambdaContext("api", timeout_seconds=4))  # 1 s left after the margin
    assert [r["status"] for r in json.loads(answer["body"])["results"]] == ["not attempted", "not attempted"]
    assert len(sim.sent()) == 2


def test_concurrent_redeliveries_of_one_action_text_each_recipient_once(
    connectors_api: Api, sim: ProviderSimulator, sender: Any, atomic_aws_calls: None
) -> None:
    team = [{"to": f"+4671000{i:04d}"} for i in range(5)]
    connector = make(connectors_api, with_(GUIDE_TWILIO, recipients=team))
    sim.latency = 0.2
    body = {"connectorId": connector, "message": "Twice at once", "actionId": "dup"}
    results: list[list[str]] = []
    threads = [threading.Thread(target=lambda: results.append(sender(body, message_ids=["m"]))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # the ones that found it busy come back, and then find it done
    for _ in range(3):
        if sender(body, message_ids=["m"]) == []:
            break
        time.sleep(0.5)
    assert len(sim.sent()) == 5 and stats.read(connector)["totalSent"] == 5
    assert os.environ["TABLE_NAME"]


def test_a_claim_resent_by_botocore_after_a_lost_answer_is_still_ours(
    connectors_api: Api, sender: Any, sim: ProviderSimulator
) -> None:
    from botocore.exceptions import ReadTimeoutError

    connector = make(connectors_api, with_(GUIDE_TELNYX, recipients=[{"to": "+46710000001"}]))
    lost: list[str] = []

    def answer_lost(request: Any, **_: Any) -> None:
        body = request.body or b""
        if b"TransactItems" in body and b"attribute_not_exists(pk)" in body and b"SMS#" in body and not lost:
            lost.append("claim")
            raise ReadTimeoutError(endpoint_url="https://dynamodb.invalid")

    events = aws.client("dynamodb").meta.events
    events.register_last("before-send", answer_lost)  # after moto took it
    try:
        failed = sender({"connectorId": connector, "message": "Door open", "actionId": "c1"})
    finally:
        events.unregister("before-send", answer_lost)
    assert lost == ["claim"]
    # Then the claim is still ours: sent now, not back to SQS for the visibility timeout
    assert failed == [] and len(sim.sent()) == 1


def _texts_of(sim: ProviderSimulator, text: str) -> list[str]:
    return [r.fields["to"] for r in sim.sent() if r.fields["text"] == text]


@pytest.mark.parametrize("changed", [False, True], ids=["control-unchanged", "connector-changed"])
def test_a_taken_over_claim_given_back_for_a_changed_connector_is_still_looked_up(
    connectors_api: Api, sim: ProviderSimulator, sender: Any, monkeypatch: pytest.MonkeyPatch, changed: bool
) -> None:
    from sms_connector import dynamo

    """A claim whose holder died after texting is taken over (may have been sent); the
    connector changed since this environment last read it, so the claim is given back and
    taken again by the same invocation. The own-claim rule in `_existing` must not forget that
    the SMS may have been sent."""
    connector = make(connectors_api, with_(GUIDE_TWILIO, recipients=[{"to": "+46710000001"}]))
    assert sender({"connectorId": connector, "message": "one", "actionId": "a1"}) == []  # the environment knows it
    # Given a first delivery of a2 that texts, then dies before recording anything
    body = {"connectorId": connector, "message": "two", "actionId": "a2"}
    dies_before_recording(monkeypatch, lambda: sender(body, message_ids=["m"]))
    assert _texts_of(sim, "two") == ["+46710000001"]
    sms = record.sms_id(connector, "a2", "+46710000001")
    assert (record.read(sms) or {})["state"] == record.CLAIMED
    # and its lease runs out (the Lambda was killed)
    dynamo.update_if(record.key(sms), sets={"leaseUntil": 1})
    # When a recipient is added meanwhile, and SQS redelivers a2
    if changed:
        team = [{"to": "+46710000001"}, {"to": "+46710000002"}]
        status, _ = connectors_api("PUT", f"/connectors/{connector}", with_(GUIDE_TWILIO, recipients=team))
        assert status == 200
    assert sender(body, message_ids=["m-redriven"]) == []  # a redrive gives it a new SQS id
    # Then the first recipient, who may already have it, is looked up and not texted twice
    assert _texts_of(sim, "two").count("+46710000001") == 1, [r.method for r in sim.received("twilio")]


def test_a_test_send_whose_recording_fails_once_is_recorded_in_the_same_request(
    connectors_api: Api, sim: ProviderSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A test send is counted like any send, and no SQS redelivery will ever come for it: a
    recording that fails once (DynamoDB throttled) is tried again while the request lasts."""
    connector = make(connectors_api, with_(GUIDE_46ELKS, recipients=[{"to": "+46710000001"}]))
    send_api = Api(load("SendApiFunction"), "tenant-a")  # the test route's own function
    real = record.commit
    calls = {"n": 0}

    def fail_once(writes: Any) -> Any:
        calls["n"] += 1
        return list(writes) if calls["n"] == 1 else real(writes)

    monkeypatch.setattr(record, "commit", fail_once)
    status, answer = send_api("POST", f"/connectors/{connector}/test", {"message": "Hello"})
    assert status == 200 and answer["results"][0]["status"] == "sent"
    assert len(sim.sent()) == 1
    assert calls["n"] == 2 and stats.read(connector)["totalSent"] == 1
    assert [e["level"] for e in log_entries(connector)] == []  # nothing failed: nothing logged
