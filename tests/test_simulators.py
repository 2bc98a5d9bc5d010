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


def send_once(sim: ProviderSimulator, provider: str, to: str, text: str, **extra: str) -> urllib3.BaseHTTPResponse:
    """One send in `provider`'s wire format with the fixture's credentials."""
    if provider == "46elks":
        fields = {"from": "Me", "to": to, "message": text, **extra}
        return post(sim, "/a1/sms", fields=fields, headers=urllib3.make_headers(basic_auth="u:p"))
    if provider == "telnyx":
        body = {"from": "+46700000100", "to": to, "text": text, **extra}
        return post(sim, "/v2/messages", body=body, headers={"Authorization": "Bearer KEY_1"})
    fields = {"To": to, "From": "+46700000200", "Body": text, **extra}
    path = "/2010-04-01/Accounts/AC1/Messages.json"
    return post(sim, path, fields=fields, headers=urllib3.make_headers(basic_auth="AC1:tok"))


def parts_of(answer: urllib3.BaseHTTPResponse) -> int:
    data = json.loads(answer.data)
    return int(data["data"]["parts"] if "data" in data else data.get("parts", data.get("num_segments")))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a" * 160, {"46elks": 1, "telnyx": 1, "twilio": 1}),
        ("a" * 161, {"46elks": 2, "telnyx": 2, "twilio": 2}),
        # extension characters: 2 septets at Twilio and Telnyx, UCS-2 at 46elks
        ("{" * 80, {"46elks": 2, "telnyx": 1, "twilio": 1}),
        ("{" * 81, {"46elks": 2, "telnyx": 2, "twilio": 2}),
        # the euro sign: GSM at Twilio only
        ("€" + "a" * 150, {"46elks": 3, "telnyx": 3, "twilio": 1}),
        # Ç, § and Greek capitals: GSM 03.38 basic, not in Telnyx's set
        ("Ç§Δ" + "a" * 157, {"46elks": 1, "telnyx": 3, "twilio": 1}),
        # UTF-16 code units: an emoji counts 2
        ("😀" * 35, {"46elks": 1, "telnyx": 1, "twilio": 1}),
        ("😀" * 36, {"46elks": 2, "telnyx": 2, "twilio": 2}),
    ],
    ids=["160", "161", "braces-80", "braces-81", "euro", "c-cedilla", "emoji-35", "emoji-36"],
)
def test_each_provider_counts_parts_with_its_own_character_set(
    simulator: ProviderSimulator, text: str, expected: dict[str, int]
) -> None:
    got = {p: parts_of(send_once(simulator, p, "+46710000001", text)) for p in expected}
    assert got == expected


def test_telnyx_names_the_encoding_and_46elks_charges_per_part(simulator: ProviderSimulator) -> None:
    assert json.loads(send_once(simulator, "telnyx", "+46710000001", "Ça va").data)["data"]["encoding"] == "UCS-2"
    assert json.loads(send_once(simulator, "telnyx", "+46710000001", "[ok]").data)["data"]["encoding"] == "GSM-7"
    elks = json.loads(send_once(simulator, "46elks", "+46710000001", "€" * 71).data)
    assert (elks["parts"], elks["cost"]) == (2, 7000)


def test_the_simulators_do_not_import_the_application() -> None:
    import subprocess
    import sys

    code = "import sys, devstack.simulators; assert 'sms_connector' not in sys.modules, 'imports sms_connector'"
    subprocess.run([sys.executable, "-c", code], check=True)
