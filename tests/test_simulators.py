"""The provider simulator speaks each provider's wire format (it is a test tool; it is tested too)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
import urllib3
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

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
    assert limited.status == 429 and limited.headers["x-ratelimit-reset"] == "2"
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


def send_once(
    sim: ProviderSimulator,
    provider: str,
    to: str = "+46710000001",
    text: str = "hi",
    *,
    timeout: float = 5,
    headers: dict[str, str] | None = None,
    **extra: str,
) -> urllib3.BaseHTTPResponse:
    """One send in `provider`'s wire format with the fixture's credentials."""
    http = urllib3.PoolManager(retries=False, timeout=timeout)
    if provider == "46elks":
        fields = {"from": "Me", "to": to, "message": text, **extra}
        auth = urllib3.make_headers(basic_auth="u:p") | (headers or {})
        return http.request("POST", sim.url + "/a1/sms", fields=fields, headers=auth, encode_multipart=False)
    if provider == "telnyx":
        body = {"from": "+46700000100", "to": to, "text": text, **extra}
        return http.request("POST", sim.url + "/v2/messages", json=body, headers={"Authorization": "Bearer KEY_1"})
    fields = {"To": to, "From": "+46700000200", "Body": text, **extra}
    url = sim.url + "/2010-04-01/Accounts/AC1/Messages.json"
    auth = urllib3.make_headers(basic_auth="AC1:tok") | (headers or {})
    return http.request("POST", url, fields=fields, headers=auth, encode_multipart=False)


def outcome(sim: ProviderSimulator, provider: str, **kwargs: Any) -> int | str:
    """The HTTP status a client got, or the name of the error it met instead of an answer."""
    try:
        return send_once(sim, provider, **kwargs).status
    except urllib3.exceptions.HTTPError as exc:
        return type(exc).__name__


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


SUCCESS = {"46elks": 200, "telnyx": 200, "twilio": 201}


@pytest.mark.parametrize("provider", ["46elks", "telnyx", "twilio"])
def test_faults_after_the_message_is_taken(simulator: ProviderSimulator, provider: str) -> None:
    simulator.hang_seconds = 0.5
    simulator.script(provider, "accept_then_hang", "accept_then_reset", "unreadable", "accept_then_500")
    # a hang: the client's read timeout ends it, but the message was taken (and is logged at once)
    assert outcome(simulator, provider, timeout=0.2) == "ReadTimeoutError"
    [hung] = simulator.received(provider)
    assert (hung.answer, hung.status) == ("accept_then_hang", 0) and hung.message_id
    assert outcome(simulator, provider) == "ProtocolError"  # closed without an answer
    unreadable = send_once(simulator, provider)
    assert unreadable.status == SUCCESS[provider] and unreadable.headers["Content-Type"].startswith("text/html")
    bad_gateway = send_once(simulator, provider)
    assert bad_gateway.status == 502 and b"502 Bad Gateway" in bad_gateway.data
    assert [r.answer for r in simulator.sent(provider)] == [
        "accept_then_hang",
        "accept_then_reset",
        "unreadable",
        "accept_then_500",
    ]
    assert len({r.message_id for r in simulator.sent(provider)}) == 4


@pytest.mark.parametrize("provider", ["46elks", "telnyx", "twilio"])
def test_faults_before_the_message_is_taken(simulator: ProviderSimulator, provider: str) -> None:
    simulator.timeout_seconds = 0.15
    simulator.script(provider, "server_error", "unavailable", "rate_limited", "reset", "timeout")
    got = [outcome(simulator, provider, timeout=1) for _ in range(5)]
    assert got == [500, 503, 429, "ProtocolError", "ProtocolError"]
    assert simulator.sent(provider) == []
    assert [r.answer for r in simulator.received(provider)] == [
        "server_error",
        "unavailable",
        "rate_limited",
        "reset",
        "timeout",
    ]
    # a slow answer is a late success
    simulator.script(provider, Answer("slow", delay=0.1))
    assert outcome(simulator, provider) == SUCCESS[provider]
    assert [r.answer for r in simulator.sent(provider)] == ["slow"]


def test_random_faults_draw_from_the_chosen_kinds(simulator: ProviderSimulator) -> None:
    simulator.fault_rate, simulator.fault_kinds = 1.0, ("accept_then_reset",)
    assert outcome(simulator, "twilio") == "ProtocolError"
    [taken] = simulator.sent()
    assert taken.answer == "accept_then_reset"
    with pytest.raises(ValueError, match="no such"):
        simulator.script("twilio", "on_fire")


@pytest.mark.parametrize("provider", ["46elks", "telnyx", "twilio"])
def test_rate_limits_in_each_providers_own_headers(simulator: ProviderSimulator, provider: str) -> None:
    simulator.script(provider, "rate_limited", Answer("rate_limited", retry_after=3))
    plain, asked = send_once(simulator, provider), send_once(simulator, provider)
    magic = send_once(simulator, provider, to="+46700000004")
    assert (plain.status, asked.status, magic.status) == (429, 429, 429)
    if provider == "telnyx":  # x-ratelimit-* with the reset as a delay, and never Retry-After
        assert "Retry-After" not in plain.headers and "Retry-After" not in asked.headers
        assert (plain.headers["x-ratelimit-remaining"], plain.headers["x-ratelimit-reset"]) == ("0", "1")
        assert asked.headers["x-ratelimit-reset"] == "3" and int(asked.headers["x-ratelimit-limit"]) > 0
        assert json.loads(plain.data)["errors"][0]["code"] == "10011"
    else:  # no Retry-After unless the test asks for one
        assert "Retry-After" not in plain.headers and "Retry-After" not in magic.headers
        assert asked.headers["Retry-After"] == "3"
    if provider == "twilio":
        assert json.loads(plain.data)["code"] == 20429


def telnyx_send(
    sim: ProviderSimulator, body: bytes, key: str | None, *, api_key: str = "KEY_1", timeout: float = 5
) -> urllib3.BaseHTTPResponse:
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    http = urllib3.PoolManager(retries=False, timeout=timeout)
    return http.request("POST", sim.url + "/v2/messages", body=body, headers=headers)


SMS = json.dumps({"from": "+46700000100", "to": "+46710000001", "text": "Door open"}).encode()


def test_telnyx_replays_a_success_for_the_same_key_and_body(simulator: ProviderSimulator) -> None:
    first = telnyx_send(simulator, SMS, "8e03978e-40d5-43e8-bc93-6894a57f9326")
    again = telnyx_send(simulator, SMS, "8e03978e-40d5-43e8-bc93-6894a57f9326")
    assert (first.status, again.status) == (200, 200) and again.data == first.data
    assert len(simulator.sent("telnyx")) == 1
    replay = simulator.received("telnyx")[-1]
    assert replay.answer == "replayed" and replay.message_id == json.loads(first.data)["data"]["id"]
    # the same key with another body is a client bug
    other = telnyx_send(simulator, SMS.replace(b"Door open", b"Door shut"), "8e03978e-40d5-43e8-bc93-6894a57f9326")
    assert other.status == 422 and len(simulator.sent("telnyx")) == 1
    # the key's scope is the API key (our organization), method and path
    simulator.add_telnyx_key("KEY_2")
    assert telnyx_send(simulator, SMS, "8e03978e-40d5-43e8-bc93-6894a57f9326", api_key="KEY_2").status == 200
    assert len(simulator.sent("telnyx")) == 2
    # without a key every request is a new message
    telnyx_send(simulator, SMS, None)
    telnyx_send(simulator, SMS, None)
    assert len(simulator.sent("telnyx")) == 4


@pytest.mark.parametrize("key", ["has space", "", "k" * 256, "a/b"])
def test_telnyx_refuses_a_malformed_idempotency_key(simulator: ProviderSimulator, key: str) -> None:
    answer = telnyx_send(simulator, SMS, key)
    assert answer.status == 400 and json.loads(answer.data)["errors"][0]["code"] == "10015"
    assert simulator.sent() == []


def test_telnyx_key_in_flight_answers_409_then_replays(simulator: ProviderSimulator) -> None:
    simulator.hang_seconds = 0.6
    simulator.script("telnyx", "accept_then_hang")
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        telnyx_send(simulator, SMS, "key-1", timeout=0.2)
    [taken] = simulator.sent("telnyx")
    # the first request is still open: a retry with the key is told to wait, and is not a STOP block
    busy = telnyx_send(simulator, SMS, "key-1")
    error = json.loads(busy.data)["errors"][0]
    assert busy.status == 409 and error["code"] != "40300"
    assert simulator.received("telnyx")[-1].answer == "in_flight"
    # once the simulator has closed the first connection, the retry gets the first success
    deadline = time.monotonic() + 3
    while (retry := telnyx_send(simulator, SMS, "key-1")).status == 409 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert retry.status == 200 and json.loads(retry.data)["data"]["id"] == taken.message_id
    assert len(simulator.sent("telnyx")) == 1


def test_telnyx_replays_the_success_a_proxy_hid(simulator: ProviderSimulator) -> None:
    simulator.script("telnyx", "unreadable")
    hidden = telnyx_send(simulator, SMS, "key-4")
    assert hidden.status == 200 and hidden.headers["Content-Type"].startswith("text/html")
    replay = telnyx_send(simulator, SMS, "key-4")
    [taken] = simulator.sent("telnyx")
    assert json.loads(replay.data)["data"]["id"] == taken.message_id


@pytest.mark.parametrize("failure", ["rate_limited", "server_error", "unavailable", "reset"])
def test_telnyx_processes_a_failed_first_attempt_anew(simulator: ProviderSimulator, failure: str) -> None:
    simulator.script("telnyx", failure)
    with contextlib.suppress(urllib3.exceptions.ProtocolError):
        assert telnyx_send(simulator, SMS, "key-2").status >= 429
    assert simulator.sent() == []
    assert telnyx_send(simulator, SMS, "key-2").status == 200
    assert [r.answer for r in simulator.received("telnyx")] == [failure, "ok"]
    assert len(simulator.sent("telnyx")) == 1


def test_telnyx_replays_only_within_the_window(simulator: ProviderSimulator) -> None:
    simulator.telnyx.idempotency_seconds = 0.0
    telnyx_send(simulator, SMS, "key-3")
    telnyx_send(simulator, SMS, "key-3")
    assert len(simulator.sent("telnyx")) == 2


def test_an_opted_out_recipient_in_each_providers_terms(simulator: ProviderSimulator) -> None:
    elks = send_once(simulator, "46elks", to="+46700000002")
    assert elks.status == 400 and elks.headers["Content-Type"].startswith("text/plain")
    telnyx = send_once(simulator, "telnyx", to="+46700000002")
    assert telnyx.status == 409
    assert json.loads(telnyx.data)["errors"] == [
        {
            "code": "40300",
            "title": "Blocked due to STOP message",
            "detail": "Messages cannot be sent from '+46700000100' to '+46700000002' due to an existing block rule.",
        }
    ]
    for to in ("+46700000002", "+15005550004"):
        twilio = send_once(simulator, "twilio", to=to)
        assert twilio.status == 400
        assert json.loads(twilio.data) == {
            "code": 21610,
            "message": "Attempt to send to unsubscribed recipient",
            "more_info": "https://www.twilio.com/docs/errors/21610",
            "status": 400,
        }
    assert simulator.sent() == []


@pytest.mark.parametrize(
    ("to", "sender", "code", "message"),
    [
        ("+46700000001", "+46700000200", 21211, "The 'To' number +46700000001 is not a valid phone number."),
        ("0701234567", "+46700000200", 21211, "The 'To' number 0701234567 is not a valid phone number."),
        (
            "+15005550002",
            "+46700000200",
            21612,
            "The 'To' phone number: +15005550002, is not currently reachable using the 'From' phone number: "
            "+46700000200 via SMS.",
        ),
        ("+15005550009", "+46700000200", 21614, "'To' number +15005550009 is not a valid mobile number"),
        ("+15005550003", "+46700000200", 21408, None),
        ("+46710000001", "+15005550001", 21212, None),
        ("+46710000001", "+15005550007", 21606, None),
        ("+46710000001", "+15005550008", 21611, None),
        ("+46710000001", "+46700000660", 21660, "Mismatch between the 'From' number +46700000660 and the account AC1."),
    ],
)
def test_twilio_refusals_name_the_numbers_as_twilio_does(
    simulator: ProviderSimulator, to: str, sender: str, code: int, message: str | None
) -> None:
    http = urllib3.PoolManager(retries=False)
    answer = http.request(
        "POST",
        simulator.url + "/2010-04-01/Accounts/AC1/Messages.json",
        fields={"To": to, "From": sender, "Body": "hi"},
        headers=urllib3.make_headers(basic_auth="AC1:tok"),
        encode_multipart=False,
    )
    body = json.loads(answer.data)
    assert (answer.status, body["code"], body["more_info"]) == (400, code, f"https://www.twilio.com/docs/errors/{code}")
    if message:
        assert body["message"] == message
    assert simulator.sent() == []


def get(sim: ProviderSimulator, path: str, headers: dict[str, str]) -> urllib3.BaseHTTPResponse:
    return HTTP.request("GET", sim.url + path, headers=headers)


def basic(credentials: str) -> dict[str, str]:
    return urllib3.make_headers(basic_auth=credentials)


def test_46elks_account_check(simulator: ProviderSimulator) -> None:
    simulator.add_elks46_account("poor", "pw", balance=1000, currency="EUR")
    simulator.add_elks46_account("gone", "pw", status="suspended")
    me = get(simulator, "/a1/me", basic("u:p"))
    assert me.status == 200
    assert json.loads(me.data).keys() == {"mobilenumber", "displayname", "id", "currency", "balance", "email"}
    assert (json.loads(me.data)["balance"], json.loads(me.data)["currency"]) == (2_000_000, "SEK")
    bad = get(simulator, "/a1/me", basic("u:nope"))
    assert bad.status == 401 and bad.headers["Content-Type"].startswith("text/plain")
    poor = json.loads(get(simulator, "/a1/me", basic("poor:pw")).data)
    assert (poor["balance"], poor["currency"]) == (1000, "EUR")
    # a balance below the price of the message refuses it; a suspended account refuses everything
    refused = send_once(simulator, "46elks", headers=basic("poor:pw"))
    assert refused.status == 402 and refused.headers["Content-Type"].startswith("text/plain")
    assert get(simulator, "/a1/me", basic("gone:pw")).status == 403
    assert send_once(simulator, "46elks", headers=basic("gone:pw")).status == 403
    assert simulator.sent() == []
    assert [r.method for r in simulator.received("46elks")] == ["GET", "GET", "GET", "POST", "GET", "POST"]


def test_telnyx_balance_check(simulator: ProviderSimulator) -> None:
    simulator.add_telnyx_key("KEY_POOR", balance="0.00", credit_limit="0.005", currency="EUR")
    simulator.add_telnyx_key("KEY_GONE", status="suspended")
    good = get(simulator, "/v2/balance", {"Authorization": "Bearer KEY_1"})
    assert good.status == 200
    assert json.loads(good.data) == {
        "data": {
            "record_type": "balance",
            "balance": "20.00",
            "credit_limit": "0.00",
            "available_credit": "20.00",
            "pending": "0.00",
            "currency": "USD",
        }
    }
    bad = get(simulator, "/v2/balance", {"Authorization": "Bearer KEY_NOPE"})
    assert bad.status == 401 and json.loads(bad.data)["errors"][0]["code"] == "10009"
    poor = json.loads(get(simulator, "/v2/balance", {"Authorization": "Bearer KEY_POOR"}).data)["data"]
    assert (poor["available_credit"], poor["currency"]) == ("0.005", "EUR")
    gone = get(simulator, "/v2/balance", {"Authorization": "Bearer KEY_GONE"})
    assert gone.status == 403 and json.loads(gone.data)["errors"][0]["code"] == "10010"
    for key in ("KEY_POOR", "KEY_GONE"):
        refused = telnyx_send(simulator, SMS, None, api_key=key)
        assert refused.status == 403 and json.loads(refused.data)["errors"][0]["code"] == "10010"
    assert simulator.sent() == []


def test_twilio_account_and_balance_checks(simulator: ProviderSimulator) -> None:
    simulator.add_twilio_account("ACGONE", "tok", status="suspended")
    simulator.add_twilio_account("ACPOOR", "tok", balance="0.00", currency="EUR")
    account = get(simulator, "/2010-04-01/Accounts/AC1.json", basic("AC1:tok"))
    assert account.status == 200
    resource = json.loads(account.data)
    assert resource.items() >= {"sid": "AC1", "owner_account_sid": "AC1", "status": "active", "type": "Full"}.items()
    assert {"friendly_name", "auth_token", "date_created", "date_updated", "uri"} <= resource.keys()
    balance = get(simulator, "/2010-04-01/Accounts/AC1/Balance.json", basic("AC1:tok"))
    assert json.loads(balance.data) == {"account_sid": "AC1", "balance": "20.00", "currency": "USD"}
    for path, credentials in [
        ("/2010-04-01/Accounts/AC1.json", "AC1:wrong"),
        ("/2010-04-01/Accounts/AC1.json", "ACGONE:tok"),  # the SID in the URL must be the caller's
        ("/2010-04-01/Accounts/ACGONE.json", "ACGONE:tok"),  # suspended: 20003 as well
        ("/2010-04-01/Accounts/ACGONE/Balance.json", "ACGONE:tok"),
    ]:
        refused = get(simulator, path, basic(credentials))
        assert (refused.status, json.loads(refused.data)["code"]) == (401, 20003), path
    poor = get(simulator, "/2010-04-01/Accounts/ACPOOR/Balance.json", basic("ACPOOR:tok"))
    assert json.loads(poor.data)["balance"] == "0.00"
    # sends fail the same way
    sms = {"To": "+46710000001", "From": "+46700000200", "Body": "x"}
    gone = post(simulator, "/2010-04-01/Accounts/ACGONE/Messages.json", fields=sms, headers=basic("ACGONE:tok"))
    assert (gone.status, json.loads(gone.data)["code"]) == (401, 20003)
    poor_send = post(simulator, "/2010-04-01/Accounts/ACPOOR/Messages.json", fields=sms, headers=basic("ACPOOR:tok"))
    assert (poor_send.status, json.loads(poor_send.data)["code"]) == (403, 20005)
    assert simulator.sent() == []


def test_a_twilio_trial_account_sends_only_to_verified_numbers(simulator: ProviderSimulator) -> None:
    simulator.add_twilio_account("ACTRIAL", "tok", type="Trial", verified_numbers=["+46710000001"])
    trial = json.loads(get(simulator, "/2010-04-01/Accounts/ACTRIAL.json", basic("ACTRIAL:tok")).data)
    assert trial["type"] == "Trial"
    url = simulator.url + "/2010-04-01/Accounts/ACTRIAL/Messages.json"
    answers = [
        HTTP.request(
            "POST",
            url,
            fields={"To": to, "From": "+46700000200", "Body": "hi"},
            headers=basic("ACTRIAL:tok"),
            encode_multipart=False,
        )
        for to in ("+46710000001", "+46710000002")
    ]
    assert [a.status for a in answers] == [201, 400]
    refused = json.loads(answers[1].data)
    assert refused["code"] == 21608 and "+46710000002" in refused["message"]
    assert [r.fields["to"] for r in simulator.sent()] == ["+46710000001"]


def test_costs_on_the_send_answers(simulator: ProviderSimulator) -> None:
    simulator.add_telnyx_key("KEY_EUR", currency="EUR")
    two_parts = "a" * 200
    elks = json.loads(send_once(simulator, "46elks", text=two_parts).data)
    assert (elks["parts"], elks["cost"]) == (2, 7000)
    body = json.dumps({"from": "+46700000100", "to": "+46710000001", "text": two_parts}).encode()
    telnyx = json.loads(telnyx_send(simulator, body, None, api_key="KEY_EUR").data)["data"]
    assert (telnyx["parts"], telnyx["encoding"]) == (2, "GSM-7")
    assert telnyx["cost"] == {"amount": "0.0102", "currency": "EUR"}
    twilio = json.loads(send_once(simulator, "twilio", text=two_parts).data)
    assert (twilio["num_segments"], twilio["price"], twilio["price_unit"]) == ("2", None, "USD")


def eventually(check: Any, seconds: float = 3.0) -> Any:
    """Poll `check` until it answers something truthy (the simulator moves messages on in the background)."""
    deadline = time.monotonic() + seconds
    while not (got := check()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return got


TWILIO_AUTH = urllib3.make_headers(basic_auth="AC1:tok")


def twilio_message(sim: ProviderSimulator, sid: str) -> dict[str, Any]:
    return dict(json.loads(get(sim, f"/2010-04-01/Accounts/AC1/Messages/{sid}.json", TWILIO_AUTH).data))


def test_twilio_lists_messages_newest_first_with_paging(simulator: ProviderSimulator) -> None:
    for to, text in [("+46710000001", "one"), ("+46710000002", "other"), ("+46710000001", "two")]:
        assert send_once(simulator, "twilio", to=to, text=text).status == 201
    query = "/2010-04-01/Accounts/AC1/Messages.json?To=%2B46710000001&From=%2B46700000200&PageSize=1"
    first = json.loads(get(simulator, query, TWILIO_AUTH).data)
    assert [m["body"] for m in first["messages"]] == ["two"]
    assert (first["page"], first["page_size"], first["previous_page_uri"]) == (0, 1, None)
    message = first["messages"][0]
    assert message["to"] == "+46710000001" and message["status"] in ("queued", "sent", "delivered")
    assert message["date_created"].endswith("+0000") and message["sid"].startswith("SM")
    second = json.loads(get(simulator, first["next_page_uri"], TWILIO_AUTH).data)
    assert [m["body"] for m in second["messages"]] == ["one"] and second["next_page_uri"] is None
    everything = json.loads(get(simulator, "/2010-04-01/Accounts/AC1/Messages.json", TWILIO_AUTH).data)
    assert [m["body"] for m in everything["messages"]] == ["two", "other", "one"]
    # another account sees none of them, and a SID not the caller's is refused
    simulator.add_twilio_account("AC2", "tok2")
    other = get(simulator, "/2010-04-01/Accounts/AC2/Messages.json", basic("AC2:tok2"))
    assert json.loads(other.data)["messages"] == []
    assert get(simulator, "/2010-04-01/Accounts/AC1/Messages.json", basic("AC2:tok2")).status == 401
    missing = get(simulator, "/2010-04-01/Accounts/AC1/Messages/SMnope.json", TWILIO_AUTH)
    assert (missing.status, json.loads(missing.data)["code"]) == (404, 20404)


OUTCOME_TO = ("+46710000001", "+46700000006", "+46700000007", "+46700000008", "+46700000009")


def test_twilio_prices_a_message_once_it_is_sent(simulator: ProviderSimulator) -> None:
    simulator.receipt_delay = 0.3
    sids = {to: json.loads(send_once(simulator, "twilio", to=to, text="a" * 200).data)["sid"] for to in OUTCOME_TO}
    fresh = twilio_message(simulator, sids["+46710000001"])
    assert (fresh["status"], fresh["price"]) == ("queued", None)
    # the last one sent ends last: wait for it, then look at them all
    assert eventually(lambda: twilio_message(simulator, sids["+46700000009"])["status"] == "failed")
    ended = {to: twilio_message(simulator, sid) for to, sid in sids.items()}
    assert [ended[to]["status"] for to in OUTCOME_TO] == ["delivered", "undelivered", "sent", "delivered", "failed"]
    delivered = ended["+46710000001"]
    assert (delivered["price"], delivered["price_unit"], delivered["error_code"]) == ("-0.01500", "USD", None)
    assert delivered["date_sent"].endswith("+0000")
    assert (ended["+46700000006"]["error_code"], ended["+46700000006"]["price"]) == (30003, "-0.01500")
    assert (ended["+46700000009"]["error_code"], ended["+46700000009"]["price"]) == (30008, None)


def test_lists_hide_messages_younger_than_the_listing_delay(simulator: ProviderSimulator) -> None:
    simulator.listing_delay = 0.4
    sid = json.loads(send_once(simulator, "twilio").data)["sid"]
    sms = json.loads(send_once(simulator, "46elks").data)["id"]
    twilio_list, elks_list = "/2010-04-01/Accounts/AC1/Messages.json", "/a1/sms"
    assert json.loads(get(simulator, twilio_list, TWILIO_AUTH).data)["messages"] == []
    assert json.loads(get(simulator, elks_list, basic("u:p")).data)["data"] == []
    assert twilio_message(simulator, sid)["sid"] == sid  # by id it is there at once
    assert get(simulator, f"/a1/sms/{sms}", basic("u:p")).status == 200
    time.sleep(0.45)
    assert [m["sid"] for m in json.loads(get(simulator, twilio_list, TWILIO_AUTH).data)["messages"]] == [sid]
    assert [m["id"] for m in json.loads(get(simulator, elks_list, basic("u:p")).data)["data"]] == [sms]


def test_46elks_history_pages_back_in_time(simulator: ProviderSimulator) -> None:
    ids = [json.loads(send_once(simulator, "46elks", text=f"n{i}").data)["id"] for i in range(3)]
    send_once(simulator, "46elks", to="+46710000002", text="elsewhere")
    auth = basic("u:p")
    page = json.loads(get(simulator, "/a1/sms?to=%2B46710000001&limit=2", auth).data)
    assert [m["id"] for m in page["data"]] == [ids[2], ids[1]]
    item = page["data"][0]
    assert item.items() >= {"direction": "outgoing", "from": "Me", "message": "n2", "cost": 3500}.items()
    assert {"created", "status", "parts"} <= item.keys()
    older = json.loads(get(simulator, f"/a1/sms?to=%2B46710000001&limit=2&start={page['next']}", auth).data)
    assert [m["id"] for m in older["data"]] == [ids[0]] and "next" not in older
    newer = json.loads(get(simulator, f"/a1/sms?to=%2B46710000001&end={older['data'][0]['created']}", auth).data)
    assert [m["id"] for m in newer["data"]] == [ids[2], ids[1]]
    simulator.add_elks46_account("other", "pw")
    assert json.loads(get(simulator, "/a1/sms", basic("other:pw")).data)["data"] == []
    assert get(simulator, f"/a1/sms/{ids[0]}", basic("other:pw")).status == 404


def test_46elks_and_telnyx_messages_move_on(simulator: ProviderSimulator) -> None:
    simulator.receipt_delay = 0.3
    sms = {to: json.loads(send_once(simulator, "46elks", to=to).data)["id"] for to in OUTCOME_TO}
    telnyx = {to: json.loads(send_once(simulator, "telnyx", to=to).data)["data"]["id"] for to in OUTCOME_TO}

    def elks(to: str) -> dict[str, Any]:
        return dict(json.loads(get(simulator, f"/a1/sms/{sms[to]}", basic("u:p")).data))

    def telnyx_message(to: str, key: str = "KEY_1") -> urllib3.BaseHTTPResponse:
        return get(simulator, f"/v2/messages/{telnyx[to]}", {"Authorization": f"Bearer {key}"})

    def recipient(to: str) -> str:
        return str(json.loads(telnyx_message(to).data)["data"]["to"][0]["status"])

    assert elks("+46710000001")["status"] == "created" and recipient("+46710000001") == "queued"
    assert eventually(lambda: elks("+46710000001")["status"] == "delivered")
    assert elks("+46710000001")["delivered"].endswith("Z")
    assert eventually(lambda: recipient("+46710000001") == "delivered")
    # the final states of our magic recipients
    assert eventually(lambda: recipient("+46700000009") == "sending_failed")
    assert [elks(to)["status"] for to in OUTCOME_TO] == ["delivered", "failed", "sent", "delivered", "failed"]
    assert [recipient(to) for to in OUTCOME_TO] == [
        "delivered",
        "delivery_failed",
        "sent",
        "delivery_unconfirmed",
        "sending_failed",
    ]
    failed = json.loads(telnyx_message("+46700000006").data)["data"]
    assert failed["errors"][0]["code"] == "40008" and failed["completed_at"] and failed["cost"]["amount"] == "0.0051"
    simulator.add_telnyx_key("KEY_2")
    assert telnyx_message("+46710000001", key="KEY_2").status == 404


# --- receipts -------------------------------------------------------------------------


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes


class Endpoint:
    """A client's callback endpoint: keeps each POST and answers the next queued status, else 200."""

    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self.answers: list[int] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                endpoint.hits.append(Hit(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(endpoint.answers.pop(0) if endpoint.answers else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def wait_for(self, count: int, seconds: float = 3.0) -> list[Hit]:
        assert eventually(lambda: len(self.hits) >= count, seconds), f"{len(self.hits)} of {count} receipts"
        return self.hits


@pytest.fixture
def endpoint(simulator: ProviderSimulator) -> Iterator[Endpoint]:
    simulator.receipt_delay, simulator.receipt_backoff = 0.05, 0.02
    served = Endpoint()
    yield served
    served.server.shutdown()
    served.server.server_close()


def twilio_signature_valid(token: str, url: str, body: bytes, signature: str) -> bool:
    """Twilio's request validator (providers.md 3.8): the URL, then each POST parameter sorted by
    name as name + value, HMAC-SHA1 with the auth token, base64."""
    params = parse_qs(body.decode(), keep_blank_values=True)
    signed = url + "".join(name + value for name in sorted(params) for value in sorted(params[name]))
    expected = base64.b64encode(hmac.new(token.encode(), signed.encode(), hashlib.sha1).digest()).decode()
    return hmac.compare_digest(expected, signature)


def telnyx_signature_valid(public_key: str, headers: dict[str, str], body: bytes) -> bool:
    """As Telnyx's SDK verifies an event (providers.md 2.8): Ed25519 over `{timestamp}|{raw body}`,
    the timestamp within 300 s."""
    timestamp, signature = headers["telnyx-timestamp"], headers["telnyx-signature-ed25519"]
    if abs(time.time() - int(timestamp)) > 300:
        return False
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key))
    try:
        key.verify(base64.b64decode(signature), timestamp.encode() + b"|" + body)
    except InvalidSignature:
        return False
    return True


def form(hit: Hit) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(hit.body.decode()).items()}


