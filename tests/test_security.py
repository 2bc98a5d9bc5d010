"""Nobody sends as someone else, nothing secret or personal leaks, the test button is no free
SMS gateway: each finding of the security issue, tried again from outside."""

from __future__ import annotations

import json
import os
import re
import threading
from typing import Any

import boto3
import pytest

from devstack import template
from devstack.handlers import load
from devstack.lambda_context import LambdaContext
from devstack.simulators import ProviderSimulator
from devstack.sqs import sqs_event, sqs_record
from sms_connector import config, stats
from tests.conftest import Api
from tests.test_models import EMAIL, GUIDE_46ELKS, GUIDE_TELNYX, GUIDE_TWILIO, with_
from tests.test_sending import log_entries, make


def lines_of(log_output: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log_output.getvalue().splitlines() if line.startswith("{")]


def test_a_pasted_key_with_a_newline_is_trimmed_and_one_inside_is_refused(
    connectors_api: Api, sim: ProviderSimulator, sender: Any, log_output: Any
) -> None:
    sim.add_telnyx_key("KEY_pasted_0123456789")
    # A trailing newline (a paste) is trimmed: the key works
    status, created = connectors_api(
        "POST",
        "/connectors",
        with_(GUIDE_TELNYX, credentials={"apiKey": "KEY_pasted_0123456789\n"}, recipients=[{"to": "+46710000001"}]),
    )
    assert status == 201
    assert sender({"connectorId": created["id"], "message": "Hello"}) == []
    assert sim.received("telnyx")[0].headers["authorization"] == "Bearer KEY_pasted_0123456789"
    # One inside the key is a 422 naming the field, and the key is in no answer
    status, answer = connectors_api(
        "POST", "/connectors", with_(GUIDE_TELNYX, credentials={"apiKey": "KEY_pasted\n0123456789"})
    )
    assert status == 422 and answer["detail"][0]["field"] == "credentials.apiKey"
    assert "KEY_pasted" not in json.dumps(answer)


def test_a_stored_key_that_cannot_go_into_a_header_fails_the_sms_without_logging_the_key(
    connectors_api: Api, sim: ProviderSimulator, sender: Any, log_output: Any
) -> None:
    # Given a connector whose secret holds a newline (saved before the checks existed)
    connector = make(connectors_api, with_(GUIDE_TELNYX, recipients=[{"to": "+46710000001"}]))
    arn = f"sms-connector/test/{connector}"
    boto3.client("secretsmanager").put_secret_value(
        SecretId=arn, SecretString=json.dumps({"apiKey": "KEY_leaky_secret_4242\n"})
    )
    from sms_connector import connector_store

    stored = connector_store.get(connector) or {}
    version = boto3.client("secretsmanager").get_secret_value(SecretId=arn)["VersionId"]
    connector_store.replace(stored | {"secretVersion": version})
    # When it sends / Then the SMS fails as a configuration error, nothing reaches the provider,
    # and no log line, log entry or figure holds the key
    assert sender({"connectorId": connector, "message": "Hello"}) == []
    assert sim.received("telnyx") == []
    [entry] = log_entries(connector)
    assert entry["errorCode"] == "bad_credentials"
    everything = log_output.getvalue() + json.dumps(stats.read(connector)) + json.dumps(log_entries(connector))
    assert "KEY_leaky_secret_4242" not in everything


@pytest.mark.parametrize(
    ("guide", "to", "number_in_text"),
    [
        (GUIDE_TWILIO, "+15005550001", "+15005550001"),  # 21211: "The 'To' number +1500... is not valid"
        (GUIDE_TELNYX, "+46700000002", "+46700000002"),  # 40300: "...from '+4670...' to '+4670...'"
    ],
    ids=["twilio-21211", "telnyx-40300"],
)
def test_numbers_inside_provider_texts_are_masked_everywhere(
    connectors_api: Api, sim: ProviderSimulator, sender: Any, log_output: Any, guide: dict, to: str, number_in_text: str
) -> None:
    connector = make(connectors_api, with_(guide, recipients=[{"to": to}]))
    assert sender({"connectorId": connector, "message": "Alarm"}) == []
    [entry] = log_entries(connector)
    figures = stats.read(connector)
    lines = [line for line in lines_of(log_output) if line.get("connector_id") == connector]
    written = json.dumps([entry, figures["lastError"], lines])
    # The provider's text named the number; we never write it: it is masked, not dropped
    assert number_in_text not in written and number_in_text[1:] not in written
    assert f"*{number_in_text[-2:]}" in entry["message"]


