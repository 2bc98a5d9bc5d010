"""Delivery receipts: the simulators post them for real, with real signatures, to the receipt
routes served by the local HTTP adapter; forged ones are built the way each provider's SDK
checks them, and refused."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import boto3
import pytest
import urllib3
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from devstack import auth
from devstack.api_server import ApiServer
from devstack.handlers import load
from devstack.simulators import ProviderSimulator
from sms_connector import aws, clock, config, stats
from sms_connector.receipts import deadline
from sms_connector.sending import record
from tests.conftest import Api, sent_emails
from tests.test_fallback import invoke_fallback, queue_down, run_sweep
from tests.test_models import EMAIL, GUIDE_46ELKS, GUIDE_TELNYX, GUIDE_TWILIO, with_
from tests.test_sending import log_entries, make

HTTP = urllib3.PoolManager(retries=False, timeout=10)
TEAM = [
    {"to": "+46710000001", "backupEmail": "first@example.com"},  # delivered
    {"to": "+46700000006", "backupEmail": "second@example.com"},  # taken, then undelivered
]


@pytest.fixture
def receipts(sim: ProviderSimulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The receipt routes on a real socket (the local stack's HTTP adapter), as PUBLIC_API_URL."""
    server = ApiServer({"ReceiptFunction": load("ReceiptFunction")}, auth.Authorizer(_rsa()), port=0).start()
    monkeypatch.setenv("PUBLIC_API_URL", server.url)
    config.reset()
    sim.receipt_delay = 0.05
    yield server.url
    server.stop()


def _rsa() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def guide(provider: str, sim: ProviderSimulator, **changes: Any) -> dict[str, Any]:
    body = {"46elks": GUIDE_46ELKS, "telnyx": GUIDE_TELNYX, "twilio": GUIDE_TWILIO}[provider]
    if provider == "telnyx":
        changes.setdefault("webhookPublicKey", sim.telnyx_public_key)
    return with_(body, **changes)


def wait_for(look: Any, timeout: float = 10) -> Any:
    deadline_at = time.monotonic() + timeout
    while True:
        found = look()
        if found or time.monotonic() > deadline_at:
            return found
        time.sleep(0.05)


def settled(sim: ProviderSimulator, count: int) -> bool:
    """`count` final receipts answered by our endpoint (2xx)."""
    finals = [c for c in sim.callbacks() if c.event not in ("sent", "queued") and c.status is not None]
    return len(finals) >= count and all(c.status for c in finals)


@pytest.mark.parametrize("provider", ["46elks", "telnyx", "twilio"])
def test_receipts_tell_delivered_from_undelivered_and_the_undelivered_gets_one_email(
    connectors_api: Api, pipeline: Any, sim: ProviderSimulator, receipts: str, provider: str
) -> None:
    # Given a connector asking for receipts, and an alert to two people
    make(connectors_api, EMAIL)
    status, created = connectors_api("POST", "/connectors", guide(provider, sim, recipients=TEAM))
    assert status == 201 and created["receipts"] is True
    connector = created["id"]
    pipeline.enqueue({"connectorId": connector, "message": "Pump stopped", "actionId": "r1"})
    pipeline.run()
    # While the receipts are on their way, both SMS were accepted and wait
    figures = stats.read(connector)
    assert (figures["totalSent"], figures["pendingReceipts"]) == (2, 2)
    # When the provider reports (the second number is never delivered)
    assert wait_for(lambda: settled(sim, 2))
    pipeline.run()
    # Then one is delivered, one is not, and only that one's owner gets the email, once
    figures = stats.read(connector)
    assert figures["totalDelivered"] == 1 and figures["totalUndelivered"] == 1
    assert figures["pendingReceipts"] == 0 and figures["deliveryRate"] == 50.0
    assert figures["totalSent"] == 2 and figures["successRate"] == 100.0  # accepted is still accepted
    assert figures["lastDeliveredAt"] is not None
    [email] = sent_emails()
    assert email.destinations["ToAddresses"] == ["second@example.com"] and "could not deliver" in email.body
    [entry] = log_entries(connector)
    assert entry["level"] == "error" and entry["recipient"] == "+46 *******06"
    assert entry["message"].startswith("not delivered") and "+46700000006" not in entry["message"]
    every = sim.callbacks()
    assert every and all(c.status == 200 for c in every)  # every correctly signed receipt: 2xx
    assert all(c.url.startswith(f"{receipts}/receipts/{provider}/{connector}") and "?sms=" in c.url for c in every)


