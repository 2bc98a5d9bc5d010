"""Connector health: credentials checked with the provider's account endpoint (POST .../verify,
and `"verify": true` on create and update), balances, and what a failed check leaves behind.
Real sockets to the provider simulator, AWS through moto."""

from __future__ import annotations

import json
import os
import socket
from typing import Any

import boto3
import pytest

from devstack.simulators import ProviderSimulator
from sms_connector import config, connector_store, stats
from sms_connector.providers import base
from tests.conftest import Api
from tests.test_models import EMAIL, GUIDE_46ELKS, GUIDE_TELNYX, GUIDE_TWILIO, with_

ONE = [{"to": "+46710000001"}]
ELKS = with_(GUIDE_46ELKS, recipients=ONE)
TELNYX = with_(GUIDE_TELNYX, recipients=ONE)
TWILIO = with_(GUIDE_TWILIO, recipients=ONE)
TWILIO_SID = GUIDE_TWILIO["credentials"]["accountSid"]
BODIES = {"46elks": ELKS, "telnyx": TELNYX, "twilio": TWILIO}


def make(api: Api, body: dict[str, Any]) -> str:
    status, created = api("POST", "/connectors", body)
    assert status == 201, created
    return str(created["id"])


def verify(api: Api, connector: str) -> tuple[int, Any]:
    return api("POST", f"/connectors/{connector}/verify")


def config_items() -> list[dict[str, Any]]:
    items = boto3.client("dynamodb").scan(TableName=os.environ["TABLE_NAME"])["Items"]
    return [i for i in items if i["sk"]["S"] == "CONFIG"]


def secrets() -> list[str]:
    return [s["Name"] for s in boto3.client("secretsmanager").list_secrets()["SecretList"]]


def secret_of(connector: str) -> dict[str, str]:
    value = boto3.client("secretsmanager").get_secret_value(SecretId=f"sms-connector/test/{connector}")
    return dict(json.loads(value["SecretString"]))


def log_entries(connector: str) -> list[dict[str, Any]]:
    from sms_connector import error_log

    return error_log.page(connector, 100, None)[0]


def short_read_timeout(monkeypatch: pytest.MonkeyPatch, seconds: float = 0.5) -> None:
    monkeypatch.setenv("PROVIDER_READ_TIMEOUT", str(seconds))
    config.reset()
    base.reset()  # the pool keeps the timeouts it was built with