def test_twilio_status_callbacks_are_signed_with_the_auth_token(
    simulator: ProviderSimulator, endpoint: Endpoint
) -> None:
    callback = endpoint.url + "/receipts/twilio/c1?sms=42"
    sids = [
        json.loads(send_once(simulator, "twilio", to=to, StatusCallback=callback).data)["sid"]
        for to in ("+46710000001", "+46700000006")
    ]
    hits = endpoint.wait_for(4)
    for hit in hits:
        assert hit.path == "/receipts/twilio/c1?sms=42"
        assert hit.headers["content-type"] == "application/x-www-form-urlencoded"
        assert twilio_signature_valid("tok", callback, hit.body, hit.headers["x-twilio-signature"])
        assert not twilio_signature_valid("other-token", callback, hit.body, hit.headers["x-twilio-signature"])
    by_sid = {sid: [form(h) for h in hits if form(h)["MessageSid"] == sid] for sid in sids}
    delivered, undelivered = by_sid[sids[0]], by_sid[sids[1]]
    assert [r["MessageStatus"] for r in delivered] == ["sent", "delivered"]
    assert delivered[0].keys() == {
        "MessageSid",
        "MessageStatus",
        "SmsSid",
        "SmsStatus",
        "AccountSid",
        "From",
        "To",
        "ApiVersion",
    }
    assert delivered[1].items() >= {"AccountSid": "AC1", "To": "+46710000001", "From": "+46700000200"}.items()
    assert len(delivered[1]["RawDlrDoneDate"]) == 10 and "ErrorCode" not in delivered[1]
    assert [(r["MessageStatus"], r.get("ErrorCode")) for r in undelivered] == [("sent", None), ("undelivered", "30003")]
    assert "price" not in json.dumps(by_sid).lower()  # status callbacks carry no price
    assert eventually(lambda: [c.status for c in simulator.callbacks("twilio")] == [200, 200, 200, 200])