def test_an_email_connector_sends_only_as_the_operators_identity(connectors_api: Api) -> None:
    # Another domain verified in the account (someone else's) is still refused
    boto3.client("sesv2").create_email_identity(EmailIdentity="victim-corp.com")
    status, answer = connectors_api("POST", "/connectors", with_(EMAIL, **{"from": "ceo@victim-corp.com"}))
    assert status == 422 and answer["detail"][0]["field"] == "from" and "example.com" in answer["detail"][0]["msg"]
    assert connectors_api("POST", "/connectors", with_(EMAIL, **{"from": "alerts@example.com"}))[0] == 201
    # An identity not verified (yet) in SES: refused, saying so
    boto3.client("sesv2").delete_email_identity(EmailIdentity="example.com")
    status, answer = connectors_api("POST", "/connectors", with_(EMAIL, **{"from": "ops@example.com"}))
    assert status == 422 and "not set up in SES" in answer["detail"][0]["msg"]


def test_the_fallback_may_send_only_from_the_email_identity() -> None:
    fallback = template.resources("AWS::Serverless::Function")["FallbackFunction"]["Properties"]
    statements = [s for p in fallback["Policies"] if "Statement" in p for s in p["Statement"]]
    [ses] = [s for s in statements if "ses:SendEmail" in str(s["Action"])]
    assert str(ses["Resource"].value).endswith(":identity/${EmailIdentity}")
    parameter = template.load()["Parameters"]["EmailIdentity"]
    assert "Default" not in parameter and re.fullmatch(parameter["AllowedPattern"], "*") is None


def test_the_test_route_has_an_hourly_allowance_that_parallel_calls_cannot_pass(
    connectors_api: Api, sim: ProviderSimulator, monkeypatch: pytest.MonkeyPatch, atomic_aws_calls: None
) -> None:
    monkeypatch.setenv("TEST_SENDS_PER_HOUR", "10")
    config.reset()
    team = [{"to": f"+4671000{i:04d}"} for i in range(100)]
    connector = make(connectors_api, with_(GUIDE_46ELKS, recipients=team))
    send_api = Api(load("SendApiFunction"), "tenant-a")
    # A test to 100 recipients is 100 SMS: more than the hour allows
    status, answer = send_api("POST", f"/connectors/{connector}/test", {})
    assert status == 429 and "test one recipient" in answer["message"]
    # Fifteen single-recipient tests at once: exactly ten go out
    statuses: list[int] = []

    def one(i: int) -> None:
        statuses.append(send_api("POST", f"/connectors/{connector}/test", {"to": team[i]["to"]})[0])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(15)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] * 10 + [429] * 5
    assert len(sim.sent()) == 10
    handler = load("SendApiFunction")
    from devstack.apigw import http_event

    answer = handler(
        http_event("POST", f"/connectors/{connector}/test", body={}, claims={"tenant_id": "tenant-a"}),
        LambdaContext("api"),
    )
    assert answer["statusCode"] == 429 and 0 < int(answer["headers"]["Retry-After"]) <= 3601


def test_the_http_api_is_throttled_by_template_parameters() -> None:
    api = template.load()["Resources"]["HttpApi"]["Properties"]
    settings = api["DefaultRouteSettings"]
    assert str(settings["ThrottlingRateLimit"].value) == "ApiThrottlingRate"
    assert str(settings["ThrottlingBurstLimit"].value) == "ApiThrottlingBurst"
    parameters = template.load()["Parameters"]
    assert parameters["ApiThrottlingRate"]["Default"] > 0 and parameters["ApiThrottlingBurst"]["Default"] > 0