def closed_port() -> str:
    """An origin on 127.0.0.1 where nothing listens: connections are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


# --- the verdicts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "balance", "currency", "paths"),
    [
        ("46elks", "200.00", "SEK", ["/a1/me"]),
        ("telnyx", "20.00", "USD", ["/v2/balance"]),
        (
            "twilio",
            "20.00",
            "USD",
            [f"/2010-04-01/Accounts/{TWILIO_SID}.json", f"/2010-04-01/Accounts/{TWILIO_SID}/Balance.json"],
        ),
    ],
)
def test_working_credentials_are_ok_with_the_balance(
    connectors_api: Api, sim: ProviderSimulator, provider: str, balance: str, currency: str, paths: list[str]
) -> None:
    connector = make(connectors_api, BODIES[provider])
    # When the user asks whether the stored credentials work
    status, answer = verify(connectors_api, connector)
    # Then the provider's free account endpoint was asked with them, and says yes
    assert status == 200
    assert answer == {"ok": True, "detail": "the credentials work", "balance": balance, "currency": currency}
    assert [(r.method, r.path) for r in sim.received(provider)] == [("GET", p) for p in paths]
    assert sim.sent() == []  # nothing billable
    assert stats.read(connector)["lastError"] is None


def test_46elks_balance_is_shown_in_its_currency_and_the_currency_is_kept(
    connectors_api: Api, sim: ProviderSimulator
) -> None:
    # 46elks amounts are in 1/10000 of the account's currency
    sim.add_elks46_account("your_46elks_username", "your_46elks_password", balance=9_670_512, currency="EUR")
    connector = make(connectors_api, ELKS)
    assert "accountCurrency" not in (connector_store.get(connector) or {})
    status, answer = verify(connectors_api, connector)
    assert status == 200 and (answer["balance"], answer["currency"]) == ("967.0512", "EUR")
    assert (connector_store.get(connector) or {})["accountCurrency"] == "EUR"


@pytest.mark.parametrize(
    ("provider", "credentials", "words"),
    [
        ("46elks", {"username": "your_46elks_username", "password": "wrong"}, "the API username or password is wrong"),
        ("telnyx", {"apiKey": "wrong"}, "the API key is wrong"),
        (
            "twilio",
            {"accountSid": TWILIO_SID, "authToken": "wrong"},
            "the Account SID or auth token is wrong, or the account is suspended or closed (Twilio 20003)",
        ),
    ],
)
def test_bad_credentials_are_named(
    connectors_api: Api, sim: ProviderSimulator, provider: str, credentials: dict[str, str], words: str
) -> None:
    connector = make(connectors_api, with_(BODIES[provider], credentials=credentials))
    status, answer = verify(connectors_api, connector)
    assert status == 200
    assert answer["ok"] is False and words in answer["detail"]
    assert answer["balance"] is None and answer["currency"] is None


@pytest.mark.parametrize(
    ("provider", "words"),
    [
        ("46elks", "the account is suspended"),
        ("telnyx", "the account is suspended"),
        ("twilio", "the account is suspended or closed"),  # Twilio answers 401 + 20003 for both
    ],
)
def test_a_suspended_account_is_said(connectors_api: Api, sim: ProviderSimulator, provider: str, words: str) -> None:
    sim.add_elks46_account("your_46elks_username", "your_46elks_password", status="suspended")
    sim.add_telnyx_key("your_telnyx_api_key", status="suspended")
    sim.add_twilio_account(TWILIO_SID, "your_auth_token", status="suspended")
    connector = make(connectors_api, BODIES[provider])
    status, answer = verify(connectors_api, connector)
    assert status == 200 and answer["ok"] is False and words in answer["detail"]


def test_a_twilio_trial_account_works_for_verified_numbers_only(connectors_api: Api, sim: ProviderSimulator) -> None:
    sim.add_twilio_account(TWILIO_SID, "your_auth_token", type="Trial", balance="15.50")
    connector = make(connectors_api, TWILIO)
    status, answer = verify(connectors_api, connector)
    assert status == 200
    assert answer == {
        "ok": True,
        "detail": "trial account: can text verified numbers only",
        "balance": "15.50",
        "currency": "USD",
    }


def test_the_twilio_auth_token_in_the_account_answer_reaches_no_answer_and_no_log(
    connectors_api: Api, sim: ProviderSimulator, log_output: Any
) -> None:
    connector = make(connectors_api, TWILIO)
    status, answer = verify(connectors_api, connector)
    # Twilio's account resource carries the auth token (the simulator's does too)
    [account] = [r for r in sim.received("twilio") if r.path.endswith(f"{TWILIO_SID}.json")]
    assert status == 200 and account.status == 200
    shown = json.dumps(answer) + log_output.getvalue() + json.dumps(config_items())
    assert "your_auth_token" not in shown
    assert "credentials checked" in log_output.getvalue()  # the log was captured


# --- money ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "words"),
    [
        ("46elks", "low balance at 46elks: 30.00 SEK left (we warn below 50.00 SEK)"),
        ("telnyx", "low balance at Telnyx: 2.00 USD left (we warn below 5.00 USD)"),
        ("twilio", "low balance at Twilio: 1.25 USD left (we warn below 5.00 USD)"),
    ],
)
def test_a_low_balance_is_a_warning_in_the_statistics_and_the_log(
    connectors_api: Api, stats_api: Api, sim: ProviderSimulator, provider: str, words: str
) -> None:
    sim.add_elks46_account("your_46elks_username", "your_46elks_password", balance=300_000)
    sim.add_telnyx_key("your_telnyx_api_key", balance="2.00")
    sim.add_twilio_account(TWILIO_SID, "your_auth_token", balance="1.25")
    connector = make(connectors_api, BODIES[provider])
    status, answer = verify(connectors_api, connector)
    # The credentials work; the answer and the statistics panel both say the money is short
    assert status == 200 and answer["ok"] is True and words in answer["detail"]
    status, figures = stats_api("GET", f"/connectors/{connector}/stats")
    assert status == 200 and words in figures["lastError"]["message"]
    [entry] = log_entries(connector)
    assert entry["level"] == "warning" and entry["errorCode"] == "low_balance" and words in entry["message"]
    assert entry["provider"] == provider and entry["recipient"] is None


def test_telnyx_credit_limit_counts_as_money_left(connectors_api: Api, sim: ProviderSimulator) -> None:
    sim.add_telnyx_key("your_telnyx_api_key", balance="-5.00", credit_limit="100.00")
    connector = make(connectors_api, TELNYX)
    status, answer = verify(connectors_api, connector)
    assert status == 200 and answer["ok"] is True and answer["detail"] == "the credentials work"
    assert (answer["balance"], answer["currency"]) == ("-5.00", "USD")
    assert stats.read(connector)["lastError"] is None


def test_an_empty_balance_is_warned_about_in_any_currency(connectors_api: Api, sim: ProviderSimulator) -> None:
    sim.add_twilio_account(TWILIO_SID, "your_auth_token", balance="0.00", currency="JPY")
    connector = make(connectors_api, TWILIO)
    status, answer = verify(connectors_api, connector)
    assert status == 200 and answer["ok"] is True
    assert "no credit left at Twilio (0.00 JPY): SMS will fail until the account is topped up" in answer["detail"]
    assert "no credit left" in stats.read(connector)["lastError"]["message"]


def test_a_clean_verify_does_not_erase_a_real_error(connectors_api: Api, sim: ProviderSimulator, sender: Any) -> None:
    connector = make(connectors_api, with_(TWILIO, recipients=[{"to": "+46700000001"}]))  # an invalid number
    assert sender({"connectorId": connector, "message": "Alarm"}) == []
    error = stats.read(connector)["lastError"]
    assert error and "21211" in error["message"]
    status, answer = verify(connectors_api, connector)
    assert status == 200 and answer["ok"] is True
    assert stats.read(connector)["lastError"] == error


# --- when the provider cannot be asked --------------------------------------------------------


def test_a_provider_that_does_not_answer_is_a_503(
    connectors_api: Api, sim: ProviderSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    connector = make(connectors_api, TELNYX)
    short_read_timeout(monkeypatch)
    sim.latency = 3  # every answer comes after the client stopped waiting
    status, answer = verify(connectors_api, connector)
    assert status == 503
    assert answer["message"].startswith("Telnyx could not check the credentials: the request was sent but no answer")
    assert stats.read(connector)["lastError"] is None  # no verdict, nothing recorded


def test_a_provider_that_refuses_connections_is_a_503(
    connectors_api: Api, sim: ProviderSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    connector = make(connectors_api, ELKS)
    monkeypatch.setenv("ELKS46_API_URL", closed_port())
    config.reset()
    status, answer = verify(connectors_api, connector)
    assert status == 503 and "46elks could not check the credentials: could not connect" in answer["message"]
    assert "accountCurrency" not in (connector_store.get(connector) or {})


def test_a_provider_failing_with_5xx_is_a_503(connectors_api: Api, sim: ProviderSimulator) -> None:
    connector = make(connectors_api, TWILIO)
    sim.lookup_fault_rate = 1.0  # every GET answered by a proxy's 503 page
    status, answer = verify(connectors_api, connector)
    assert status == 503 and "Twilio could not check the credentials: it answered 503" in answer["message"]


def test_verify_is_for_a_tenants_own_sms_connectors(connectors_api: Api, sim: ProviderSimulator) -> None:
    email = make(connectors_api, EMAIL)
    status, answer = verify(connectors_api, email)
    assert status == 422 and answer["detail"][0]["field"] == "connectorId"
    connector = make(connectors_api, ELKS)
    assert verify(connectors_api.as_tenant("tenant-b"), connector)[0] == 404
    assert verify(connectors_api, "01NOSUCHCONNECTOR")[0] == 404
    assert sim.received() == []


# --- "verify": true on create and update --------------------------------------------------------


@pytest.mark.parametrize("provider", ["46elks", "telnyx", "twilio"])
def test_create_with_verify_refuses_rejected_credentials_and_saves_nothing(
    connectors_api: Api, sim: ProviderSimulator, provider: str
) -> None:
    wrong = {"46elks": {"password": "wrong"}, "telnyx": {"apiKey": "wrong"}, "twilio": {"authToken": "wrong"}}
    body = BODIES[provider]
    credentials = body["credentials"] | wrong[provider]
    status, answer = connectors_api("POST", "/connectors", with_(body, credentials=credentials, verify=True))
    assert status == 422
    [problem] = answer["detail"]
    assert problem["field"] == "credentials"
    assert problem["msg"].startswith(f"rejected by {'46elks' if provider == '46elks' else provider.capitalize()}: ")
    assert config_items() == [] and secrets() == []


def test_create_with_verify_when_the_provider_is_unreachable_is_a_503_and_saves_nothing(
    connectors_api: Api, sim: ProviderSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_API_URL", closed_port())
    config.reset()
    status, answer = connectors_api("POST", "/connectors", with_(TWILIO, verify=True))
    assert status == 503 and answer["message"].endswith("nothing was saved, try again shortly")
    assert config_items() == [] and secrets() == []


def test_create_with_verify_saves_accepted_credentials_and_the_46elks_currency(
    connectors_api: Api, sim: ProviderSimulator
) -> None:
    status, created = connectors_api("POST", "/connectors", with_(ELKS, verify=True))
    assert status == 201 and "verify" not in created
    assert [r.path for r in sim.received("46elks")] == ["/a1/me"]
    assert (connector_store.get(created["id"]) or {})["accountCurrency"] == "SEK"
    # without "verify", nobody is asked
    make(connectors_api, TELNYX)
    assert sim.received("telnyx") == []


def test_create_with_verify_and_a_low_balance_saves_and_warns(connectors_api: Api, sim: ProviderSimulator) -> None:
    sim.add_telnyx_key("your_telnyx_api_key", balance="1.00")
    connector = make(connectors_api, with_(TELNYX, verify=True))
    assert "low balance at Telnyx" in stats.read(connector)["lastError"]["message"]


def test_update_with_verify_refuses_rejected_credentials_and_changes_nothing(
    connectors_api: Api, sim: ProviderSimulator
) -> None:
    connector = make(connectors_api, TWILIO)
    before, secret = connectors_api("GET", f"/connectors/{connector}")[1], secret_of(connector)
    change = with_(TWILIO, name="Renamed", credentials={"authToken": "wrong"}, verify=True)
    status, answer = connectors_api("PUT", f"/connectors/{connector}", change)
    assert status == 422 and answer["detail"][0]["field"] == "credentials"
    assert "Twilio 20003" in answer["detail"][0]["msg"]
    assert connectors_api("GET", f"/connectors/{connector}")[1] == before
    assert secret_of(connector) == secret
    # the stored credentials are checked too when the PUT changes none
    sim.add_twilio_account(TWILIO_SID, "rotated-elsewhere")
    status, answer = connectors_api("PUT", f"/connectors/{connector}", with_(TWILIO, name="Renamed", verify=True))
    assert status == 422 and connectors_api("GET", f"/connectors/{connector}")[1] == before


def test_update_with_verify_when_the_provider_is_unreachable_is_a_503_and_changes_nothing(
    connectors_api: Api, sim: ProviderSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    connector = make(connectors_api, TELNYX)
    before, secret = connectors_api("GET", f"/connectors/{connector}")[1], secret_of(connector)
    short_read_timeout(monkeypatch)
    sim.latency = 3
    change = with_(TELNYX, name="Renamed", credentials={"apiKey": "another_key"}, verify=True)
    status, answer = connectors_api("PUT", f"/connectors/{connector}", change)
    assert status == 503 and "nothing was saved" in answer["message"]
    assert connectors_api("GET", f"/connectors/{connector}")[1] == before
    assert secret_of(connector) == secret


def test_update_with_verify_saves_accepted_credentials(connectors_api: Api, sim: ProviderSimulator) -> None:
    connector = make(connectors_api, TWILIO)
    sim.add_twilio_account(TWILIO_SID, "new-token")
    change = with_(TWILIO, credentials={"authToken": "new-token"}, verify=True)
    status, _ = connectors_api("PUT", f"/connectors/{connector}", change)
    assert status == 200 and secret_of(connector)["authToken"] == "new-token"


def test_the_46elks_currency_stays_while_the_account_does(connectors_api: Api, sim: ProviderSimulator) -> None:
    connector = make(connectors_api, with_(ELKS, verify=True))
    # A PUT of other settings keeps it
    assert connectors_api("PUT", f"/connectors/{connector}", with_(ELKS, name="Renamed"))[0] == 200
    assert (connector_store.get(connector) or {})["accountCurrency"] == "SEK"
    # Another 46elks account (another username) may bill in another currency: it is forgotten
    other = {"username": "another_user", "password": "another_password"}
    assert connectors_api("PUT", f"/connectors/{connector}", with_(ELKS, credentials=other))[0] == 200
    assert "accountCurrency" not in (connector_store.get(connector) or {})


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_verify_must_be_true_or_false(connectors_api: Api, value: Any) -> None:
    status, answer = connectors_api("POST", "/connectors", with_(ELKS, verify=value))
    assert status == 422 and answer["detail"][0]["field"] == "verify"


def test_an_email_connector_has_nothing_to_verify(connectors_api: Api) -> None:
    status, answer = connectors_api("POST", "/connectors", with_(EMAIL, verify=True))
    assert status == 422 and answer["detail"][0]["field"] == "verify"