def test_telnyx_events_are_signed_with_ed25519(simulator: ProviderSimulator, endpoint: Endpoint) -> None:
    hook = endpoint.url + "/receipts/telnyx/c1"
    ids = {
        to: json.loads(send_once(simulator, "telnyx", to=to, webhook_url=hook).data)["data"]["id"]
        for to in ("+46710000001", "+46700000006", "+46700000008")
    }
    hits = endpoint.wait_for(6)
    events = []
    for hit in hits:
        assert hit.headers["content-type"] == "application/json"
        assert telnyx_signature_valid(simulator.telnyx_public_key, hit.headers, hit.body)
        assert not telnyx_signature_valid(simulator.telnyx_public_key, hit.headers, hit.body + b" ")
        events.append(json.loads(hit.body))
    assert all(e["meta"] == {"attempt": 1, "delivered_to": hook} for e in events)

    def of(to: str) -> list[dict[str, Any]]:
        return [e["data"] for e in events if e["data"]["payload"]["id"] == ids[to]]

    sent, final = of("+46710000001")
    assert (sent["record_type"], sent["event_type"], final["event_type"]) == (
        "event",
        "message.sent",
        "message.finalized",
    )
    assert sent["id"] != final["id"] and final["occurred_at"]
    payload = final["payload"]
    assert payload["to"] == [
        {"phone_number": "+46710000001", "status": "delivered", "carrier": "SIM", "line_type": "Wireless"}
    ]
    assert (payload["errors"], payload["parts"], payload["cost"]) == ([], 1, {"amount": "0.0051", "currency": "USD"})
    assert payload["completed_at"] and payload["sent_at"]
    failed = of("+46700000006")[-1]["payload"]
    assert failed["to"][0]["status"] == "delivery_failed" and failed["errors"][0]["code"] == "40008"
    assert of("+46700000008")[-1]["payload"]["to"][0]["status"] == "delivery_unconfirmed"


