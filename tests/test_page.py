"""The control panel in a real browser (Debian's Chromium through Playwright), against the local stack.

Each test gets a tenant of its own, so what it creates and deletes touches nobody else. Routes the
service does not have yet (preview, verify, receipts, limits, opt-outs, the month's chart) are
played by Playwright's request interception, in the shapes DESIGN.md gives them.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3

from devstack import auth
from devstack.browser import CHROMIUM, CHROMIUM_FLAGS
from tests.conftest import Local

pytestmark = pytest.mark.e2e

SECRETS = ("s3cret-elks-pw", "demo-password", "demo-token", "KEY_demo")
ELKS = {"username": "demo-user", "password": "demo-password"}


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


class Panel:
    """One tenant, its token, and a browser tab on the control panel."""

    def __init__(self, local: Local, page: Any) -> None:
        self.local = local
        self.page = page
        self.tenant = f"page-{uuid.uuid4().hex[:10]}"
        self.token = auth.mint(self.tenant)
        self.problems: list[str] = []
        self.signed_in = False
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        # A refused request is logged by Chromium too ("Failed to load resource"); that is the
        # page working. Anything else on the console (a CSP refusal, an exception) is a fault.
        page.on(
            "console",
            lambda m: (
                m.type in ("error", "warning")
                and "Failed to load resource" not in m.text
                and self.problems.append(f"console {m.type}: {m.text}")
            ),
        )

    def open(self, route: str = "#/") -> None:
        """The page with this tenant's token, then `route` (the token stays in the tab's storage)."""
        if not self.signed_in:
            self.page.goto(f"{self.local.url}/#token={self.token}")
            self.signed_in = True
        self.page.goto(f"{self.local.url}/{route}")
        self.page.wait_for_selector("main:not([aria-busy]) h1")

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return self.local.call(method, path, body, token=self.token)

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        status, answer = self.call("POST", "/connectors", body)
        assert status == 201, answer
        return dict(answer)

    def sms(self, name: str = "Boiler room", recipients: list[str] | None = None, **extra: Any) -> dict[str, Any]:
        return self.create(
            {
                "type": "sms",
                "name": name,
                "provider": "46elks",
                "credentials": ELKS,
                "from": "DemoCo",
                "recipients": [{"to": n} for n in recipients or ["+46710000001"]],
            }
            | extra
        )

    def route_json(self, pattern: str, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.page.route(
            pattern,
            lambda route: route.fulfill(
                status=status, content_type="application/json", body=json.dumps(body), headers=headers or {}
            ),
        )


@pytest.fixture
def panel(local: Local, browser: Any) -> Iterator[Panel]:
    context = browser.new_context(viewport={"width": 1200, "height": 900}, locale="en-GB")
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield (p := Panel(local, page))
    context.close()
    assert p.problems == []


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def inputs_and_markup(page: Any) -> str:
    """Everything a script on the page could read back: the markup and every field's value."""
    values = page.evaluate("() => [...document.querySelectorAll('input, textarea, select')].map(e => e.value)")
    return page.content() + "\n".join(values)


def test_the_page_serves_with_its_security_headers(local: Local) -> None:
    answer = urllib3.PoolManager().request("GET", local.url + "/")
    assert answer.status == 200
    csp = answer.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert "frame-ancestors" in csp and "unsafe-inline" not in csp
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Referrer-Policy"] == "no-referrer"


def test_without_a_token_the_page_says_so_and_takes_a_pasted_one(panel: Panel) -> None:
    # Given the page opened with no token
    panel.page.goto(panel.local.url + "/")
    # Then it says so, with the paste field
    expect(panel.page.get_by_role("alert")).to_contain_text("No access token yet")
    # When the demo token is pasted
    panel.page.get_by_label("Access token").fill("Bearer " + panel.local.state["token"])
    panel.page.get_by_role("button", name="Use this token").click()
    # Then the demo tenant's connectors are listed
    expect(panel.page.get_by_role("link", name="Demo 46elks", exact=True)).to_be_visible()
    assert panel.page.get_by_label("Access token").count() == 0


