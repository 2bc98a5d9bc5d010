"""Sending rule actions: real sockets to the provider simulator, AWS through moto."""

from __future__ import annotations

import base64
import json
import os
from typing import Any
from urllib.parse import parse_qs

import boto3
import pytest

from devstack.simulators import Answer, ProviderSimulator
from sms_connector import stats
from sms_connector.sending import record
from tests.conftest import Api
from tests.test_models import EMAIL, GUIDE_46ELKS, GUIDE_TELNYX, GUIDE_TWILIO, with_

TEAM = [{"to": "+46710000001"}, {"to": "+46710000002"}, {"to": "+46710000003", "backupEmail": "c@example.com"}]


def make(api: Api, body: dict[str, Any]) -> str:
    status, created = api("POST", "/connectors", body)
    assert status == 201, created
    return str(created["id"])


def log_entries(connector_id: str) -> list[dict[str, Any]]:
    from sms_connector import error_log

    return error_log.page(connector_id, 100, None)[0]


def basic(header: str) -> str:
    return base64.b64decode(header.removeprefix("Basic ")).decode()


def test_46elks_gets_form_encoded_from_to_message_with_basic_auth(
    connectors_api: Api, sim: ProviderSimulator, sender: Any
) -> None:
    connector = make(connectors_api, with_(GUIDE_46ELKS, recipients=[{"to": "+46710000001"}]))
    assert sender({"connectorId": connector, "message": "Temperature above 30 C in room 4"}) == []
    [request] = sim.received("46elks")
    assert request.path == "/a1/sms"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert basic(request.headers["authorization"]) == "your_46elks_username:your_46elks_password"
    assert parse_qs(request.body.decode()) == {
        "from": ["MyCompany"],
        "to": ["+46710000001"],
        "message": ["Temperature above 30 C in room 4"],
    }


def test_telnyx_gets_json_from_to_text_with_bearer_key(
    connectors_api: Api, sim: ProviderSimulator, sender: Any
) -> None:
    connector = make(connectors_api, with_(GUIDE_TELNYX, recipients=[{"to": "+46710000001"}]))
    assert sender({"connectorId": connector, "message": "Door open"}) == []
    [request] = sim.received("telnyx")
    assert request.path == "/v2/messages"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["authorization"] == "Bearer your_telnyx_api_key"
    assert json.loads(request.body) == {"from": "+46700000000", "to": "+46710000001", "text": "Door open"}


def test_twilio_gets_form_encoded_to_from_body_with_sid_and_token(
    connectors_api: Api, sim: ProviderSimulator, sender: Any
) -> None:
    connector = make(connectors_api, with_(GUIDE_TWILIO, recipients=[{"to": "+46710000001"}]))
    assert sender({"connectorId": connector, "message": "Leak detected"}) == []
    [request] = sim.received("twilio")
    assert request.path == "/2010-04-01/Accounts/ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX/Messages.json"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert basic(request.headers["authorization"]) == "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX:your_auth_token"
    assert parse_qs(request.body.decode()) == {
        "To": ["+46710000001"],
        "From": ["+46700000000"],
        "Body": ["Leak detected"],
    }


def test_every_recipient_is_texted_once_and_counted(connectors_api: Api, sim: ProviderSimulator, sender: Any) -> None:
    make(connectors_api, EMAIL)
    connector = make(connectors_api, with_(GUIDE_TELNYX, recipients=TEAM))
    assert sender({"connectorId": connector, "message": "Alarm", "actionId": "a1"}) == []
    assert sorted(r.fields["to"] for r in sim.sent()) == [r["to"] for r in TEAM]
    figures = stats.read(connector)
    assert (figures["totalSent"], figures["totalFails"], figures["sentThisMonth"]) == (3, 0, 3)


@pytest.mark.parametrize("with_action_id", [True, False])
def test_a_redelivered_action_texts_nobody_twice(
    connectors_api: Api, sim: ProviderSimulator, sender: Any, with_action_id: bool
) -> None:
    make(connectors_api, EMAIL)
    connector = make(connectors_api, with_(GUIDE_TWILIO, recipients=TEAM))
    body = {"connectorId": connector, "message": "Alarm"} | ({"actionId": "fire-1"} if with_action_id else {})
    # Given an action delivered and sent / When SQS delivers it again (same message id) / Then nobody is texted
    assert sender(body, message_ids=["m-1"]) == []
    assert sender(body, message_ids=["m-1"]) == []
    assert len(sim.sent()) == 3
    assert stats.read(connector)["totalSent"] == 3


