"""The provider simulator speaks each provider's wire format (it is a test tool; it is tested too)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import urllib3

from devstack.simulators import Answer, ProviderSimulator

HTTP = urllib3.PoolManager(retries=False, timeout=5)


@pytest.fixture
def simulator() -> Iterator[ProviderSimulator]:
    with ProviderSimulator() as sim:
        sim.add_elks46_account("u", "p")
        sim.add_telnyx_key("KEY_1")
        sim.add_twilio_account("AC1", "tok")
        yield sim


def post(
    sim: ProviderSimulator,
    path: str,
    *,
    fields: dict | None = None,
    body: dict | None = None,
    headers: dict | None = None,
) -> urllib3.BaseHTTPResponse:
    if body is not None:
        return HTTP.request("POST", sim.url + path, json=body, headers=headers)
    return HTTP.request("POST", sim.url + path, fields=fields, headers=headers, encode_multipart=False)


def test_46elks_success_and_plain_text_errors(simulator: ProviderSimulator) -> None:
    auth = urllib3.make_headers(basic_auth="u:p")
    ok = post(simulator, "/a1/SMS", fields={"from": "Me", "to": "+46710000001", "message": "hi"}, headers=auth)
    answer = json.loads(ok.data)
    assert ok.status == 200 and answer["id"].startswith("s") and answer["status"] == "created"
    assert answer["parts"] == 1 and answer["cost"] == 3500
    bad = post(
        simulator,
        "/a1/sms",
        fields={"from": "Me", "to": "+46710000001", "message": "hi"},
        headers=urllib3.make_headers(basic_auth="u:wrong"),
    )
    assert bad.status == 401 and bad.headers["Content-Type"].startswith("text/plain")
    invalid = post(simulator, "/a1/sms", fields={"from": "Me", "to": "+46700000001", "message": "hi"}, headers=auth)
    assert invalid.status == 400 and invalid.data == b"Invalid to number"


def test_telnyx_success_and_error_envelope(simulator: ProviderSimulator) -> None:
    auth = {"Authorization": "Bearer KEY_1"}
    ok = post(
        simulator, "/v2/messages", body={"from": "+46700000000", "to": "+46710000001", "text": "hi"}, headers=auth
    )
    data = json.loads(ok.data)["data"]
    assert ok.status == 200 and data["to"][0]["status"] == "queued" and data["parts"] == 1
    bad = post(
        simulator, "/v2/messages", body={"to": "+46710000001", "text": "hi"}, headers={"Authorization": "Bearer nope"}
    )
    assert bad.status == 401 and json.loads(bad.data)["errors"][0]["code"] == "10009"
    simulator.script("telnyx", Answer("rate_limited", retry_after=2))
    limited = post(simulator, "/v2/messages", body={"to": "+46710000001", "text": "hi"}, headers=auth)
    assert limited.status == 429 and limited.headers["Retry-After"] == "2"
    assert json.loads(limited.data)["errors"][0]["code"] == "10011"


def test_twilio_success_error_and_sid_check(simulator: ProviderSimulator) -> None:
    auth = urllib3.make_headers(basic_auth="AC1:tok")
    path = "/2010-04-01/Accounts/AC1/Messages.json"
    ok = post(simulator, path, fields={"To": "+46710000001", "From": "+46700000000", "Body": "hi"}, headers=auth)
    answer = json.loads(ok.data)
    assert ok.status == 201 and answer["sid"].startswith("SM") and answer["num_segments"] == "1"
    other_sid = post(
        simulator,
        "/2010-04-01/Accounts/AC2/Messages.json",
        fields={"To": "+46710000001", "From": "+46700000000", "Body": "hi"},
        headers=auth,
    )
    assert other_sid.status == 401 and json.loads(other_sid.data)["code"] == 20003
    magic = post(simulator, path, fields={"To": "+15005550004", "From": "+46700000000", "Body": "hi"}, headers=auth)
    assert magic.status == 400 and json.loads(magic.data)["code"] == 21610
    long = post(
        simulator, path, fields={"To": "+46710000001", "From": "+46700000000", "Body": "a" * 1601}, headers=auth
    )
    assert json.loads(long.data)["code"] == 21617


def test_scripted_answers_are_used_in_order_then_normal_service(simulator: ProviderSimulator) -> None:
    auth = urllib3.make_headers(basic_auth="u:p")
    simulator.script("46elks", "unavailable", "server_error")
    statuses = [
        post(simulator, "/a1/sms", fields={"from": "Me", "to": "+46710000001", "message": "x"}, headers=auth).status
        for _ in range(3)
    ]
    assert statuses == [503, 500, 200]
    assert len(simulator.sent("46elks")) == 1 and len(simulator.received("46elks")) == 3


def test_messages_are_listed_for_people(simulator: ProviderSimulator) -> None:
    auth = urllib3.make_headers(basic_auth="u:p")
    post(simulator, "/a1/sms", fields={"from": "Me", "to": "+46710000001", "message": "look"}, headers=auth)
    listed = json.loads(HTTP.request("GET", simulator.url + "/_sim/messages").data)["messages"]
    assert [(m["provider"], m["to"], m["text"]) for m in listed] == [("46elks", "+46710000001", "look")]