def test_the_token_in_the_fragment_leaves_the_address_and_shows_the_demo_connectors(panel: Panel) -> None:
    # When the page is opened as `make run` prints it
    panel.page.goto(f"{panel.local.url}/#token={panel.local.state['token']}")
    # Then the demo connectors are listed with their type, provider and recipients
    table = panel.page.get_by_role("table", name="Connectors")
    for name in ("Demo 46elks", "Demo telnyx", "Demo twilio", "Demo alerts mail"):
        expect(table.get_by_role("link", name=name, exact=True)).to_be_visible()
    row = table.locator("tr", has=panel.page.get_by_role("link", name="Demo twilio", exact=True))
    expect(row).to_contain_text("Twilio")
    expect(row.locator("[data-label=Recipients]")).to_have_text("2")
    # And the token is no longer in the address or the history entry, only in this tab's storage
    assert "token" not in panel.page.url
    assert panel.page.evaluate("() => history.length") == 2  # about:blank, then the page: replaced, not pushed
    assert panel.page.evaluate("() => sessionStorage.getItem('sms-connector.token')") == panel.local.state["token"]


@pytest.mark.parametrize(
    ("token", "message"),
    [("not-a-jwt", "refused the access token"), ("expired", "Your access token expired")],
)
def test_a_refused_or_expired_token_is_explained(panel: Panel, token: str, message: str) -> None:
    if token == "expired":
        token = auth.mint(panel.tenant, ttl_seconds=-120)
    panel.page.goto(f"{panel.local.url}/#token={token}")
    expect(panel.page.get_by_role("alert")).to_contain_text(message)
    expect(panel.page.get_by_label("Access token")).to_be_focused()


def test_connectors_are_paged_with_an_encoded_next_token(panel: Panel) -> None:
    # Given seven connectors
    for i in range(7):
        panel.sms(f"Site {i}")
    asked: list[str] = []
    panel.page.on("request", lambda r: "/connectors?" in r.url and asked.append(r.url))
    panel.open()
    # When five are shown per page and the next page is asked for
    panel.page.get_by_label("Per page").select_option("5")
    expect(panel.page.locator("tbody tr")).to_have_count(5)
    panel.page.get_by_role("button", name="Next").click()
    # Then the other two are there, and the token went in the query URL-encoded
    expect(panel.page.locator("tbody tr")).to_have_count(2)
    expect(panel.page.get_by_role("button", name="Next")).to_be_disabled()
    token = re.search(r"nextToken=([^&]+)", asked[-1]).group(1)  # type: ignore[union-attr]
    assert re.fullmatch(r"[A-Za-z0-9%._~-]+", token)
    panel.page.get_by_role("button", name="Previous").click()
    expect(panel.page.locator("tbody tr")).to_have_count(5)