@pytest.mark.parametrize("provider", ["46elks", "telnyx", "twilio"])
def test_a_message_whose_answer_was_lost_still_gets_its_receipt_once(
    connectors_api: Api, sender: Any, sim: ProviderSimulator, receipts: str, quick_timeouts: None, provider: str
) -> None:
    # Given a provider that takes the message and loses its answer; its receipt comes at once,
    # while we still wait for the answer (so it reaches us before the outcome is recorded)
    connector = make(connectors_api, guide(provider, sim, recipients=[{"to": "+46710000001"}]))
    sim.script(provider, "accept_then_hang", "ok", "ok")
    # When the SMS is settled (Telnyx's replay; the others' look-up) and the receipt is in
    assert sender({"connectorId": connector, "message": "Tank low", "actionId": "L1"}) == []
    assert wait_for(lambda: settled(sim, 1))
    # Then it is texted once, sent once, delivered once, and waits for nothing more
    assert len(sim.sent()) == 1
    figures = stats.read(connector)
    assert (figures["totalSent"], figures["totalUnknown"], figures["totalDelivered"]) == (1, 0, 1)
    assert figures["pendingReceipts"] == 0
    stored = record.read(record.sms_id(connector, "L1", "+46710000001"))
    assert stored is not None and stored["state"] == record.DELIVERED
    assert stored["messageId"] == sim.sent()[0].message_id


def _resend(
    callback: Any, *, url: str | None = None, headers: dict[str, str] | None = None, body: bytes | None = None
) -> int:
    answer = HTTP.request(
        "POST",
        url or callback.url,
        body=callback.body if body is None else body,
        headers=(callback.headers if headers is None else headers),
    )
    return answer.status


@pytest.mark.parametrize("provider", ["46elks", "telnyx", "twilio"])
def test_duplicate_late_and_out_of_order_receipts_change_nothing(
    connectors_api: Api, sender: Any, sim: ProviderSimulator, receipts: str, provider: str
) -> None:
    connector = make(connectors_api, guide(provider, sim, recipients=[{"to": "+46710000001"}]))
    assert sender({"connectorId": connector, "message": "Hi", "actionId": "d1"}) == []
    assert wait_for(lambda: settled(sim, 1))
    before = stats.read(connector)
    assert before["totalDelivered"] == 1
    # When every receipt comes again, in reverse order (the interim "sent" after the final one)
    for callback in reversed(sim.callbacks()):
        assert _resend(callback) == 200
    # Then nothing changed
    after = stats.read(connector)
    assert (after["totalDelivered"], after["totalUndelivered"], after["pendingReceipts"]) == (1, 0, 0)
    assert after["lastDeliveredAt"] == before["lastDeliveredAt"]