def test_a_different_action_with_the_same_text_is_sent_again(
    connectors_api: Api, sim: ProviderSimulator, sender: Any
) -> None:
    connector = make(connectors_api, with_(GUIDE_46ELKS, recipients=[{"to": "+46710000001"}]))
    assert sender({"connectorId": connector, "message": "Alarm", "actionId": "x1"}) == []
    assert sender({"connectorId": connector, "message": "Alarm", "actionId": "x2"}) == []
    assert len(sim.sent()) == 2


def test_malformed_and_unknown_records_fail_alone(connectors_api: Api, sim: ProviderSimulator, sender: Any) -> None:
    connector = make(connectors_api, with_(GUIDE_46ELKS, recipients=[{"to": "+46710000001"}]))
    bodies = [
        {"connectorId": connector, "message": "ok 1"},
        "{not json",
        {"connectorId": connector},  # no message
        {"connectorId": "01NOSUCHCONNECTOR", "message": "lost?"},
        {"connectorId": connector, "message": "wrong tenant", "tenantId": "tenant-b"},
        {"connectorId": connector, "message": "ok 2"},
    ]
    failed = sender(*bodies, message_ids=[f"m{i}" for i in range(6)])
    assert failed == ["m1", "m2", "m3", "m4"]
    assert sorted(r.fields["text"] for r in sim.sent()) == ["ok 1", "ok 2"]


def test_503_then_success_sends_once_and_warns(connectors_api: Api, sim: ProviderSimulator, sender: Any) -> None:
    connector = make(connectors_api, with_(GUIDE_TELNYX, recipients=[{"to": "+46710000001"}]))
    sim.script("telnyx", "unavailable", "ok")
    assert sender({"connectorId": connector, "message": "Alarm"}) == []
    assert [r.status for r in sim.received("telnyx")] == [503, 200]
    figures = stats.read(connector)
    assert (figures["totalSent"], figures["totalFails"]) == (1, 0)
    assert "sent after 2 attempts" in figures["lastError"]["message"]
    [entry] = log_entries(connector)
    assert entry["level"] == "warning" and entry["errorCode"] == "10007"


def test_429_retry_after_is_honoured(connectors_api: Api, sim: ProviderSimulator, sender: Any) -> None:
    connector = make(connectors_api, with_(GUIDE_TWILIO, recipients=[{"to": "+46710000001"}]))
    sim.script("twilio", Answer("rate_limited", retry_after=1), "ok")
    assert sender({"connectorId": connector, "message": "Alarm"}) == []
    first, second = sim.received("twilio")
    assert first.status == 429 and second.status == 201
    assert second.at - first.at >= 0.9


def test_a_connection_reset_is_looked_up_then_sent(connectors_api: Api, sim: ProviderSimulator, sender: Any) -> None:
    """A reset after the request left: 46elks may have taken it, so it is looked up first; the
    look-up says it is not there, and only then is it sent again."""
    connector = make(connectors_api, with_(GUIDE_46ELKS, recipients=[{"to": "+46710000001"}]))
    sim.script("46elks", "reset", "ok")
    assert sender({"connectorId": connector, "message": "Alarm"}) == []
    assert [r.method for r in sim.received("46elks")] == ["POST", "GET", "POST"]
    assert len(sim.sent()) == 1 and stats.read(connector)["totalSent"] == 1


@pytest.mark.parametrize(
    ("body", "code"),
    [(GUIDE_46ELKS, "400"), (GUIDE_TELNYX, "40310"), (GUIDE_TWILIO, "21211")],
    ids=["46elks", "telnyx", "twilio"],
)
def test_an_invalid_number_fails_at_once_with_the_providers_error(
    connectors_api: Api, sim: ProviderSimulator, sender: Any, body: dict, code: str
) -> None:
    connector = make(connectors_api, with_(body, recipients=[{"to": "+46700000001"}]))
    assert sender({"connectorId": connector, "message": "Alarm", "actionId": "bad-1"}) == []
    assert len(sim.received()) == 1  # no retry
    figures = stats.read(connector)
    assert (figures["totalSent"], figures["totalFails"]) == (0, 1)
    [entry] = log_entries(connector)
    assert entry["errorCode"] == code and entry["level"] == "error"
    assert entry["recipient"] == "+46 *******01" and entry["actionId"] == "bad-1"
    assert figures["lastError"]["message"].startswith(f"{body['provider']} {code}:")