def test_create_an_sms_connector_the_service_first_refuses_then_saves(panel: Panel) -> None:
    panel.create({"type": "email", "name": "Alerts mail", "from": "alerts@example.com"})
    panel.open()
    page = panel.page
    page.get_by_role("link", name="Add SMS connector").click()
    # When the form is filled in, with a number the browser cannot judge but the service refuses
    page.get_by_label("Name", exact=True).fill("Cold store")
    page.get_by_label("46elks").check()
    page.get_by_label("API username").fill("demo-user")
    page.get_by_label("API password").fill("s3cret-elks-pw")
    page.get_by_label("From", exact=True).fill("ColdStore")
    rows = page.locator(".recipient-row")
    rows.nth(0).get_by_label("Phone number").fill("+46710000001")
    rows.nth(0).get_by_label("Backup email").fill("oncall@example.com")
    page.get_by_role("button", name="Add recipient").click()
    rows.nth(1).get_by_label("Phone number").fill("+4671")
    page.get_by_role("button", name="Save").click()
    # Then the service's message is shown next to the field it names, and in the summary
    second = rows.nth(1).get_by_label("Phone number")
    expect(second).to_have_attribute("aria-invalid", "true")
    expect(rows.nth(1).locator(".field-error").first).to_contain_text("length that is not possible")
    expect(page.locator(".error-summary")).to_contain_text("Recipient 2, phone number")
    page.locator(".error-summary").get_by_role("link").click()
    expect(second).to_be_focused()
    assert page.url.endswith("#/new/sms")
    # And a rule broken while typing is flagged before anything is sent
    page.get_by_label("From", exact=True).fill("1abc")
    page.get_by_label("From", exact=True).blur()
    expect(page.get_by_label("From", exact=True)).to_have_attribute("aria-invalid", "true")
    page.get_by_label("From", exact=True).fill("ColdStore")
    # When the number is corrected
    second.fill("+46710000002")
    page.get_by_role("button", name="Save").click()
    # Then the connector is created and shown, and no secret is left in the page
    expect(page.get_by_role("heading", level=1)).to_have_text("Cold store")
    expect(page.get_by_role("status").first).to_contain_text("Created Cold store")
    assert "s3cret-elks-pw" not in inputs_and_markup(page)
    expect(page.locator(".definitions")).to_contain_text("username demo-user")
    (connector,) = [c for c in panel.call("GET", "/connectors")[1]["items"] if c["type"] == "sms"]
    assert [r["to"] for r in connector["recipients"]] == ["+46710000001", "+46710000002"]


def test_an_email_connector_is_created_and_its_from_checked(panel: Panel) -> None:
    panel.open("#/new/email")
    panel.page.get_by_label("Name", exact=True).fill("Ops mail")
    panel.page.get_by_label("From address").fill("not-an-address")
    panel.page.get_by_role("button", name="Save").click()
    expect(panel.page.get_by_label("From address")).to_have_attribute("aria-invalid", "true")
    panel.page.get_by_label("From address").fill("alerts@example.com")
    panel.page.get_by_role("button", name="Save").click()
    expect(panel.page.get_by_role("heading", level=1)).to_have_text("Ops mail")


def test_test_send_shows_each_outcome_and_the_statistics_follow(panel: Panel) -> None:
    connector = panel.sms(recipients=["+46710000001", "+46700000001"])
    panel.open(f"#/connectors/{connector['id']}")
    page = panel.page
    stats = page.locator(".stats")
    expect(stats.locator("[data-figure=totalSent] dd")).to_have_text("0")
    # The message box counts as the user types
    page.get_by_label("Message").fill("Frost warning: ж")
    expect(page.locator("#test-meter")).to_contain_text("UCS-2 · 16 characters · 1 segment")
    page.get_by_label("Message").fill("Freezer 2 above -15 C")
    expect(page.locator("#test-meter")).to_contain_text("GSM-7 · 21 characters · 1 segment")
    # When a test SMS goes to all recipients
    page.get_by_role("button", name="Send test SMS").click()
    # Then each recipient's outcome is listed, and the figures follow without a reload
    outcomes = page.locator(".outcomes li")
    expect(outcomes).to_have_count(2)
    expect(outcomes.filter(has_text="+46710000001")).to_contain_text("Sent")
    expect(outcomes.filter(has_text="+46700000001")).to_contain_text("Failed")
    expect(stats.locator("[data-figure=totalSent] dd")).to_have_text("1")
    expect(stats.locator("[data-figure=totalFails] dd")).to_have_text("1")
    expect(stats.locator("[data-figure=successRate] dd")).to_have_text("50%")
    expect(stats.locator("[data-figure=lastError] dd")).to_contain_text("46elks")
    expect(page.locator(".log-table tbody tr")).to_have_count(1)
    # When one recipient alone gets a test
    page.get_by_label("Send to").select_option("+46710000001")
    page.get_by_role("button", name="Send test SMS").click()
    expect(stats.locator("[data-figure=totalSent] dd")).to_have_text("2")
    expect(outcomes).to_have_count(1)