def test_46elks_delivery_reports(simulator: ProviderSimulator, endpoint: Endpoint) -> None:
    report = endpoint.url + "/receipts/46elks/c1/secret-token"
    ids = {
        to: json.loads(send_once(simulator, "46elks", to=to, whendelivered=report).data)["id"]
        for to in ("+46710000001", "+46700000006", "+46700000007")
    }
    hits = endpoint.wait_for(5)
    time.sleep(0.15)  # +46700000007 gets no final report
    assert len(endpoint.hits) == 5
    assert all(h.path == "/receipts/46elks/c1/secret-token" and "x-twilio-signature" not in h.headers for h in hits)
    reports = [form(h) for h in hits]
    delivered = [r for r in reports if r["id"] == ids["+46710000001"]]
    assert [r["status"] for r in delivered] == ["sent", "delivered"]
    assert delivered[0].keys() == {"id", "status"} and delivered[1]["delivered"]
    assert [r["status"] for r in reports if r["id"] == ids["+46700000006"]] == ["sent", "failed"]
    assert [r["status"] for r in reports if r["id"] == ids["+46700000007"]] == ["sent"]


def test_receipts_held_then_flushed(simulator: ProviderSimulator, endpoint: Endpoint) -> None:
    simulator.receipts, simulator.receipt_delay = "hold", 0.3  # both "sent" before either is final
    send_once(simulator, "twilio", StatusCallback=endpoint.url + "/t")
    send_once(simulator, "46elks", whendelivered=endpoint.url + "/e")
    assert eventually(lambda: len(simulator.held_receipts()) == 4)
    held = simulator.held_receipts()
    assert endpoint.hits == [] and simulator.callbacks() == []
    assert [(c.provider, c.event) for c in held] == [
        ("twilio", "sent"),
        ("46elks", "sent"),
        ("twilio", "delivered"),
        ("46elks", "delivered"),
    ]
    assert held[0].method == "POST" and held[0].url == endpoint.url + "/t" and b"MessageSid=" in held[0].body
    assert "X-Twilio-Signature" in held[0].headers and held[0].status is None
    simulator.flush_receipts()
    assert [h.body for h in endpoint.hits] == [c.body for c in held]
    assert simulator.held_receipts() == [] and [c.status for c in simulator.callbacks()] == [200] * 4