def twilio_signature(token: str, url: str, params: dict[str, str]) -> str:
    """As twilio-python's RequestValidator computes it."""
    data = url + "".join(k + params[k] for k in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def test_forged_twilio_receipts_are_refused_and_change_nothing(
    connectors_api: Api, sender: Any, sim: ProviderSimulator, receipts: str, log_output: Any
) -> None:
    sim.receipts = "hold"
    connector = make(connectors_api, guide("twilio", sim, recipients=[{"to": "+46710000001"}]))
    assert sender({"connectorId": connector, "message": "Hi", "actionId": "f1"}) == []
    wait_for(lambda: len(sim.held_receipts()) >= 2)
    final = next(c for c in sim.held_receipts() if c.event == "delivered")
    params = {k: v[0] for k, v in parse_qs(final.body.decode()).items()}
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    # (the simulator's own signature, as twilio-python would compute it)
    real_signature = twilio_signature("your_auth_token", final.url, params)
    assert {k.lower(): v for k, v in final.headers.items()}["x-twilio-signature"] == real_signature
    forged = {
        "no signature": form,
        "another token": form | {"X-Twilio-Signature": twilio_signature("not-the-token", final.url, params)},
        "another url": form
        | {"X-Twilio-Signature": twilio_signature("your_auth_token", final.url.replace("?", "?x=1&"), params)},
    }
    for name, headers in forged.items():
        assert _resend(final, headers=headers) == 403, name
    # a changed status under the original signature
    tampered = final.body.replace(b"MessageStatus=delivered", b"MessageStatus=undelivered")
    assert _resend(final, body=tampered) == 403
    figures = stats.read(connector)
    assert (figures["totalDelivered"], figures["totalUndelivered"], figures["pendingReceipts"]) == (0, 0, 1)
    refusals = [line for line in log_output.getvalue().splitlines() if "receipt refused" in line]
    assert len(refusals) == 4
    assert not any(real_signature in line for line in refusals)
    # The real one is taken
    sim.flush_receipts()
    assert wait_for(lambda: stats.read(connector)["totalDelivered"] == 1)


def test_forged_telnyx_receipts_are_refused_and_change_nothing(
    connectors_api: Api, sender: Any, sim: ProviderSimulator, receipts: str
) -> None:
    # Given a connector with our own key pair, so the test signs as Telnyx does
    key = Ed25519PrivateKey.generate()
    public = base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    sim.receipts = "hold"
    connector = make(connectors_api, guide("telnyx", sim, recipients=[{"to": "+46710000001"}], webhookPublicKey=public))
    assert sender({"connectorId": connector, "message": "Hi", "actionId": "t1"}) == []
    wait_for(lambda: len(sim.held_receipts()) >= 2)
    final = next(c for c in sim.held_receipts() if c.event == "delivered")

    def signed(body: bytes, when: int, signer: Ed25519PrivateKey = key) -> dict[str, str]:
        signature = base64.b64encode(signer.sign(f"{when}|".encode() + body)).decode()
        return {
            "Content-Type": "application/json",
            "telnyx-signature-ed25519": signature,
            "telnyx-timestamp": str(when),
        }

    now = int(time.time())
    # The simulator signs with its own key, which this connector does not have: refused
    assert _resend(final) == 403
    assert _resend(final, headers=signed(final.body, now, Ed25519PrivateKey.generate())) == 403  # another key
    # outside the 300 s window (by 5 s: the requests before each one take a moment)
    assert _resend(final, headers=signed(final.body, int(time.time()) - 305)) == 403
    assert _resend(final, headers=signed(final.body, int(time.time()) + 305)) == 403
    headers = signed(final.body, now)
    assert _resend(final, headers=headers, body=final.body.replace(b"delivered", b"delivery_failed", 1)) == 403
    assert stats.read(connector)["totalDelivered"] == 0
    # The same receipt, signed with the connector's key within the window: taken
    assert _resend(final, headers=signed(final.body, int(time.time()) - 295)) == 200
    assert stats.read(connector)["totalDelivered"] == 1
    # Malformed: a signed body that is not JSON is a 400; an oversized one a 413
    assert _resend(final, headers=signed(b"{nope", now), body=b"{nope") == 400
    big = b"{" + b" " * 70_000 + b"}"
    assert _resend(final, headers=signed(big, now), body=big) == 413


def test_forged_46elks_receipts_are_refused_and_the_token_follows_the_credentials(
    connectors_api: Api, sender: Any, sim: ProviderSimulator, receipts: str
) -> None:
    sim.receipts = "hold"
    connector = make(connectors_api, guide("46elks", sim, recipients=[{"to": "+46710000001"}]))
    assert sender({"connectorId": connector, "message": "Hi", "actionId": "e1"}) == []
    wait_for(lambda: len(sim.held_receipts()) >= 2)
    final = next(c for c in sim.held_receipts() if c.event == "delivered")
    token = urlsplit(final.url).path.rsplit("/", 1)[1]
    assert len(token) >= 32
    wrong = final.url.replace(token, "x" * len(token))
    assert _resend(final, url=wrong) == 403
    assert _resend(final, url=final.url.replace(f"/{token}", "")) == 404  # no token at all: no such route
    assert stats.read(connector)["totalDelivered"] == 0
    # When the credentials change, a new token is used; the old one still works for SMS sent with it
    sim.add_elks46_account("your_46elks_username", "rotated-password")
    status, _ = connectors_api(
        "PUT",
        f"/connectors/{connector}",
        guide("46elks", sim, recipients=[{"to": "+46710000001"}], credentials={"password": "rotated-password"}),
    )
    assert status == 200
    assert sender({"connectorId": connector, "message": "Again", "actionId": "e2"}) == []
    wait_for(lambda: len(sim.held_receipts()) >= 4)
    newer = [c for c in sim.held_receipts() if c.event == "delivered"][-1]
    assert urlsplit(newer.url).path.rsplit("/", 1)[1] != token
    sim.flush_receipts()
    assert wait_for(lambda: stats.read(connector)["totalDelivered"] == 2)


def test_a_receipt_for_another_connectors_sms_changes_nothing(
    connectors_api: Api, sender: Any, sim: ProviderSimulator, receipts: str
) -> None:
    # Given two Twilio connectors of one account (so one auth token signs for both)
    sim.receipts = "hold"
    mine = make(connectors_api, guide("twilio", sim, name="mine", recipients=[{"to": "+46710000001"}]))
    other = make(connectors_api, guide("twilio", sim, name="other", recipients=[{"to": "+46710000002"}]))
    assert sender({"connectorId": mine, "message": "Hi", "actionId": "o1"}) == []
    wait_for(lambda: len(sim.held_receipts()) >= 2)
    final = next(c for c in sim.held_receipts() if c.event == "delivered")
    # When its receipt is posted to the other connector's URL, correctly signed for that URL
    url = final.url.replace(mine, other)
    params = {k: v[0] for k, v in parse_qs(final.body.decode()).items()}
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": twilio_signature("your_auth_token", url, params),
    }
    # Then it is answered 200 (the provider must not retry) and changes nothing anywhere
    assert _resend(final, url=url, headers=headers) == 200
    assert stats.read(mine)["totalDelivered"] == 0 and stats.read(other)["totalDelivered"] == 0
    # A receipt naming an SMS id we never had: the same
    unknown = url.split("?")[0] + "?" + urlencode({"sms": "0" * 32})
    headers["X-Twilio-Signature"] = twilio_signature("your_auth_token", unknown, params)
    assert _resend(final, url=unknown, headers=headers) == 200