def test_statistics_and_log_refresh_on_their_own_while_the_tab_is_open(panel: Panel) -> None:
    connector = panel.sms(recipients=["+46700000001"])
    panel.page.clock.install()
    panel.open(f"#/connectors/{connector['id']}")
    expect(panel.page.locator("[data-figure=totalFails] dd")).to_have_text("0")
    # When a send fails elsewhere (a rule action, another user) and half a minute passes
    assert panel.call("POST", f"/connectors/{connector['id']}/test", {"message": "elsewhere"})[0] == 200
    panel.page.clock.fast_forward(31_000)
    # Then the panel and the log show it without a reload
    expect(panel.page.locator("[data-figure=totalFails] dd")).to_have_text("1")
    expect(panel.page.locator(".log-table tbody tr")).to_have_count(1)


def test_the_error_log_pages_newest_first(panel: Panel) -> None:
    # Given twelve logged failures (six test sends to two failing numbers)
    connector = panel.sms(recipients=["+46700000001", "+46700000003"])
    for i in range(6):
        status, _ = panel.call("POST", f"/connectors/{connector['id']}/test", {"message": f"Failure {i}"})
        assert status == 200
    panel.open(f"#/connectors/{connector['id']}")
    rows = panel.page.locator(".log-table tbody tr")
    # Then the first page holds ten, newest first, numbers masked
    expect(rows).to_have_count(10)
    expect(rows.first.locator("[data-label=Recipient]")).to_contain_text("***")
    # When the older page is opened, then the remaining two are there, and back again
    panel.page.get_by_role("button", name="Older").click()
    expect(rows).to_have_count(2)
    expect(panel.page.get_by_role("button", name="Older")).to_be_disabled()
    panel.page.get_by_role("button", name="Newer").click()
    expect(rows).to_have_count(10)


def test_edit_keeps_the_stored_credentials(panel: Panel) -> None:
    connector = panel.sms("Pump house")
    panel.open(f"#/connectors/{connector['id']}/edit")
    page = panel.page
    # The identifier is shown as stored; the secret is blank and kept when left so
    expect(page.get_by_label("API username")).to_have_value("demo-user")
    expect(page.get_by_label("API password")).to_have_value("")
    page.get_by_label("Name", exact=True).fill("Pump house north")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Pump house north")
    # And the next send still reaches the provider with the stored password
    page.get_by_role("button", name="Send test SMS").click()
    expect(page.locator(".outcomes li")).to_contain_text("Sent")


def test_delete_asks_first_and_says_what_goes(panel: Panel) -> None:
    connector = panel.sms("Old site")
    panel.open(f"#/connectors/{connector['id']}")
    page = panel.page
    page.get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog", name="Delete connector")
    expect(dialog).to_contain_text("statistics and error log")
    expect(dialog).to_contain_text("credentials")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert panel.call("GET", f"/connectors/{connector['id']}")[0] == 200
    page.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete connector").click()
    expect(page.get_by_role("status").first).to_contain_text("Deleted Old site")
    expect(page.get_by_role("heading", level=1)).to_have_text("Connectors")
    assert panel.call("GET", f"/connectors/{connector['id']}")[0] == 404


def test_a_refused_delete_keeps_the_dialog_open_with_the_services_message(panel: Panel) -> None:
    email = panel.create({"type": "email", "name": "Shared mail", "from": "alerts@example.com"})
    # The service may refuse to delete an email connector in use (409): only DELETE is played here
    panel.page.route(
        f"**/connectors/{email['id']}",
        lambda route: (
            route.fulfill(
                status=409,
                content_type="application/json",
                body=json.dumps({"statusCode": 409, "message": "2 SMS connectors send backup emails through it"}),
            )
            if route.request.method == "DELETE"
            else route.continue_()
        ),
    )
    panel.open(f"#/connectors/{email['id']}")
    panel.page.get_by_role("button", name="Delete").click()
    panel.page.get_by_role("dialog").get_by_role("button", name="Delete connector").click()
    expect(panel.page.get_by_role("dialog")).to_contain_text("2 SMS connectors send backup emails through it")