def test_a_changed_credential_is_used_on_the_next_send(
    connectors_api: Api, sim: ProviderSimulator, sender: Any
) -> None:
    connector = make(connectors_api, with_(GUIDE_TWILIO, recipients=[{"to": "+46710000001"}]))
    assert sender({"connectorId": connector, "message": "one"}) == []
    sim.add_twilio_account("ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "rotated-token")
    status, _ = connectors_api(
        "PUT",
        f"/connectors/{connector}",
        with_(GUIDE_TWILIO, recipients=[{"to": "+46710000001"}], credentials={"authToken": "rotated-token"}),
    )
    assert status == 200
    assert sender({"connectorId": connector, "message": "two"}) == []
    first, second = sim.received("twilio")
    assert basic(first.headers["authorization"]).endswith(":your_auth_token")
    assert basic(second.headers["authorization"]).endswith(":rotated-token")
    assert second.status == 201


def test_bad_credentials_fail_without_retry(connectors_api: Api, sim: ProviderSimulator, sender: Any) -> None:
    connector = make(
        connectors_api, with_(GUIDE_TELNYX, recipients=[{"to": "+46710000001"}], credentials={"apiKey": "wrong"})
    )
    assert sender({"connectorId": connector, "message": "Alarm"}) == []
    assert [r.status for r in sim.received()] == [401]
    assert log_entries(connector)[0]["errorCode"] == "10009"


def test_a_message_too_long_for_the_provider_is_not_sent(
    connectors_api: Api, sim: ProviderSimulator, sender: Any
) -> None:
    connector = make(connectors_api, with_(GUIDE_TELNYX, recipients=[{"to": "+46710000001"}]))
    assert sender({"connectorId": connector, "message": "ж" * 700}) == []  # UCS-2: 11 parts
    assert sim.received() == []
    [entry] = log_entries(connector)
    assert entry["errorCode"] == "message_too_long" and "Telnyx, which sends at most 10" in entry["message"]


def test_a_failed_recipient_with_backup_email_is_queued_for_fallback(
    connectors_api: Api, sim: ProviderSimulator, sender: Any, fallback_queue: str
) -> None:
    make(connectors_api, EMAIL)
    team = [{"to": "+46700000002", "backupEmail": "b@example.com"}, {"to": "+46700000001"}, {"to": "+46710000001"}]
    connector = make(connectors_api, with_(GUIDE_TELNYX, recipients=team))
    assert sender({"connectorId": connector, "message": "Alarm", "actionId": "f1"}) == []
    messages = boto3.client("sqs").receive_message(QueueUrl=fallback_queue, MaxNumberOfMessages=10)["Messages"]
    [fallback] = [json.loads(m["Body"]) for m in messages]
    assert fallback["to"] == "+46 *******02" and fallback["backupEmail"] == "b@example.com"  # no number in clear
    assert fallback["message"] == "Alarm" and fallback["errorCode"] == "40300"
    assert fallback["smsId"] == record.sms_id(connector, "f1", "+46700000002")
    assert "+46700000002" not in json.dumps(fallback) and "your_telnyx_api_key" not in json.dumps(fallback)


def test_a_recipient_being_sent_elsewhere_makes_the_record_retry(
    connectors_api: Api, sim: ProviderSimulator, sender: Any
) -> None:
    import time

    from sms_connector import connector_store

    connector = make(connectors_api, with_(GUIDE_46ELKS, recipients=[{"to": "+46710000001"}]))
    # Given another invocation holding this SMS's claim right now
    elsewhere = record.Sms(connector_store.get(connector) or {}, "busy-1", "+46710000001", "Alarm")
    record.claim([elsewhere], "another-invocation", time.time() + 300)
    assert elsewhere.claim == "claimed"
    # When SQS delivers the action to us / Then we leave it to the holder and SQS brings it back
    assert sender({"connectorId": connector, "message": "Alarm", "actionId": "busy-1"}, message_ids=["m"]) == ["m"]
    assert sim.received() == []


def test_test_send_route_answers_each_recipient(connectors_api: Api, sim: ProviderSimulator) -> None:
    from devstack.handlers import load

    make(connectors_api, EMAIL)
    connector = make(connectors_api, with_(GUIDE_46ELKS, recipients=[{"to": "+46710000001"}, {"to": "+46700000001"}]))
    send_api = Api(load("SendApiFunction"), "tenant-a")
    status, answer = send_api("POST", f"/connectors/{connector}/test", {"message": "Hello"})
    assert status == 200
    assert answer["results"][0] == {"to": "+46710000001", "status": "sent", "error": None}
    assert answer["results"][1]["status"] == "failed" and "Invalid to number" in answer["results"][1]["error"]
    status, one = send_api("POST", f"/connectors/{connector}/test", {"to": "+46 71 000 00 01"})
    assert status == 200 and [r["to"] for r in one["results"]] == ["+46710000001"]
    assert sim.sent()[-1].fields["text"].startswith("Test message from SMS connector")
    assert stats.read(connector)["attempts"] == 3
    status, answer = send_api("POST", f"/connectors/{connector}/test", {"to": "+46710000009"})
    assert status == 422 and answer["detail"][0]["field"] == "to"
    assert send_api.as_tenant("tenant-b")("POST", f"/connectors/{connector}/test", {})[0] == 404
    assert os.environ["TABLE_NAME"]


def test_a_lone_surrogate_fails_only_its_own_record(connectors_api: Api, sim: ProviderSimulator, sender: Any) -> None:
    connector = make(connectors_api, with_(GUIDE_46ELKS, recipients=[{"to": "+46710000001"}]))
    bad = json.dumps({"connectorId": connector, "message": "broken \ud800 text"})  # json escapes the surrogate
    assert sender(bad, {"connectorId": connector, "message": "fine"}, message_ids=["bad", "ok"]) == ["bad"]
    assert [r.fields["text"] for r in sim.sent()] == ["fine"]


def test_a_failure_after_the_sends_texts_nobody_twice_and_loses_no_count(
    connectors_api: Api, sim: ProviderSimulator, sender: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recording transaction fails after the sends: the outcomes stay on the claims, the
    action comes back, and the redelivery records them without texting anyone again."""
    make(connectors_api, EMAIL)
    team = [{"to": "+46710000001"}, {"to": "+46700000001", "backupEmail": "b@example.com"}]
    connector = make(connectors_api, with_(GUIDE_TELNYX, recipients=team))
    real = record.commit
    calls = {"n": 0}

    def fail_once(writes: Any) -> Any:
        calls["n"] += 1
        return list(writes) if calls["n"] == 1 else real(writes)  # the first recording writes nothing

    monkeypatch.setattr(record, "commit", fail_once)
    body = {"connectorId": connector, "message": "Alarm", "actionId": "crash-1"}
    assert sender(body, message_ids=["m"]) == ["m"]  # comes back
    assert len(sim.sent()) == 1 and stats.read(connector)["attempts"] == 0
    # When SQS redelivers the batch
    assert sender(body, message_ids=["m"]) == []
    # Then nobody is texted again, and the sends are counted and logged exactly once
    assert len(sim.sent()) == 1 and len(sim.received()) == 2
    figures = stats.read(connector)
    assert (figures["totalSent"], figures["totalFails"]) == (1, 1)
    assert [e["errorCode"] for e in log_entries(connector)] == ["40310"]
    assert sender(body, message_ids=["m"]) == []  # and again: still exactly once
    assert stats.read(connector)["attempts"] == 2


def test_an_unexpected_error_in_one_send_fails_that_sms_alone(
    connectors_api: Api, sim: ProviderSimulator, sender: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sms_connector.providers import ADAPTERS

    connector = make(connectors_api, with_(GUIDE_TWILIO, recipients=[{"to": "+46710000001"}, {"to": "+46710000002"}]))
    real = ADAPTERS["twilio"].send

    def flaky(credentials: Any, sms: Any) -> Any:
        if sms.to == "+46710000002":
            raise KeyError("a field the provider did not send")
        return real(credentials, sms)

    monkeypatch.setattr(ADAPTERS["twilio"], "send", flaky)
    assert sender({"connectorId": connector, "message": "Alarm"}) == []
    assert [r.fields["to"] for r in sim.sent()] == ["+46710000001"]
    figures = stats.read(connector)
    # It may have left before the error: its outcome is unknown, not failed, and not retried.
    assert (figures["totalSent"], figures["totalFails"], figures["totalUnknown"]) == (1, 0, 1)
    assert log_entries(connector)[0]["errorCode"] == "internal_error"


def test_the_same_action_twice_in_one_batch_texts_once(
    connectors_api: Api, sim: ProviderSimulator, sender: Any
) -> None:
    connector = make(connectors_api, with_(GUIDE_46ELKS, recipients=[{"to": "+46710000001"}, {"to": "+46710000002"}]))
    body = {"connectorId": connector, "message": "Alarm", "actionId": "twice"}
    assert sender(body, body, message_ids=["m1", "m2"]) == []
    assert len(sim.sent()) == 2
    assert stats.read(connector)["totalSent"] == 2


def test_a_recipient_replaced_since_the_last_batch_is_not_texted(
    connectors_api: Api, sim: ProviderSimulator, sender: Any
) -> None:
    # Given a batch sent (this environment remembers the connector, and claims the next batch
    # with it while reading it again)
    connector = make(connectors_api, with_(GUIDE_TWILIO, recipients=TEAM[:2]))
    assert sender({"connectorId": connector, "message": "one", "actionId": "a1"}) == []
    # When a recipient is replaced
    replaced = [TEAM[0], {"to": "+46710000009"}]
    status, _ = connectors_api("PUT", f"/connectors/{connector}", with_(GUIDE_TWILIO, recipients=replaced))
    assert status == 200
    assert sender({"connectorId": connector, "message": "two", "actionId": "a2"}) == []
    # Then the next batch texts the recipients as they are now, and no claim is left for the other
    assert sorted(r.fields["to"] for r in sim.sent() if r.fields["text"] == "two") == ["+46710000001", "+46710000009"]
    assert record.read(record.sms_id(connector, "a2", TEAM[1]["to"])) is None
    assert stats.read(connector)["totalSent"] == 4


def test_a_connector_deleted_since_the_last_batch_texts_nobody(
    connectors_api: Api, sim: ProviderSimulator, sender: Any
) -> None:
    connector = make(connectors_api, with_(GUIDE_TWILIO, recipients=TEAM[:2]))
    assert sender({"connectorId": connector, "message": "one", "actionId": "a1"}) == []
    status, _ = connectors_api("DELETE", f"/connectors/{connector}")
    assert status == 204
    assert sender({"connectorId": connector, "message": "two", "actionId": "a2"}, message_ids=["m2"]) == ["m2"]
    assert [r.fields["text"] for r in sim.sent()] == ["one", "one"]
    assert [record.read(record.sms_id(connector, "a2", r["to"])) for r in TEAM[:2]] == [None, None]


def test_a_failed_read_after_a_guess_leaves_no_claim(
    connectors_api: Api, sim: ProviderSimulator, sender: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sms_connector import connector_store

    connector = make(connectors_api, with_(GUIDE_TWILIO, recipients=TEAM[:2]))
    assert sender({"connectorId": connector, "message": "one", "actionId": "a1"}) == []

    def unreadable(ids: set[str]) -> dict[str, Any]:
        raise RuntimeError("DynamoDB is unreachable")

    monkeypatch.setattr(connector_store, "get_many", unreadable)
    with pytest.raises(RuntimeError):
        sender({"connectorId": connector, "message": "two", "actionId": "a2"})
    assert [r.fields["text"] for r in sim.sent()] == ["one", "one"]
    assert [record.read(record.sms_id(connector, "a2", r["to"])) for r in TEAM[:2]] == [None, None]


def test_a_partial_batch_answer_names_each_failed_record_once_in_order() -> None:
    """The queue consumers' answer to SQS (ReportBatchItemFailures): a record whose handling
    raises goes back alone; the others are deleted; each failed id once, in the batch's order."""
    from devstack.sqs import sqs_event, sqs_record
    from sms_connector import sqs_batch

    event = sqs_event(*(sqs_record({"n": n}, message_id=f"m{n}") for n in (1, 2, 3, 4)))
    event["Records"].append(sqs_record({"n": 2}, message_id="m2"))  # the same message twice

    def handle(r: dict[str, Any]) -> None:
        if json.loads(r["body"])["n"] in (4, 2):
            raise RuntimeError("this one failed")

    assert sqs_batch.each_record(event, handle) == {
        "batchItemFailures": [{"itemIdentifier": "m2"}, {"itemIdentifier": "m4"}]
    }
    assert sqs_batch.each_record(event, lambda r: None) == {"batchItemFailures": []}
    assert sqs_batch.partial_response(event, {"m3", "elsewhere"}) == {"batchItemFailures": [{"itemIdentifier": "m3"}]}
    assert sqs_batch.partial_response({"Records": []}, {"m1"}) == {"batchItemFailures": []}