@contextlib.contextmanager
def recording_waits_for(look: Any, then: Any = None) -> Iterator[None]:
    """The sender records its outcomes only once `look()` holds (its receipt got there first),
    after running `then()` if given; the receipt route's own recording is not held."""
    real = record.commit

    def later(writes: Any) -> Any:
        if threading.current_thread() is threading.main_thread():  # the sender, not the receipt route
            assert wait_for(look)
            if then:
                then()
        return real(writes)

    record.commit = later  # type: ignore[assignment]
    try:
        yield
    finally:
        record.commit = real  # type: ignore[assignment]


def test_a_receipt_that_comes_before_the_outcome_is_recorded_is_applied_with_it(
    connectors_api: Api,
    sender: Any,
    sim: ProviderSimulator,
    receipts: str,
) -> None:
    connector = make(connectors_api, guide("twilio", sim, recipients=[{"to": "+46710000001"}]))
    # the provider is fast: its final receipt arrives before the sender records the send
    with recording_waits_for(lambda: settled(sim, 1)):
        assert sender({"connectorId": connector, "message": "Quick", "actionId": "q1"}) == []
    figures = stats.read(connector)
    assert (figures["totalSent"], figures["totalDelivered"], figures["pendingReceipts"]) == (1, 1, 0)
    stored = record.read(record.sms_id(connector, "q1", "+46710000001")) or {}
    assert stored["state"] == record.DELIVERED and "earlyReceipt" not in stored


@pytest.fixture
def later() -> Iterator[Any]:
    """The service's clock, stopped now; `later(minutes)` moves it that far past now."""
    start = datetime.now(UTC)
    moments = [start]
    clock.set_clock(lambda: moments[-1])
    yield lambda minutes: moments.append(start + timedelta(minutes=minutes))
    clock.set_clock(None)


def test_the_deadline_moves_silent_sms_to_no_receipt_once(
    connectors_api: Api, sender: Any, sim: ProviderSimulator, receipts: str, later: Any
) -> None:
    connector = make(connectors_api, guide("twilio", sim, recipients=[{"to": "+46700000007"}]))  # never final
    assert sender({"connectorId": connector, "message": "Hello?", "actionId": "n1"}) == []
    assert stats.read(connector)["pendingReceipts"] == 1
    later(119)
    assert deadline.sweep() == 0
    later(121)
    assert deadline.sweep() == 1
    assert deadline.sweep() == 0  # once
    figures = stats.read(connector)
    assert (figures["pendingReceipts"], figures["totalNoReceipt"], figures["totalDelivered"]) == (0, 1, 0)


def test_concurrent_receipts_and_sends_on_one_connector_count_exactly(
    connectors_api: Api, sender: Any, sim: ProviderSimulator, receipts: str, atomic_aws_calls: None
) -> None:
    team = [{"to": f"+4671000{i:04d}"} for i in range(4)]
    connector = make(connectors_api, guide("telnyx", sim, recipients=team))
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for b in range(3):
                bodies = [
                    {"connectorId": connector, "message": f"{n}-{b}-{i}", "actionId": f"c{n}-{b}-{i}"} for i in range(5)
                ]
                assert sender(*bodies) == []
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    total = 3 * 3 * 5 * len(team)
    assert wait_for(lambda: stats.read(connector)["totalDelivered"] == total, timeout=60)
    figures = stats.read(connector)
    assert (figures["totalSent"], figures["pendingReceipts"], figures["totalUndelivered"]) == (total, 0, 0)
    assert figures["deliveryRate"] == 100.0