def test_a_phone_wide_screen_needs_no_sideways_scrolling(panel: Panel) -> None:
    connector = panel.sms(recipients=["+46710000001", "+46700000001"])
    panel.call("POST", f"/connectors/{connector['id']}/test", {"message": "a long message " * 5})
    panel.page.set_viewport_size({"width": 375, "height": 800})
    for route, ready in (
        ("#/", "tbody tr"),
        (f"#/connectors/{connector['id']}", ".log-table tbody tr"),
        (f"#/connectors/{connector['id']}/edit", ".recipient-row"),
        ("#/new/sms", ".recipient-row"),
    ):
        panel.open(route)
        panel.page.wait_for_selector(ready)
        wide = panel.page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert wide <= 0, f"{route} is {wide}px too wide"


def test_newer_fields_and_routes_are_shown_when_the_service_has_them(panel: Panel) -> None:
    # Given a connector answered with the fields that come later, and the newer routes
    connector = panel.sms("Receipts site", recipients=["+46710000001", "+46700000002"])
    later = connector | {
        "receipts": True,
        "limits": {"duplicateWindowMinutes": 10, "maxPerRecipientPerHour": 5},
        "recipients": [{"to": "+46710000001"}, {"to": "+46700000002", "optedOut": True}],
    }
    put_bodies: list[Any] = []
    cid = connector["id"]

    def connector_route(route: Any) -> None:
        if route.request.method == "PUT":
            put_bodies.append(json.loads(route.request.post_data))
            route.fulfill(status=200, content_type="application/json", body=json.dumps(later))
        else:
            route.fulfill(status=200, content_type="application/json", body=json.dumps(later))

    panel.page.route(f"**/connectors/{cid}", connector_route)
    panel.route_json(
        f"**/connectors/{cid}/stats",
        {
            "totalSent": 40, "totalFails": 2, "sentThisMonth": 12, "attempts": 42, "successRate": 95.238,
            "lastSentAt": "2026-11-20T10:00:00Z", "lastFailedAt": "2026-11-19T08:00:00Z",
            "lastError": {"message": "twilio 21610: unsubscribed", "at": "2026-11-19T08:00:00Z"},
            "fallbackEmailsSent": 2, "fallbackEmailsFailed": 0, "totalUnknown": 1, "totalDelivered": 35,
            "totalUndelivered": 3, "pendingReceipts": 2, "totalNoReceipt": 0, "deliveryRate": 92.1,
            "lastDeliveredAt": "2026-11-20T10:00:05Z", "totalSuppressed": 4, "segmentsThisMonth": 14,
            "costThisMonth": [{"amount": "0.35", "currency": "USD"}, {"amount": "2.80", "currency": None}],
            "daily": [{"date": "2026-11-01", "sent": 3, "failed": 1}, {"date": "2026-11-02", "sent": 5, "failed": 0}],
        },
    )  # fmt: skip
    panel.route_json(
        "**/preview",
        {"encoding": "UCS-2", "characters": 5, "segments": 1, "tooLong": False, "ucs2Characters": ["😀"]},
    )
    panel.route_json(
        f"**/connectors/{cid}/verify", {"ok": True, "detail": "account active", "balance": 12.5, "currency": "SEK"}
    )
    panel.route_json(f"**/connectors/{cid}/test", {"statusCode": 429, "message": "limit"}, 429, {"Retry-After": "120"})
    panel.open(f"#/connectors/{cid}")
    page = panel.page
    # Then the newer figures, the month's chart, receipts, limits and the opt-out are shown
    figures = page.locator(".stats")
    expect(figures.locator("[data-figure=deliveryRate] dd")).to_have_text("92.1%")
    expect(figures.locator("[data-figure=costThisMonth] dd")).to_contain_text("0.35")
    expect(figures.locator("[data-figure=costThisMonth] dd")).to_contain_text("2.80 (account currency")
    expect(figures.locator("[data-figure=totalSuppressed] dd")).to_have_text("4")
    expect(figures.locator("svg.chart rect")).to_have_count(3)
    expect(page.locator(".definitions")).to_contain_text("Delivery receipts")
    expect(page.locator(".definitions")).to_contain_text("Repeats held for 10 min")
    # The preview route's answer is what the meter shows
    page.get_by_label("Message").fill("Hi 😀")
    expect(page.locator("#test-meter")).to_contain_text("UCS-2 because of “😀”")
    # Verify credentials answers with the balance
    page.get_by_role("button", name="Verify credentials").click()
    expect(page.locator(".inline-result")).to_contain_text(
        "46elks accepted the credentials: account active. Balance: 12.5 SEK."
    )
    # A test send over the limit says when to try again
    page.get_by_role("button", name="Send test SMS").click()
    expect(page.locator(".results")).to_contain_text("Try again at")
    expect(page.get_by_role("button", name="Send test SMS")).to_be_disabled()
    # Clearing the opt-out sends the recipient back with optedOut false, and nothing else new
    page.get_by_role("button", name="Clear opt-out").click()
    expect(page.get_by_role("status").first).to_contain_text("+46700000002 gets SMS again")
    (body,) = put_bodies
    assert body["recipients"] == [{"to": "+46710000001"}, {"to": "+46700000002", "optedOut": False}]
    assert "credentials" not in body and body["limits"] == later["limits"]


