"""Fault injection over many rule actions: provider 5xx, 429, connection resets, timeouts and
slow answers, and the faults that take the message and lose the answer (a hang past the read
timeout, a reset, a proxy's page with a success status, a proxy's 502), at a 30 % rate, with
look-ups that fail 20 % of the time, malformed actions and an SES rejection. Afterwards every
SMS has ended as sent, failed (logged) or unknown (logged, emailed), once; the counters equal
what the simulator took; nobody got an action twice.

`make test` runs a short version; `make soak` (SOAK=1) runs a few hundred actions.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from typing import Any

import boto3
import pytest

from devstack.simulators import ProviderSimulator
from sms_connector import error_log, stats
from tests.conftest import Api, sent_emails
from tests.test_models import EMAIL, GUIDE_46ELKS, GUIDE_TELNYX, GUIDE_TWILIO, with_
from tests.test_sending import make

SOAK = os.environ.get("SOAK") == "1"
ACTIONS = 300 if SOAK else 40
TEAM = [  # last two digits differ: the log shows only those (and the country code)
    {"to": "+46710000011"},
    {"to": "+46710000012"},
    {"to": "+46700000002", "backupEmail": "stopped@example.com"},  # opted out: always fails, has a backup
]


def drain_dlq(url: str) -> list[str]:
    sqs = boto3.client("sqs")
    bodies = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return bodies
        for m in got:
            bodies.append(m["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def test_faults_lose_nothing_and_duplicate_nothing(
    connectors_api: Api, pipeline: Any, sim: ProviderSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given one connector per provider, and one whose backup emails SES will reject
    verified = make(connectors_api, EMAIL)
    unverified = make(connectors_api, with_(EMAIL, name="rejected", **{"from": "rejected@example.com"}))
    # SES refuses this sender (an SES fault: a suppressed or paused sender)
    from sms_connector import fallback

    def reject(params: Any, **_: Any) -> Any:  # `params`: the HTTP request SES would get
        if b"rejected@example.com" in bytes(params.get("body") or b""):
            return _ses_error("MessageRejected", "Email address is on the suppression list")
        return None

    fallback.ses().meta.events.register("before-call.sesv2.SendEmail", reject)  # the client that sends
    connectors = [
        make(connectors_api, with_(GUIDE_46ELKS, recipients=TEAM, emailConnectorId=verified)),
        make(connectors_api, with_(GUIDE_TELNYX, recipients=TEAM, emailConnectorId=verified)),
        make(connectors_api, with_(GUIDE_TWILIO, recipients=TEAM, emailConnectorId=unverified)),
    ]
    # A short read timeout so that "timeout" faults (no answer in time) cost seconds, not minutes.
    from sms_connector import config
    from sms_connector.providers import base

    monkeypatch.setenv("PROVIDER_READ_TIMEOUT", "1.0")
    config.reset()
    base.reset()
    sim.fault_rate = 0.3
    # Faults that leave the message untaken, and those that take it and lose the answer.
    sim.fault_kinds = (*sim.fault_kinds, "accept_then_hang", "accept_then_reset", "unreadable", "accept_then_500")
    sim.lookup_fault_rate = 0.2  # and a look-up sometimes cannot tell either
    sim.slow_seconds = 0.8 if SOAK else 0.4
    sim.timeout_seconds = 1.5
    sim.hang_seconds = 1.5
    # When many rule actions arrive, a few of them malformed
    malformed = 0
    for i in range(ACTIONS):
        if i % 20 == 7:
            pipeline.enqueue(f'{{"connectorId": "{connectors[i % 3]}", "message": ')
            malformed += 1
        else:
            pipeline.enqueue({"connectorId": connectors[i % 3], "message": f"soak {i}", "actionId": f"soak-{i}"})
    pipeline.run()
    sim.fault_rate = 0.0
    # Then every SMS ended in one outcome, once
    valid = [i for i in range(ACTIONS) if i % 20 != 7]
    taken = Counter((r.fields["text"], r.fields["to"]) for r in sim.sent())
    duplicated = sum(n - 1 for n in taken.values() if n > 1)
    failed: Counter[tuple[str, str]] = Counter()
    unknown: Counter[tuple[str, str]] = Counter()
    fallback_failed = 0
    for connector in connectors:
        entries, token = error_log.page(connector, 100, None)
        while token:
            more, token = error_log.page(connector, 100, token)
            entries += more
        for e in entries:
            if e["kind"] == "sms" and e["level"] == "error":
                failed[(e["actionId"], e["recipient"])] += 1
            elif e["kind"] == "sms" and "outcome unknown" in e["message"]:
                unknown[(e["actionId"], e["recipient"])] += 1
            elif e["kind"] == "email":
                fallback_failed += 1
    assert duplicated == 0, "a recipient got an action twice"
    assert max([*failed.values(), *unknown.values()], default=1) == 1, "a failure was logged twice"
    emails = Counter((e.destinations["ToAddresses"][0], e.body.split("\n")[0]) for e in sent_emails())
    assert max(emails.values(), default=1) == 1, "a fallback email went out twice"
    from sms_connector.masking import number as mask
    from sms_connector.sending import record

    def state(i: int, to: str) -> str:
        return str((record.read(record.sms_id(connectors[i % 3], f"soak-{i}", to)) or {}).get("state"))

    lost = []
    suppressed: Counter[str] = Counter()
    for i in valid:
        for member in TEAM:
            skipped = state(i, member["to"]) == record.SUPPRESSED  # the opted-out one, once marked
            suppressed[member["to"]] += skipped
            outcomes = [
                taken[(f"soak {i}", member["to"])] == 1 and not unknown[(f"soak-{i}", mask(member["to"]))],
                failed[(f"soak-{i}", mask(member["to"]))] == 1,
                unknown[(f"soak-{i}", mask(member["to"]))] == 1,
                skipped,
            ]
            if sum(outcomes) != 1:  # none, or more than one
                lost.append((i, member["to"], outcomes))
    assert lost == []
    assert {to for to, n in suppressed.items() if n} <= {TEAM[2]["to"]}  # only the opted-out one is skipped
    # Backups: every failed, unknown or skipped (opted-out) recipient with a backup email got
    # it, or its rejection is logged
    owed = sum(
        1
        for i in valid
        if failed[(f"soak-{i}", mask(TEAM[2]["to"]))]
        or unknown[(f"soak-{i}", mask(TEAM[2]["to"]))]
        or state(i, TEAM[2]["to"]) == record.SUPPRESSED
    )
    assert len(emails) + fallback_failed == owed
    assert fallback_failed > 0  # the SES fault was injected (the Twilio connector's sender)
    # Counters equal what the simulator took, and the failures logged
    figures = [stats.read(c) for c in connectors]
    taken_and_known = sum(1 for (text, to), n in taken.items() if not unknown[(text.replace(" ", "-"), mask(to))])
    assert sum(f["totalSent"] for f in figures) == taken_and_known
    assert sum(f["totalFails"] for f in figures) == sum(failed.values())
    assert sum(f["totalUnknown"] for f in figures) == sum(unknown.values())
    assert sum(f["totalSuppressed"] for f in figures) == sum(suppressed.values())
    assert sum(f["fallbackEmailsSent"] for f in figures) == len(emails)
    dead = drain_dlq(pipeline.send_dlq)
    assert len(dead) == malformed and drain_dlq(pipeline.fallback_dlq) == []
    faults = Counter(r.answer for r in sim.received() if r.answer != "ok" and r.fields.get("to") != TEAM[2]["to"])
    print(
        json.dumps(
            {
                "suite": "faults",
                "actions": ACTIONS,
                "malformed": malformed,
                "providerCalls": len(sim.received()),
                "faultsInjected": sum(faults.values()),
                "faultKinds": dict(sorted(faults.items())),
                "sent": sum(f["totalSent"] for f in figures),
                "failedLogged": sum(failed.values()),
                "unknown": sum(unknown.values()),
                "suppressedOptedOut": sum(suppressed.values()),
                "unknownButTaken": sum(
                    1
                    for i in valid
                    for m in TEAM
                    if unknown[(f"soak-{i}", mask(m["to"]))] and taken[(f"soak {i}", m["to"])]
                ),
                "fallbackEmails": len(emails),
                "fallbackRejected": fallback_failed,
                "deadLetters": len(dead),
                "lost": len(lost),
                "duplicated": duplicated,
            }
        )
    )


def _ses_error(code: str, message: str) -> Any:
    class Response:
        status_code = 400
        headers: dict[str, str] = {}

    return Response(), {"Error": {"Code": code, "Message": message}}


def test_a_thousand_parallel_sends_count_exactly(
    connectors_api: Api, sim: ProviderSimulator, sender: Any, atomic_aws_calls: None
) -> None:
    team = [{"to": f"+4671000{i:04d}"} for i in range(10)]
    connector = make(connectors_api, with_(GUIDE_46ELKS, recipients=team))
    workers, batches = (10, 1) if SOAK else (2, 1)  # x 10 actions x 10 recipients: 1,000 or 200 sends
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for b in range(batches):
                assert sender(*[{"connectorId": connector, "message": f"{n}-{b}-{i}"} for i in range(10)]) == []
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    expected = workers * batches * 10 * len(team)
    assert stats.read(connector)["totalSent"] == expected == len(sim.sent())
    print(json.dumps({"suite": "parallel", "workers": workers, "sends": expected, "counted": expected}))