def test_a_refused_receipt_is_retried_as_the_provider_would(simulator: ProviderSimulator, endpoint: Endpoint) -> None:
    # 46elks: anything but 200-204 is retried; Telnyx: 3 attempts, then the failover URL; Twilio: 2
    endpoint.answers = [500, 205, 204]
    send_once(simulator, "46elks", to="+46700000007", whendelivered=endpoint.url + "/e")
    assert eventually(lambda: len(simulator.callbacks("46elks")) == 3)
    assert [(c.attempt, c.status) for c in simulator.callbacks("46elks")] == [(1, 500), (2, 205), (3, 204)]
    endpoint.hits.clear()
    endpoint.answers = [503, 503, 503]
    urls = {"webhook_url": endpoint.url + "/primary", "webhook_failover_url": endpoint.url + "/failover"}
    send_once(simulator, "telnyx", to="+46700000007", **urls)
    hits = endpoint.wait_for(4)
    assert [h.path for h in hits] == ["/primary"] * 3 + ["/failover"]
    assert [json.loads(h.body)["meta"]["attempt"] for h in hits] == [1, 2, 3, 1]
    assert all(telnyx_signature_valid(simulator.telnyx_public_key, h.headers, h.body) for h in hits)
    endpoint.hits.clear()
    endpoint.answers = [500, 500]
    send_once(simulator, "twilio", to="+46700000007", StatusCallback=endpoint.url + "/t")
    assert eventually(lambda: len(simulator.callbacks("twilio")) == 2)
    time.sleep(0.1)  # and no third attempt
    assert [(c.attempt, c.status) for c in simulator.callbacks("twilio")] == [(1, 500), (2, 500)]