def test_receipts_are_off_for_telnyx_without_its_public_key(
    connectors_api: Api, sender: Any, sim: ProviderSimulator, receipts: str
) -> None:
    status, created = connectors_api("POST", "/connectors", with_(GUIDE_TELNYX, recipients=[{"to": "+46710000001"}]))
    assert status == 201 and created["receipts"] is False and "webhookPublicKey" not in created
    assert sender({"connectorId": created["id"], "message": "Hi"}) == []
    [request] = sim.received("telnyx")
    assert "webhook_url" not in json.loads(request.body)
    assert stats.read(created["id"])["pendingReceipts"] == 0
    bad = connectors_api("POST", "/connectors", with_(GUIDE_TELNYX, webhookPublicKey="bm90IGEga2V5"))
    assert bad[0] == 422 and bad[1]["detail"][0]["field"] == "webhookPublicKey"


def test_the_receipts_api_has_no_jwt_and_every_function_that_sends_knows_its_url() -> None:
    from devstack import template

    functions = template.functions()
    receipt_routes = {(m, p) for fn in functions.values() for m, p, auth_ in fn.routes if p.startswith("/receipts/")}
    assert receipt_routes == {
        ("POST", "/receipts/twilio/{connectorId}"),
        ("POST", "/receipts/telnyx/{connectorId}"),
        ("POST", "/receipts/46elks/{connectorId}/{token}"),
    }
    assert all(not auth_ for fn in functions.values() for _, p, auth_ in fn.routes if p.startswith("/receipts/"))
    for name in ("SenderFunction", "SendApiFunction", "ReceiptFunction", "ConnectorsFunction"):
        assert "PUBLIC_API_URL" in functions[name].environment, name


def answered(sim: ProviderSimulator, status: int) -> bool:
    """A final receipt our endpoint answered with `status`."""
    return any(c.event not in ("sent", "queued") and c.status == status for c in sim.callbacks())


@contextlib.contextmanager
def fallback_queue_down() -> Iterator[None]:
    """The fallback queue cannot be reached (SendMessageBatch fails) while inside."""
    sqs = aws.client("sqs")
    sqs.meta.events.register("before-call.sqs.SendMessageBatch", queue_down)
    try:
        yield
    finally:
        sqs.meta.events.unregister("before-call.sqs.SendMessageBatch", queue_down)


def unknown_to_be(connectors_api: Api, sim: ProviderSimulator, person: dict[str, str]) -> str:
    """A 46elks connector for `person` whose next SMS ends UNKNOWN: taken, its answer lost, no
    look-up possible; its receipt held until `sim.flush_receipts()`."""
    make(connectors_api, EMAIL)
    connector = make(connectors_api, guide("46elks", sim, recipients=[person]))
    sim.receipts = "hold"
    sim.script("46elks", "accept_then_hang")
    sim.lookup_fault_rate = 1.0
    return connector


def queued_backup_email() -> str:
    """The one message on the fallback queue, taken off it."""
    sqs = boto3.client("sqs")
    url = os.environ["FALLBACK_QUEUE_URL"]
    [message] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return str(message["Body"])


def test_an_undelivered_receipt_whose_email_could_not_be_queued_gets_it_from_the_sweep_once(
    connectors_api: Api, pipeline: Any, sim: ProviderSimulator, receipts: str
) -> None:
    make(connectors_api, EMAIL)
    connector = make(connectors_api, guide("46elks", sim, recipients=[TEAM[1]]))
    # Given the fallback queue is unreachable when the "not delivered" receipt comes
    with fallback_queue_down():
        pipeline.enqueue({"connectorId": connector, "message": "Pump stopped", "actionId": "u1"})
        pipeline.run()
        assert wait_for(lambda: answered(sim, 200))
    pipeline.run()
    assert sent_emails() == []
    # When the sweep runs, the email goes, once
    assert run_sweep()["emailsQueued"] == 1
    pipeline.run()
    [email] = sent_emails()
    assert email.destinations["ToAddresses"] == ["second@example.com"]
    # And the same receipts again, or another sweep, send nothing more
    for callback in sim.callbacks():
        assert _resend(callback) == 200
    assert run_sweep()["emailsQueued"] == 0
    pipeline.run()
    assert len(sent_emails()) == 1
    figures = stats.read(connector)
    assert (figures["totalSent"], figures["totalUndelivered"], figures["pendingReceipts"]) == (1, 1, 0)
    assert figures["fallbackEmailsSent"] == 1 and len(log_entries(connector)) == 1


