"""Tenants cannot reach each other's data, and no secret value leaks anywhere."""

from __future__ import annotations

import json
import os
from typing import Any

import boto3

from devstack.handlers import load
from tests.conftest import Api
from tests.test_models import EMAIL, GUIDE_46ELKS, GUIDE_TELNYX, GUIDE_TWILIO, with_
from tests.test_sending import make


def table_snapshot() -> list[dict[str, Any]]:
    items = boto3.client("dynamodb").scan(TableName=os.environ["TABLE_NAME"])["Items"]
    return sorted(items, key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


def test_every_route_with_another_tenants_token_is_404_and_changes_nothing(connectors_api: Api, sender: Any) -> None:
    make(connectors_api, EMAIL)
    connector = make(connectors_api, with_(GUIDE_46ELKS, recipients=[{"to": "+46700000001"}]))
    assert sender({"connectorId": connector, "message": "make some stats and a log"}) == []
    apis = {name: Api(load(name), "tenant-b") for name in ("ConnectorsFunction", "SendApiFunction", "StatsFunction")}
    calls = [
        ("ConnectorsFunction", "GET", f"/connectors/{connector}", None),
        ("ConnectorsFunction", "PUT", f"/connectors/{connector}", with_(GUIDE_46ELKS, name="hijacked")),
        ("ConnectorsFunction", "POST", f"/connectors/{connector}/verify", None),
        ("ConnectorsFunction", "DELETE", f"/connectors/{connector}", None),
        ("SendApiFunction", "POST", f"/connectors/{connector}/test", {"message": "hi"}),
        ("StatsFunction", "GET", f"/connectors/{connector}/stats", None),
        ("StatsFunction", "GET", f"/connectors/{connector}/logs", None),
    ]
    before = table_snapshot()
    for function, method, path, body in calls:
        status, answer = apis[function](method, path, body)
        assert (status, answer) == (404, {"statusCode": 404, "message": "connector not found"}), (method, path)
    status, page = apis["ConnectorsFunction"]("GET", "/connectors")
    assert status == 200 and page["items"] == []
    assert table_snapshot() == before
    # A rule action naming the connector with another tenant fails (and so goes to the DLQ)
    assert sender({"connectorId": connector, "message": "x", "tenantId": "tenant-b"}, message_ids=["m"]) == ["m"]


SECRETS = {
    "46elks": {"username": "elks-user-visible", "password": "S3cret-elks-password-9f2c"},
    "telnyx": {"apiKey": "KEY_S3cret-telnyx-4c1d"},
    "twilio": {"accountSid": "AC" + "7" * 32, "authToken": "S3cret-twilio-token-77aa"},
}
# As pasted: stray whitespace around them (trimmed on the way in).
PASTED = {p: {k: f" {v}\n" if k != "accountSid" else v for k, v in c.items()} for p, c in SECRETS.items()}
ROTATED = {"46elks": {"password": "S3cret-rotated-elks-1b2b"}, "twilio": {"authToken": "S3cret-rotated-twilio-5e5e"}}


def test_no_secret_value_leaks(connectors_api: Api, pipeline: Any, sim: Any, log_output: Any, capfd: Any) -> None:
    # Given connectors whose credentials the simulator accepts (and one it refuses)
    sim.add_elks46_account("elks-user-visible", "S3cret-rotated-elks-1b2b")
    sim.add_telnyx_key("KEY_S3cret-telnyx-4c1d")
    sim.add_twilio_account("AC" + "7" * 32, "S3cret-twilio-token-77aa")
    answers: list[Any] = []
    queued: list[str] = []

    def record(**kwargs: Any) -> None:  # every message body any function puts on a queue
        params = kwargs.get("params", {})
        queued.extend([params["MessageBody"]] if "MessageBody" in params else [])
        queued.extend(e["MessageBody"] for e in params.get("Entries", []) if "MessageBody" in e)

    from sms_connector import aws

    aws.client("sqs").meta.events.register("before-parameter-build.sqs.*", record)

    def call(api: Api, *args: Any) -> Any:
        status, answer = api(*args)
        answers.append(answer)
        return status, answer

    send_api = Api(load("SendApiFunction"), "tenant-a")
    stats_api = Api(load("StatsFunction"), "tenant-a")
    call(connectors_api, "POST", "/connectors", EMAIL)
    # +46700000002 opted out: Telnyx's answer names it (and the sender) in full; +15005550001 is
    # refused by Twilio with a text naming it
    team = [
        {"to": "+46710000001"},
        {"to": "+46700000002", "backupEmail": "b@example.com"},
        {"to": "+15005550001"},
    ]
    ids = {}
    for provider, guide in (("46elks", GUIDE_46ELKS), ("telnyx", GUIDE_TELNYX), ("twilio", GUIDE_TWILIO)):
        status, created = call(
            connectors_api, "POST", "/connectors", with_(guide, credentials=PASTED[provider], recipients=team)
        )
        assert status == 201
        ids[provider] = created["id"]
    for provider, change in ROTATED.items():
        body = with_({"46elks": GUIDE_46ELKS, "twilio": GUIDE_TWILIO}[provider], credentials=change, recipients=team)
        assert call(connectors_api, "PUT", f"/connectors/{ids[provider]}", body)[0] == 200
    # When they send (twilio now fails authentication), fall back, and are read back
    for provider, connector in ids.items():
        pipeline.enqueue({"connectorId": connector, "message": f"alarm via {provider}"})
        call(send_api, "POST", f"/connectors/{connector}/test", {})
    pipeline.run()
    # The Twilio account takes the rotated token now: its account answer (verify) carries it
    sim.add_twilio_account("AC" + "7" * 32, ROTATED["twilio"]["authToken"])
    for connector in ids.values():
        call(connectors_api, "GET", f"/connectors/{connector}")
        call(connectors_api, "POST", f"/connectors/{connector}/verify")  # Twilio's answer holds the token
        call(stats_api, "GET", f"/connectors/{connector}/stats")
        call(stats_api, "GET", f"/connectors/{connector}/logs")
    call(connectors_api, "GET", "/connectors")
    assert any(r.status == 401 for r in sim.received("twilio"))  # the scenario did exercise a failure
    assert any(r.path.endswith(".json") and r.status == 200 for r in sim.received("twilio", method="GET"))
    # Then no secret value is in any answer, log line, DynamoDB item or queue message
    secrets = [
        v
        for creds in [*SECRETS.values(), *ROTATED.values()]
        for k, v in creds.items()
        if k in ("password", "apiKey", "authToken")
    ]
    places = {
        "API answers": json.dumps(answers),
        "log lines": log_output.getvalue() + capfd.readouterr().out,
        "DynamoDB items": json.dumps(table_snapshot()),
        "queue messages": json.dumps(queued),
    }
    assert len(queued) >= 3 and "elks-user-visible" in places["API answers"]  # the scan sees real data
    for place, text in places.items():
        for secret in secrets:
            assert secret not in text, f"{secret} leaked into {place}"
    # And no full phone number where numbers are shown or logged: log lines, the error log and
    # the statistics (items and answers), queue messages. (A connector's own answer lists its
    # recipients, and each SMS's record keeps its number to send it: that is their job.)
    shown = {
        "log lines": places["log lines"],
        "error log and statistics items": json.dumps(
            [i for i in table_snapshot() if i["sk"]["S"].startswith(("LOG#", "STATS", "MONTH#"))]
        ),
        "queue messages": places["queue messages"],
        "statistics and log answers": json.dumps(
            [a for a in answers if isinstance(a, dict) and ("totalSent" in a or "level" in str(a.get("items")))]
        ),
        "test send errors": json.dumps(
            [r.get("error") for a in answers if isinstance(a, dict) for r in a.get("results", [])]
        ),
    }
    numbers = [m["to"] for m in team] + ["+46700000000"]  # and the senders
    assert "+46 *******02" in shown["error log and statistics items"]  # the scan sees real entries
    for place, text in shown.items():
        for number in numbers:
            assert number not in text and number[1:] not in text, f"{number} in {place}"