def test_reset_and_clear(simulator: ProviderSimulator, endpoint: Endpoint) -> None:
    send_once(simulator, "twilio", StatusCallback=endpoint.url + "/t")
    assert eventually(lambda: len(simulator.callbacks()) == 2)
    simulator.clear()  # the log only
    assert simulator.received() == [] and len(simulator.callbacks()) == 2
    assert json.loads(HTTP.request("GET", simulator.url + "/_sim/messages").data)["messages"] == []
    simulator.receipts = "hold"
    send_once(simulator, "46elks", whendelivered=endpoint.url + "/e")
    assert eventually(lambda: simulator.held_receipts())
    simulator.reset()
    assert simulator.received() == [] and simulator.callbacks() == [] and simulator.held_receipts() == []
    listed = get(simulator, "/2010-04-01/Accounts/AC1/Messages.json", TWILIO_AUTH)
    assert json.loads(listed.data)["messages"] == []  # messages forgotten, the account kept


def test_requests_refused_for_their_shape(simulator: ProviderSimulator) -> None:
    no_text = post(simulator, "/v2/messages", body={"to": "+46710000001"}, headers={"Authorization": "Bearer KEY_1"})
    assert no_text.status == 422 and json.loads(no_text.data)["errors"][0]["source"] == {"pointer": "/text"}
    eleven_parts = send_once(simulator, "telnyx", text="ж" * 700)  # UCS-2: 11 parts, Telnyx sends 10 at most
    assert eleven_parts.status == 400 and "11 parts" in json.loads(eleven_parts.data)["errors"][0]["detail"]
    no_from = post(
        simulator,
        "/2010-04-01/Accounts/AC1/Messages.json",
        fields={"To": "+46710000001", "Body": "x"},
        headers=TWILIO_AUTH,
    )
    assert json.loads(no_from.data)["code"] == 21603
    assert simulator.sent() == []


def test_46elks_keeps_no_text_when_asked_not_to_log_it(simulator: ProviderSimulator) -> None:
    answer = json.loads(send_once(simulator, "46elks", text="secret", dontlog="message").data)
    assert "message" not in answer
    assert "message" not in json.loads(get(simulator, f"/a1/sms/{answer['id']}", basic("u:p")).data)


def test_the_log_over_http_and_by_method(simulator: ProviderSimulator) -> None:
    send_once(simulator, "46elks")
    get(simulator, "/a1/me", basic("u:p"))
    assert [r.method for r in simulator.received("46elks", method="GET")] == ["GET"]
    assert len(simulator.received(method="POST")) == 1
    assert HTTP.request("POST", simulator.url + "/_sim/clear").status == 200
    assert simulator.received() == []
    assert json.loads(HTTP.request("GET", simulator.url + "/_sim/messages").data) == {"messages": []}
    scripted = HTTP.request("POST", simulator.url + "/_sim/script", json={"provider": "twilio", "answers": ["nope"]})
    assert scripted.status == 400