def test_a_message_with_nothing_visible_is_refused_by_the_route_and_fails_alone_on_the_queue(
    connectors_api: Api, sim: ProviderSimulator, sender: Any, log_output: Any
) -> None:
    connector = make(connectors_api, with_(GUIDE_46ELKS, recipients=[{"to": "+46710000001"}]))
    send_api = Api(load("SendApiFunction"), "tenant-a")
    status, answer = send_api("POST", f"/connectors/{connector}/test", {"message": " \u200b "})
    assert status == 422 and answer["detail"][0]["field"] == "message"
    invisible = {"connectorId": connector, "message": " \u200b\u2060 "}
    assert sender(invisible, {"connectorId": connector, "message": "fine"}, message_ids=["bad", "ok"]) == ["bad"]
    assert [r.fields["text"] for r in sim.sent()] == ["fine"]
    [warning] = [line for line in lines_of(log_output) if line.get("message") == "malformed rule action"]
    assert warning["problems"] == [{"field": "message", "type": "value_error"}]


def test_control_characters_never_reach_the_backup_emails_subject(connectors_api: Api) -> None:
    status, answer = connectors_api("POST", "/connectors", with_(EMAIL, name="Ops\r\nBcc: evil@example.com"))
    assert status == 422 and answer["detail"][0]["field"] == "name"
    from sms_connector.fallback import subject

    assert "\r" not in subject({"name": "Old\r\nname saved before the checks"})


def test_a_connector_deleted_during_a_batch_gets_no_counters_back(
    connectors_api: Api, sim: ProviderSimulator, sender: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    connector = make(connectors_api, with_(GUIDE_46ELKS, recipients=[{"to": "+46710000001"}, {"to": "+46700000001"}]))
    from sms_connector.sending import record

    real = record.commit

    def deleted_meanwhile(writes: Any) -> Any:
        assert connectors_api("DELETE", f"/connectors/{connector}")[0] == 204
        return real(writes)

    monkeypatch.setattr(record, "commit", deleted_meanwhile)
    assert sender({"connectorId": connector, "message": "Last words", "actionId": "x1"}) == []
    items = boto3.client("dynamodb").scan(TableName=os.environ["TABLE_NAME"])["Items"]
    assert [i for i in items if i["pk"]["S"] == f"CONNECTOR#{connector}"] == []  # no counters, no log
    # the SMS themselves are recorded (nobody is texted again if the action comes back)
    assert (record.read(record.sms_id(connector, "x1", "+46710000001")) or {}).get("state") == record.STATE_SENT


def test_a_delete_stopped_half_way_can_be_finished(connectors_api: Api) -> None:
    connector = make(connectors_api, with_(GUIDE_TWILIO, recipients=[{"to": "+46710000001"}]))
    # the first DELETE scheduled the secret's deletion, then stopped
    boto3.client("secretsmanager").delete_secret(SecretId=f"sms-connector/test/{connector}", RecoveryWindowInDays=7)
    assert connectors_api("DELETE", f"/connectors/{connector}")[0] == 204
    assert connectors_api("GET", f"/connectors/{connector}")[0] == 404


def test_a_body_with_a_huge_number_is_a_400(connectors_api: Api) -> None:
    status, answer = connectors_api("POST", "/connectors", '{"type": "email", "name": ' + "9" * 5000 + "}")
    assert status == 400 and "digits" in answer["message"]


def test_an_unexpected_error_is_logged_by_its_type_only(
    connectors_api: Api, monkeypatch: pytest.MonkeyPatch, log_output: Any
) -> None:
    from sms_connector import connectors

    def broken(*_: Any) -> Any:
        raise ValueError("secret-looking text +46701234567 KEY_abc")

    monkeypatch.setattr(connectors, "list_page", broken)
    status, answer = connectors_api("GET", "/connectors")
    assert status == 500 and answer == {"statusCode": 500, "message": "internal error; it has been logged"}
    [line] = [line for line in lines_of(log_output) if line.get("message") == "unhandled error"]
    assert line["error_type"] == "ValueError" and line["where"]
    assert "KEY_abc" not in log_output.getvalue() and "+46701234567" not in log_output.getvalue()


def test_a_rule_action_failure_log_names_no_secret(connectors_api: Api, sender: Any, log_output: Any) -> None:
    record = sqs_record({"connectorId": "01NOPE", "message": "Hi"}, message_id="m1")
    answer = load("SenderFunction")(sqs_event(record), LambdaContext("sender", 60))
    assert answer["batchItemFailures"] == [{"itemIdentifier": "m1"}]
    [line] = [line for line in lines_of(log_output) if line.get("message") == "rule action not done"]
    assert line["reason"] == "no SMS connector 01NOPE for this action"