def test_a_receipt_whose_recording_fails_is_answered_503_and_counted_once_when_it_comes_again(
    connectors_api: Api, pipeline: Any, sim: ProviderSimulator, receipts: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    make(connectors_api, EMAIL)
    connector = make(connectors_api, guide("46elks", sim, recipients=[TEAM[1]]))
    real = record.commit
    failures = []

    def first_receipt_fails(writes: Any) -> Any:
        if threading.current_thread() is not threading.main_thread() and not failures:
            failures.append(writes)
            return list(writes)  # DynamoDB failed: nothing written
        return real(writes)

    monkeypatch.setattr(record, "commit", first_receipt_fails)
    pipeline.enqueue({"connectorId": connector, "message": "Pump stopped", "actionId": "h1"})
    pipeline.run()
    # Then the provider is told to try again, and its next attempt is taken
    assert wait_for(lambda: answered(sim, 503) and answered(sim, 200))
    pipeline.run()
    [email] = sent_emails()  # the email queued with the failed attempt waited for the record
    assert email.destinations["ToAddresses"] == ["second@example.com"]
    figures = stats.read(connector)
    assert (figures["totalSent"], figures["totalUndelivered"], figures["pendingReceipts"]) == (1, 1, 0)
    assert (figures["fallbackEmailsSent"], figures["fallbackEmailsFailed"]) == (1, 0)
    assert len(log_entries(connector)) == 1


def test_an_undelivered_receipt_before_the_outcome_is_recorded_gets_its_email_once(
    connectors_api: Api,
    sender: Any,
    pipeline: Any,
    sim: ProviderSimulator,
    receipts: str,
) -> None:
    make(connectors_api, EMAIL)
    connector = make(connectors_api, guide("twilio", sim, recipients=[TEAM[1]]))
    with recording_waits_for(lambda: answered(sim, 200)):
        assert sender({"connectorId": connector, "message": "Quick", "actionId": "q2"}) == []
    figures = stats.read(connector)
    assert (figures["totalSent"], figures["totalUndelivered"], figures["pendingReceipts"]) == (1, 1, 0)
    # The email was owed when the outcome was recorded: the sweep queues it, and it goes once
    assert run_sweep()["emailsQueued"] == 1
    pipeline.run()
    assert run_sweep()["emailsQueued"] == 0
    pipeline.run()
    [email] = sent_emails()
    assert email.destinations["ToAddresses"] == ["second@example.com"]
    assert stats.read(connector)["fallbackEmailsSent"] == 1 and len(log_entries(connector)) == 1


def test_a_receipt_after_the_deadline_changes_nothing(
    connectors_api: Api, sender: Any, sim: ProviderSimulator, receipts: str, later: Any
) -> None:
    sim.receipts = "hold"
    connector = make(connectors_api, guide("twilio", sim, recipients=[{"to": "+46710000001"}]))
    assert sender({"connectorId": connector, "message": "Hello?", "actionId": "l1"}) == []
    assert wait_for(lambda: len(sim.held_receipts()) >= 2)  # "sent", then "delivered"
    later(121)
    assert deadline.sweep() == 1
    # When the delivered receipt arrives after all
    sim.flush_receipts()
    assert wait_for(lambda: answered(sim, 200))
    figures = stats.read(connector)
    assert (figures["totalNoReceipt"], figures["totalDelivered"], figures["pendingReceipts"]) == (1, 0, 0)
    assert (record.read(record.sms_id(connector, "l1", "+46710000001")) or {})["state"] == record.NO_RECEIPT


@pytest.mark.parametrize(("to", "final"), [("+46710000001", "DELIVERED"), ("+46700000006", "UNDELIVERED")])
def test_an_early_receipt_of_an_sms_whose_outcome_stays_unknown_is_applied(
    connectors_api: Api,
    sender: Any,
    sim: ProviderSimulator,
    receipts: str,
    quick_timeouts: None,
    to: str,
    final: str,
) -> None:
    # Given 46elks takes the SMS and loses its answer, and cannot be asked about it (look-ups
    # fail): the outcome is UNKNOWN. The receipt comes while the sender still waits.
    connector = make(connectors_api, guide("46elks", sim, recipients=[{"to": to}]))
    sim.script("46elks", "accept_then_hang")
    sim.lookup_fault_rate = 1.0
    assert sender({"connectorId": connector, "message": "Tank low", "actionId": "U1"}) == []
    assert wait_for(lambda: settled(sim, 1))
    assert answered(sim, 200)  # the provider was told the receipt was taken: it never sends it again
    stored = record.read(record.sms_id(connector, "U1", to)) or {}
    figures = stats.read(connector)
    # The design's state machine: UNKNOWN --receipt--> DELIVERED | UNDELIVERED, counted once
    assert figures["totalUnknown"] == 1
    assert (figures["totalDelivered"], figures["totalUndelivered"]) == ((1, 0) if final == "DELIVERED" else (0, 1)), (
        stored.get("state"),
        stored.get("earlyReceipt"),
    )
    assert stored["state"] == final and "earlyReceipt" not in stored


def test_an_unknown_sms_whose_email_is_due_still_gets_it_after_an_undelivered_receipt(
    connectors_api: Api, pipeline: Any, sim: ProviderSimulator, receipts: str, quick_timeouts: None
) -> None:
    make(connectors_api, EMAIL)
    connector = make(connectors_api, guide("46elks", sim, recipients=[TEAM[1]]))
    # Given an SMS taken with its answer lost and no look-up possible (UNKNOWN: the email is owed),
    # and the fallback queue unreachable at that moment (the email is "due", for the sweep)
    sim.receipts = "hold"
    sim.script("46elks", "accept_then_hang")
    sim.lookup_fault_rate = 1.0
    with fallback_queue_down():
        pipeline.enqueue({"connectorId": connector, "message": "Pump stopped", "actionId": "d1"})
        pipeline.run()
    sms = record.sms_id(connector, "d1", TEAM[1]["to"])
    before = record.read(sms) or {}
    assert (before["state"], before["emailState"], before["gsi2pk"]) == ("UNKNOWN", "due", record.EMAIL_DUE)
    # When the provider's "not delivered" receipt arrives before the next sweep
    assert wait_for(lambda: len(sim.held_receipts()) >= 1)
    sim.flush_receipts()
    assert wait_for(lambda: answered(sim, 200))
    # Then the sweep still queues the owed email, and it is sent once
    swept = run_sweep()["emailsQueued"]
    pipeline.run()
    after = record.read(sms) or {}
    assert (swept, len(sent_emails())) == (1, 1), (after.get("state"), after.get("emailState"), after.get("gsi2pk"))


def test_a_receipt_racing_the_outcome_recording_is_not_lost(
    connectors_api: Api,
    sender: Any,
    pipeline: Any,
    sim: ProviderSimulator,
    receipts: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make(connectors_api, EMAIL)
    connector = make(connectors_api, guide("46elks", sim, recipients=[TEAM[1]]))  # undelivered
    read_claimed, recorded = threading.Event(), threading.Event()
    real_commit, real_change = record.commit, record.receipt_change

    def receipt_change(stored: dict[str, Any], report: record.Report) -> Any:
        # the receipt route read the record while it was still CLAIMED; the sender records the
        # outcome before the route writes (two Lambdas, interleaved between their calls)
        route = threading.current_thread() is not threading.main_thread() and report.status != "interim"
        if route and stored.get("state") == record.CLAIMED and not read_claimed.is_set():
            read_claimed.set()
            assert recorded.wait(10)
        return real_change(stored, report)

    def commit(writes: Any) -> Any:
        if threading.current_thread() is threading.main_thread() and not recorded.is_set():
            assert read_claimed.wait(10)
            try:
                return real_commit(writes)
            finally:
                recorded.set()
        return real_commit(writes)

    monkeypatch.setattr(record, "receipt_change", receipt_change)
    monkeypatch.setattr(record, "commit", commit)
    assert sender({"connectorId": connector, "message": "Pump stopped", "actionId": "r1"}) == []
    assert wait_for(lambda: settled(sim, 1))
    monkeypatch.setattr(record, "commit", real_commit)
    monkeypatch.setattr(record, "receipt_change", real_change)
    assert [c.status for c in sim.callbacks() if c.event not in ("sent", "queued")] == [200]  # never resent
    run_sweep()
    pipeline.run()
    stored = record.read(record.sms_id(connector, "r1", TEAM[1]["to"])) or {}
    figures = stats.read(connector)
    assert (figures["totalUndelivered"], figures["pendingReceipts"]) == (1, 0), stored.get("state")
    assert len(sent_emails()) == 1


def test_a_duplicate_early_receipt_is_answered_2xx(
    connectors_api: Api,
    sender: Any,
    sim: ProviderSimulator,
    receipts: str,
) -> None:
    """The provider sends the same final receipt twice (its first try timed out on its side)
    while the outcome is still being recorded: the second is a duplicate and must be a 2xx
    (DESIGN: every correctly signed receipt answers 2xx; a duplicate changes nothing)."""
    connector = make(connectors_api, guide("46elks", sim, recipients=[{"to": "+46710000001"}]))
    again: list[int] = []

    def resend_it() -> None:  # the same receipt again, still before the recording
        if not again:
            [final] = [c for c in sim.callbacks() if c.event not in ("sent", "queued")]
            again.append(_resend(final))

    # the first receipt is kept on the claim; the second comes before the recording too
    with recording_waits_for(lambda: answered(sim, 200), then=resend_it):
        assert sender({"connectorId": connector, "message": "Quick", "actionId": "e1"}) == []
    figures = stats.read(connector)
    assert (figures["totalSent"], figures["totalDelivered"]) == (1, 1)
    assert again == [200]


def test_an_unknown_sms_with_its_email_due_then_delivered_gets_no_false_email(
    connectors_api: Api, pipeline: Any, sim: ProviderSimulator, receipts: str, quick_timeouts: None
) -> None:
    """UNKNOWN with its backup email due (the queue was down), then a "delivered" receipt: the
    person has the SMS, so no "could not be delivered" email, whether swept or already queued."""
    person = {"to": "+46710000001", "backupEmail": "first@example.com"}
    connector = unknown_to_be(connectors_api, sim, person)
    with fallback_queue_down():
        pipeline.enqueue({"connectorId": connector, "message": "Pump stopped", "actionId": "k1"})
        pipeline.run()
    sms = record.sms_id(connector, "k1", person["to"])
    assert (record.read(sms) or {}).get("emailState") == "due"
    assert wait_for(lambda: len(sim.held_receipts()) >= 1)
    sim.flush_receipts()
    assert wait_for(lambda: answered(sim, 200))
    assert (record.read(sms) or {})["state"] == record.DELIVERED
    run_sweep()
    pipeline.run()
    assert sent_emails() == []
    stored = record.read(sms) or {}
    assert "gsi2pk" not in stored  # out of the sweep's index
    figures = stats.read(connector)
    assert (figures["totalUnknown"], figures["totalDelivered"], figures["fallbackEmailsSent"]) == (1, 1, 0)


def test_an_unknown_sms_whose_email_is_queued_then_delivered_gets_no_false_email(
    connectors_api: Api, sender: Any, sim: ProviderSimulator, receipts: str, quick_timeouts: None
) -> None:
    # Given an UNKNOWN SMS (answer lost, no look-up possible) whose backup email is on the queue
    person = {"to": "+46710000001", "backupEmail": "first@example.com"}
    connector = unknown_to_be(connectors_api, sim, person)
    assert sender({"connectorId": connector, "message": "Pump stopped", "actionId": "q1"}) == []
    body = queued_backup_email()
    # When the "delivered" receipt arrives before the fallback function takes the email
    sim.flush_receipts()
    assert wait_for(lambda: answered(sim, 200))
    assert invoke_fallback(body, message_ids=["f1"]) == []
    # Then no email: the person has the SMS
    assert sent_emails() == []
    stored = record.read(record.sms_id(connector, "q1", person["to"])) or {}
    assert (stored["state"], stored["emailState"]) == (record.DELIVERED, "dropped")


def test_a_delivered_receipt_between_the_fallbacks_read_and_claim_sends_no_email(
    connectors_api: Api,
    sender: Any,
    sim: ProviderSimulator,
    receipts: str,
    quick_timeouts: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sms_connector import fallback

    person = {"to": "+46710000001", "backupEmail": "first@example.com"}
    connector = unknown_to_be(connectors_api, sim, person)
    assert sender({"connectorId": connector, "message": "Pump stopped", "actionId": "q1"}) == []
    body = queued_backup_email()
    real_claim = fallback._claim

    def receipt_lands_first(sms_id: str, owner: str) -> None:
        sim.flush_receipts()  # the "delivered" receipt is recorded just after the fallback read the record
        assert wait_for(lambda: answered(sim, 200))
        real_claim(sms_id, owner)

    monkeypatch.setattr(fallback, "_claim", receipt_lands_first)
    assert invoke_fallback(body, message_ids=["f1"]) == ["f1"]  # the claim is refused
    monkeypatch.setattr(fallback, "_claim", real_claim)
    assert invoke_fallback(body, message_ids=["f1"]) == []  # the redelivery drops it
    stored = record.read(record.sms_id(connector, "q1", person["to"])) or {}
    assert (stored["state"], stored["emailState"]) == (record.DELIVERED, "dropped")
    assert sent_emails() == []