def test_routes_the_service_lacks_are_hidden_or_counted_locally(panel: Panel) -> None:
    connector = panel.sms()
    panel.open(f"#/connectors/{connector['id']}")
    page = panel.page
    # No POST /preview yet: the count is made in the page
    page.get_by_label("Message").fill("x" * 161)
    expect(page.locator("#test-meter")).to_contain_text("GSM-7 · 161 characters · 2 segments")
    # No POST .../verify yet: the button goes away when the service says so
    page.get_by_role("button", name="Verify credentials").click()
    expect(page.get_by_role("button", name="Verify credentials")).to_have_count(0)
    # The list shows whether each SMS connector asks for delivery receipts
    panel.open()
    row = page.locator("tbody tr", has_text=connector["name"]).first
    expect(row.locator("[data-label=Receipts]")).to_have_text("On")  # 46elks: always, with a public URL


def test_no_field_the_service_does_not_know_is_sent(panel: Panel) -> None:
    connector = panel.sms()
    sent: list[Any] = []
    panel.page.on("request", lambda r: r.method in ("PUT", "POST") and "/connectors" in r.url and sent.append(r))
    panel.open(f"#/connectors/{connector['id']}/edit")
    panel.page.get_by_role("button", name="Save").click()
    expect(panel.page.get_by_role("heading", level=1)).to_have_text(connector["name"])
    body = json.loads(sent[0].post_data)
    assert set(body) == {"type", "name", "provider", "from", "recipients"}  # credentials left out: kept
    assert all(set(r) == {"to"} for r in body["recipients"])


def test_verify_against_the_service_shows_the_providers_verdict(panel: Panel) -> None:
    # the real route, the 46elks simulator's demo account
    connector = panel.sms("Verified")
    panel.open(f"#/connectors/{connector['id']}")
    panel.page.get_by_role("button", name="Verify credentials").click()
    expect(panel.page.locator(".inline-result")).to_contain_text("46elks accepted the credentials")
    expect(panel.page.locator(".inline-result")).to_contain_text("SEK")
