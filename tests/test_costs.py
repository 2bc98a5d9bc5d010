"""Segments and cost per SMS, end to end: the provider's own figures (46elks `parts`/`cost`
with the account's currency, Telnyx `parts`/`cost` on the send answer, Twilio `num_segments`
on the answer and `price` read when its final receipt arrives) reach the statistics panel's
`segmentsThisMonth` and `costThisMonth`."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from devstack.apigw import http_event
from devstack.handlers import load
from devstack.lambda_context import LambdaContext
from devstack.simulators import Callback, ProviderSimulator
from sms_connector import config
from tests.conftest import Api
from tests.test_models import GUIDE_46ELKS, GUIDE_TELNYX, GUIDE_TWILIO, with_

ONE = [{"to": "+46710000001"}]
LONG = "Temperature above 30 C in room 4. " * 5  # 170 GSM characters: 2 parts


def make(api: Api, body: dict[str, Any]) -> str:
    status, created = api("POST", "/connectors", body)
    assert status == 201, created
    return str(created["id"])


def panel(stats_api: Api, connector: str) -> dict[str, Any]:
    status, figures = stats_api("GET", f"/connectors/{connector}/stats")
    assert status == 200
    return dict(figures)


def costs(figures: dict[str, Any]) -> list[tuple[Decimal, str | None]]:
    return [(Decimal(c["amount"]), c["currency"]) for c in figures["costThisMonth"]]


def test_a_46elks_send_with_a_verified_connector_costs_in_sek(
    connectors_api: Api, stats_api: Api, sim: ProviderSimulator, sender: Any
) -> None:
    connector = make(connectors_api, with_(GUIDE_46ELKS, recipients=ONE, verify=True))
    assert sender({"connectorId": connector, "message": "Door open"}) == []
    assert sender({"connectorId": connector, "message": LONG}) == []
    # 46elks charged 3500 + 7000 in 1/10000 of the account's currency, and named no currency
    assert [r.status for r in sim.sent("46elks")] == [200, 200]
    figures = panel(stats_api, connector)
    assert figures["segmentsThisMonth"] == 3
    assert costs(figures) == [(Decimal("1.05"), "SEK")]


def test_a_46elks_send_before_any_verify_counts_cost_in_the_account_currency_unnamed(
    connectors_api: Api, stats_api: Api, sim: ProviderSimulator, sender: Any
) -> None:
    connector = make(connectors_api, with_(GUIDE_46ELKS, recipients=ONE))
    assert sender({"connectorId": connector, "message": "Door open"}) == []
    assert costs(panel(stats_api, connector)) == [(Decimal("0.35"), None)]
    # Once verified, later sends are counted in the currency 46elks named
    assert connectors_api("POST", f"/connectors/{connector}/verify")[0] == 200
    assert sender({"connectorId": connector, "message": "Door closed"}) == []
    assert costs(panel(stats_api, connector)) == [(Decimal("0.35"), "SEK"), (Decimal("0.35"), None)]


def test_telnyx_cost_comes_from_the_send_answer(
    connectors_api: Api, stats_api: Api, sim: ProviderSimulator, sender: Any
) -> None:
    sim.add_telnyx_key("your_telnyx_api_key", currency="EUR")
    connector = make(connectors_api, with_(GUIDE_TELNYX, recipients=ONE))
    assert sender({"connectorId": connector, "message": "Door open"}) == []
    assert sender({"connectorId": connector, "message": LONG}) == []
    figures = panel(stats_api, connector)
    assert figures["segmentsThisMonth"] == 3
    assert costs(figures) == [(Decimal("0.0153"), "EUR")]


def deliver(callback: Callback) -> int:
    """A receipt the simulator would have posted, handed to the receipt function the way API
    Gateway would (its URL lies under PUBLIC_API_URL, which nothing listens on here)."""
    url = urlsplit(callback.url)
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    event = http_event("POST", url.path, query=query, headers=callback.headers, body=callback.body)
    answer = load("ReceiptFunction")(event, LambdaContext("receipts"))
    return int(answer["statusCode"])


def held(sim: ProviderSimulator, count: int) -> list[Callback]:
    deadline = time.monotonic() + 10
    while len(sim.held_receipts()) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return sim.held_receipts()


def test_twilio_price_arrives_with_the_final_receipt(
    connectors_api: Api, stats_api: Api, sim: ProviderSimulator, sender: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUBLIC_API_URL", "https://receipts.example.com")
    config.reset()
    sim.receipts, sim.receipt_delay = "hold", 0.05
    connector = make(connectors_api, with_(GUIDE_TWILIO, recipients=ONE))
    assert sender({"connectorId": connector, "message": LONG}) == []
    # Twilio answers the send with its segments and no price yet (providers.md 12)
    [sent] = sim.sent("twilio")
    assert sent.status == 201
    figures = panel(stats_api, connector)
    assert (figures["segmentsThisMonth"], figures["costThisMonth"], figures["pendingReceipts"]) == (2, [], 1)
    # When its receipts come: "sent" (interim), then "delivered" (final, which carries no price)
    first, final = held(sim, 2)
    assert (first.event, final.event) == ("sent", "delivered")
    assert deliver(first) == 200
    assert panel(stats_api, connector)["costThisMonth"] == []
    assert deliver(final) == 200
    # Then the price was read from the message, once, and counted
    account = f"/2010-04-01/Accounts/{GUIDE_TWILIO['credentials']['accountSid']}"
    assert [r.path for r in sim.received("twilio", method="GET")] == [f"{account}/Messages/{final.message_id}.json"]
    figures = panel(stats_api, connector)
    assert (figures["totalDelivered"], figures["pendingReceipts"]) == (1, 0)
    assert costs(figures) == [(Decimal("0.015"), "USD")]  # 2 segments at 0.0075
    # A duplicate of the final receipt changes nothing and costs no look-up
    assert deliver(final) == 200
    assert len(sim.received("twilio", method="GET")) == 1
    assert costs(panel(stats_api, connector)) == [(Decimal("0.015"), "USD")]


def test_an_sms_whose_answer_was_lost_is_priced_when_its_receipt_says_it_went(
    connectors_api: Api, stats_api: Api, sim: ProviderSimulator, sender: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twilio took the SMS, the answer was lost and no look-up could tell (UNKNOWN); its final
    receipt settles it, and Twilio billed it: the price counts like any other."""
    from sms_connector.providers import base

    monkeypatch.setenv("PUBLIC_API_URL", "https://receipts.example.com")
    monkeypatch.setenv("PROVIDER_READ_TIMEOUT", "0.3")
    config.reset()
    base.reset()
    sim.receipts, sim.receipt_delay, sim.hang_seconds = "hold", 0.05, 0.6
    connector = make(connectors_api, with_(GUIDE_TWILIO, recipients=ONE))
    sim.script("twilio", "accept_then_hang")
    sim.lookup_fault_rate = 1.0
    assert sender({"connectorId": connector, "message": "Door open"}) == []
    assert panel(stats_api, connector)["totalUnknown"] == 1
    sim.lookup_fault_rate = 0.0
    _, final = held(sim, 2)
    assert final.event == "delivered" and deliver(final) == 200
    figures = panel(stats_api, connector)
    assert (figures["totalUnknown"], figures["totalDelivered"]) == (1, 1)
    assert costs(figures) == [(Decimal("0.0075"), "USD")]
