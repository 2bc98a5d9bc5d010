"""Email fallback: failed SMS reach the backup email through SES (moto), once, or are logged."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from devstack.handlers import load
from devstack.lambda_context import LambdaContext
from devstack.simulators import ProviderSimulator
from devstack.sqs import sqs_event, sqs_record
from sms_connector import aws, connector_store, stats
from sms_connector.sending import emails, record
from tests.conftest import Api, sent_emails
from tests.test_models import EMAIL, GUIDE_TELNYX, GUIDE_TWILIO, with_
from tests.test_sending import log_entries, make

TEAM = [
    {"to": "+46700000002", "backupEmail": "opted.out@example.com"},  # opted out: fails, has a backup
    {"to": "+46700000001"},  # invalid: fails, no backup
    {"to": "+46710000001", "backupEmail": "fine@example.com"},  # succeeds
]


def test_failed_recipients_with_backup_get_exactly_one_email(
    connectors_api: Api, pipeline: Any, sim: ProviderSimulator
) -> None:
    make(connectors_api, EMAIL)
    connector = make(connectors_api, with_(GUIDE_TELNYX, name="Boiler room", recipients=TEAM))
    pipeline.enqueue({"connectorId": connector, "message": "Boiler pressure low", "actionId": "a-1"})
    pipeline.run()
    [email] = sent_emails()
    assert email.destinations["ToAddresses"] == ["opted.out@example.com"]
    assert email.source == "alerts@example.com"
    assert "could not be delivered" in email.subject and "Boiler room" in email.subject
    assert email.body.startswith("Boiler pressure low\n")
    assert "+46 *******02" in email.body and "opted out" in email.body and "+46700000002" not in email.body
    figures = stats.read(connector)
    assert (figures["totalSent"], figures["totalFails"]) == (1, 2)
    assert (figures["fallbackEmailsSent"], figures["fallbackEmailsFailed"]) == (1, 0)
    entries = log_entries(connector)  # both failures logged, the one without backup included
    assert sorted(e["errorCode"] for e in entries) == ["40300", "40310"]


def test_a_successful_sms_sends_no_email(connectors_api: Api, pipeline: Any) -> None:
    make(connectors_api, EMAIL)
    connector = make(connectors_api, with_(GUIDE_TWILIO, recipients=[TEAM[2]]))
    pipeline.enqueue({"connectorId": connector, "message": "All good"})
    pipeline.run()
    assert sent_emails() == []


def failed_sms_with_backup(connectors_api: Api, sender: Any, *, email: dict[str, Any] = EMAIL) -> tuple[str, str]:
    """A real failed SMS (opted out) with a backup email: answers its connector and the
    fallback queue message the sender queued for it."""
    make(connectors_api, email)
    connector = make(connectors_api, with_(GUIDE_TELNYX, name="Cellar", recipients=[TEAM[0]]))
    assert sender({"connectorId": connector, "message": "Flood in cellar", "actionId": "act-1"}) == []
    sqs = boto3.client("sqs")
    url = os.environ["FALLBACK_QUEUE_URL"]
    [message] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return connector, message["Body"]


def invoke_fallback(*bodies: Any, message_ids: list[str]) -> list[str]:
    records = [sqs_record(b, message_id=m) for b, m in zip(bodies, message_ids, strict=True)]
    answer = load("FallbackFunction")(sqs_event(*records), LambdaContext("fallback", 30))
    return [f["itemIdentifier"] for f in answer["batchItemFailures"]]


def test_a_redelivered_fallback_sends_no_second_email(connectors_api: Api, sender: Any, ses_identity: str) -> None:
    connector, body = failed_sms_with_backup(connectors_api, sender)
    assert invoke_fallback(body, message_ids=["f1"]) == []
    assert invoke_fallback(body, message_ids=["f1"]) == []  # SQS redelivery
    assert invoke_fallback(body, message_ids=["f2"]) == []  # the same email queued twice
    [email] = sent_emails()
    assert email.destinations["ToAddresses"] == ["opted.out@example.com"] and "+46 *******02" in email.body
    assert "+46700000002" not in email.body
    assert stats.read(connector)["fallbackEmailsSent"] == 1


def test_a_failed_count_after_ses_accepted_sends_no_second_email(
    connectors_api: Api, sender: Any, ses_identity: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SES accepted the email, then counting it failed: the redelivery counts it, once, and
    sends nothing again."""
    from sms_connector import fallback

    connector, body = failed_sms_with_backup(connectors_api, sender)
    real = fallback.sms_record.commit

    def counting_fails(writes: Any) -> Any:
        if any(d.fallback_sent for w in writes for d in w.deltas):
            return list(writes)  # the count is not written
        return real(writes)

    monkeypatch.setattr(fallback.sms_record, "commit", counting_fails)
    assert invoke_fallback(body, message_ids=["f1"]) == ["f1"]  # comes back
    assert len(sent_emails()) == 1 and stats.read(connector)["fallbackEmailsSent"] == 0
    monkeypatch.setattr(fallback.sms_record, "commit", real)
    assert invoke_fallback(body, message_ids=["f1"]) == []
    assert invoke_fallback(body, message_ids=["f1"]) == []
    assert len(sent_emails()) == 1
    assert stats.read(connector)["fallbackEmailsSent"] == 1


def test_an_ses_rejection_is_logged_and_not_retried(connectors_api: Api, sender: Any) -> None:
    # Given an email connector whose identity the operator removed from SES since
    connector, body = failed_sms_with_backup(connectors_api, sender)
    boto3.client("sesv2").delete_email_identity(EmailIdentity="example.com")
    # When the fallback is handled / Then the record succeeds (no loop), and the failure is on the connector
    assert invoke_fallback(body, message_ids=["f1"]) == []
    assert sent_emails() == []
    email_entries = [e for e in log_entries(connector) if e["kind"] == "email"]
    [entry] = email_entries
    assert entry["errorCode"] == "MessageRejected"
    assert "o***@example.com" in entry["message"]
    figures = stats.read(connector)
    assert figures["fallbackEmailsFailed"] == 1 and "MessageRejected" in figures["lastError"]["message"]
    assert invoke_fallback(body, message_ids=["f1"]) == []  # a redelivery changes nothing
    assert stats.read(connector)["fallbackEmailsFailed"] == 1


def test_a_deleted_email_connector_is_a_logged_error(connectors_api: Api, sender: Any, ses_identity: str) -> None:
    connector, body = failed_sms_with_backup(connectors_api, sender)
    [email] = [c["id"] for c in connectors_api("GET", "/connectors", query={"type": "email"})[1]["items"]]
    # The API keeps an email connector in use (409); one gone all the same (a delete racing the
    # save of an SMS connector naming it) is a logged error, not a lost email
    assert connectors_api("DELETE", f"/connectors/{email}")[0] == 409
    connector_store.delete_partition(email)
    assert invoke_fallback(body, message_ids=["f1"]) == []
    assert log_entries(connector)[0]["errorCode"] == "no_email_connector"


def test_ses_throttling_is_retried_through_the_queue(connectors_api: Api, sender: Any, ses_identity: str) -> None:
    from sms_connector import fallback

    connector, body = failed_sms_with_backup(connectors_api, sender)
    calls = []

    class Throttled:
        status_code = 429
        headers: dict[str, str] = {}

    def throttle(**kwargs: Any) -> Any:  # answers SendEmail the way SES does when throttling
        calls.append(1)
        return Throttled(), {"Error": {"Code": "TooManyRequestsException", "Message": "Rate exceeded"}}

    ses = fallback.ses()
    ses.meta.events.register("before-call.sesv2.SendEmail", throttle)
    try:
        assert invoke_fallback(body, message_ids=["f1"]) == ["f1"]
    finally:
        ses.meta.events.unregister("before-call.sesv2.SendEmail", throttle)
    assert calls == [1]  # SQS retries it later; botocore does not
    assert sent_emails() == [] and [e for e in log_entries(connector) if e["kind"] == "email"] == []
    # When SQS brings it back and SES has recovered / Then it is sent (the failed try released its claim)
    assert invoke_fallback(body, message_ids=["f1"]) == []
    assert len(sent_emails()) == 1


@contextlib.contextmanager
def ses_fault(error: Exception, *, after_ses_took_it: bool) -> Iterator[list[str]]:
    """Make SendEmail fail with `error` (what botocore raises for a network fault) before the
    request reaches SES (moto), or after SES took the email and its answer was lost."""
    from sms_connector import fallback

    calls: list[str] = []

    def fail(**_: Any) -> None:
        calls.append("SendEmail")
        raise error

    # moto answers on the plain "before-send" event; a handler of the same event runs before or
    # after it (one of a more specific event would run first). This client only sends emails.
    events = fallback.ses().meta.events
    if after_ses_took_it:
        events.register_last("before-send", fail)
    else:
        events.register_first("before-send", fail)
    try:
        yield calls  # the SendEmail calls made while inside
    finally:
        events.unregister("before-send", fail)


def test_ses_never_reached_is_released_at_once_and_sent_once(
    connectors_api: Api, sender: Any, ses_identity: str
) -> None:
    from botocore.exceptions import EndpointConnectionError

    connector, body = failed_sms_with_backup(connectors_api, sender)
    with ses_fault(EndpointConnectionError(endpoint_url="https://email.invalid"), after_ses_took_it=False) as calls:
        assert invoke_fallback(body, message_ids=["f1"]) == ["f1"]  # comes back through SQS
    assert calls == ["SendEmail"] and sent_emails() == []  # one try, not botocore's three
    # The claim was released: the redelivery, well within the lease, sends it, once
    assert invoke_fallback(body, message_ids=["f1"]) == []
    assert invoke_fallback(body, message_ids=["f1"]) == []
    assert len(sent_emails()) == 1 and stats.read(connector)["fallbackEmailsSent"] == 1


def test_an_ses_answer_lost_is_not_resent_until_the_lease_ends_then_sent_once_more(
    connectors_api: Api, sender: Any, ses_identity: str
) -> None:
    """Our choice (fallback's docstring): the only case where the backup email may arrive twice."""
    from botocore.exceptions import ReadTimeoutError

    from sms_connector import dynamo

    connector, body = failed_sms_with_backup(connectors_api, sender)
    with ses_fault(ReadTimeoutError(endpoint_url="https://email.invalid"), after_ses_took_it=True) as calls:
        assert invoke_fallback(body, message_ids=["f1"]) == ["f1"]
    assert calls == ["SendEmail"] and len(sent_emails()) == 1  # SES took it; botocore did not send it again
    # A redelivery while the lease runs sends nothing
    assert invoke_fallback(body, message_ids=["f1"]) == ["f1"]
    assert len(sent_emails()) == 1 and stats.read(connector)["fallbackEmailsSent"] == 0
    # Once the lease has run out, the redelivery sends it again and counts it once
    sms_id = json.loads(body)["smsId"]
    dynamo.client().update_item(
        TableName=dynamo.table(),
        Key=record.key(sms_id),
        UpdateExpression="SET emailLease = :past",
        ExpressionAttributeValues={":past": {"N": "1"}},
    )
    assert invoke_fallback(body, message_ids=["f1"]) == []
    assert invoke_fallback(body, message_ids=["f1"]) == []
    assert len(sent_emails()) == 2 and stats.read(connector)["fallbackEmailsSent"] == 1


@pytest.mark.parametrize("status", [502, 503, 504])
def test_a_transient_ses_gateway_error_does_not_lose_the_backup_email(
    connectors_api: Api, sender: Any, ses_identity: str, status: int
) -> None:
    """A 502, 503 or 504 (an HTML page from a gateway in front of SES) is no rejection: the email
    is sent when SQS brings the message back (503 at once; 502 and 504 after the lease)."""
    from sms_connector import dynamo, fallback

    connector, body = failed_sms_with_backup(connectors_api, sender)
    calls: list[int] = []

    class Page:
        status_code = status
        headers = {"Content-Type": "text/html"}

    def gateway_error(**_: Any) -> Any:  # what botocore makes of a gateway's HTML page
        calls.append(status)
        return Page(), {"Error": {"Code": str(status), "Message": ""}, "ResponseMetadata": {"HTTPStatusCode": status}}

    events = fallback.ses().meta.events
    events.register("before-call.sesv2.SendEmail", gateway_error)
    try:
        assert invoke_fallback(body, message_ids=["f1"]) == ["f1"]
    finally:
        events.unregister("before-call.sesv2.SendEmail", gateway_error)
    assert calls == [status]  # one try (no botocore retry any more)
    sms_id = json.loads(body)["smsId"]
    if status != 503:  # SES may have taken it: kept until the lease runs out (here, at once)
        assert (record.read(sms_id) or {}).get("emailState") == "sending"
        dynamo.update_if(record.key(sms_id), sets={"emailLease": 1})
    # SES is back; SQS brings the message again
    assert invoke_fallback(body, message_ids=["f1"]) == []
    stored = record.read(sms_id) or {}
    figures = stats.read(connector)
    assert stored.get("emailState") == "sent", stored.get("emailState")
    assert len(sent_emails()) == 1
    assert figures["fallbackEmailsFailed"] == 0


def test_a_malformed_fallback_message_fails_alone(connectors_api: Api, sender: Any, ses_identity: str) -> None:
    _, body = failed_sms_with_backup(connectors_api, sender)
    failed = invoke_fallback("{nope", body, message_ids=["bad", "good"])
    assert failed == ["bad"] and len(sent_emails()) == 1


def test_a_message_for_an_sms_that_owes_no_email_yet_comes_back(
    connectors_api: Api, sender: Any, ses_identity: str
) -> None:
    """Queued before the SMS's state change was committed: the email waits for it."""
    _connector, body = failed_sms_with_backup(connectors_api, sender)
    message = json.loads(body)
    early = json.dumps(message | {"smsId": "0" * 32})  # an SMS whose record is not written (yet)
    boto3.client("dynamodb").put_item(
        TableName=os.environ["TABLE_NAME"],
        Item={"pk": {"S": "SMS#" + "0" * 32}, "sk": {"S": "SMS"}, "state": {"S": "CLAIMED"}},
    )
    assert invoke_fallback(early, message_ids=["e1"]) == ["e1"]
    assert sent_emails() == []


def test_every_rule_action_ends_somewhere(connectors_api: Api, pipeline: Any, sim: ProviderSimulator) -> None:
    """One action of each kind, followed to its end: SMS, email, logged failure, or DLQ."""
    make(connectors_api, EMAIL)
    ok = make(connectors_api, with_(GUIDE_TELNYX, name="ok", recipients=[{"to": "+46710000001"}]))
    backup = make(connectors_api, with_(GUIDE_TELNYX, name="backup", recipients=[TEAM[0]]))
    logged = make(connectors_api, with_(GUIDE_TELNYX, name="logged", recipients=[{"to": "+46700000001"}]))
    pipeline.enqueue({"connectorId": ok, "message": "to SMS"})
    pipeline.enqueue({"connectorId": backup, "message": "to email"})
    pipeline.enqueue({"connectorId": logged, "message": "to the log"})
    pipeline.enqueue('{"connectorId": 12')
    pipeline.run()
    assert [r.fields["text"] for r in sim.sent()] == ["to SMS"]
    assert [e.body.split("\n")[0] for e in sent_emails()] == ["to email"]
    assert [e["errorCode"] for e in log_entries(logged)] == ["40310"]
    assert pipeline.dead_letters(pipeline.send_dlq) == ['{"connectorId": 12']
    assert pipeline.dead_letters(pipeline.fallback_dlq) == []
    assert (
        boto3.client("sqs").get_queue_attributes(
            QueueUrl=pipeline.send_queue, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]["ApproximateNumberOfMessages"]
        == "0"
    )


def run_sweep() -> dict[str, Any]:
    """The 5-minute sweep, invoked as EventBridge Scheduler invokes it."""
    event = {"version": "0", "source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    answer: dict[str, Any] = load("SweepFunction")(event, LambdaContext("sweep", 60))
    return answer


def queue_down(**_: Any) -> None:
    from botocore.exceptions import EndpointConnectionError

    raise EndpointConnectionError(endpoint_url="https://sqs.invalid")


def test_a_backup_email_whose_queueing_failed_is_queued_by_the_sweep_and_sent_once(
    connectors_api: Api, pipeline: Any, sim: ProviderSimulator
) -> None:
    # Given the fallback queue is unreachable when an SMS fails
    make(connectors_api, EMAIL)
    connector = make(connectors_api, with_(GUIDE_TELNYX, name="Cellar", recipients=[TEAM[0]]))
    action = {"connectorId": connector, "message": "Flood in cellar", "actionId": "q-1"}
    sqs = aws.client("sqs")
    sqs.meta.events.register("before-call.sqs.SendMessageBatch", queue_down)
    try:
        pipeline.enqueue(action)
        pipeline.run()
    finally:
        sqs.meta.events.unregister("before-call.sqs.SendMessageBatch", queue_down)
    # Then the failure is counted and logged, and the email is owed, not lost
    assert sent_emails() == []
    figures = stats.read(connector)
    assert (figures["totalFails"], figures["fallbackEmailsSent"]) == (1, 0)
    # When the sweep runs: the email is queued, and sent once
    assert run_sweep()["emailsQueued"] == 1
    pipeline.run()
    [email] = sent_emails()
    assert email.destinations["ToAddresses"] == ["opted.out@example.com"] and "Flood in cellar" in email.body
    # And neither another sweep nor the action redriven tomorrow (a new message id) sends more
    assert run_sweep()["emailsQueued"] == 0
    pipeline.enqueue(action)
    pipeline.run()
    assert len(sent_emails()) == 1 and len(sim.received("telnyx")) == 1
    figures = stats.read(connector)
    assert (figures["totalSent"], figures["totalFails"]) == (0, 1)
    assert (figures["fallbackEmailsSent"], figures["fallbackEmailsFailed"]) == (1, 0)
    assert [e["errorCode"] for e in log_entries(connector)] == ["40300"]


def due_emails(connectors_api: Api, pipeline: Any, n: int) -> str:
    make(connectors_api, EMAIL)
    connector = make(
        connectors_api,
        with_(GUIDE_TELNYX, name="Cellar", recipients=[{"to": "+46700000002", "backupEmail": "o@example.com"}]),
    )
    sqs = aws.client("sqs")
    sqs.meta.events.register("before-call.sqs.SendMessageBatch", queue_down)
    try:
        for i in range(n):
            pipeline.enqueue({"connectorId": connector, "message": f"Flood {i}", "actionId": f"q-{i}"})
        pipeline.run()
    finally:
        sqs.meta.events.unregister("before-call.sqs.SendMessageBatch", queue_down)
    assert sent_emails() == []
    return connector


def test_more_due_emails_than_a_page_are_all_queued_once(connectors_api: Api, pipeline: Any) -> None:
    connector = due_emails(connectors_api, pipeline, 25)
    assert run_sweep()["emailsQueued"] == 25
    assert run_sweep()["emailsQueued"] == 0
    pipeline.run()
    assert len(sent_emails()) == 25
    assert stats.read(connector)["fallbackEmailsSent"] == 25


def test_two_concurrent_and_a_dying_sweep_send_each_due_email_once(
    connectors_api: Api, pipeline: Any, monkeypatch: Any
) -> None:
    connector = due_emails(connectors_api, pipeline, 12)
    real_queue, real_commit = emails.queue, record.commit
    started: list[bool] = []

    def queue_then_other_sweep(messages: Any) -> Any:
        answer = real_queue(messages)
        if not started:
            started.append(True)
            emails.queue_due()  # the schedule delivered twice
            pipeline.run()  # and the fallback quick
        return answer

    monkeypatch.setattr(emails, "queue", queue_then_other_sweep)
    emails.queue_due()
    monkeypatch.setattr(emails, "queue", real_queue)

    def dies(writes: Any) -> Any:
        raise RuntimeError("the sweep died")

    monkeypatch.setattr(record, "commit", dies)
    with pytest.raises(RuntimeError):
        emails.queue_due()
    monkeypatch.setattr(record, "commit", real_commit)
    emails.queue_due()
    emails.queue_due()
    pipeline.run()
    assert len(sent_emails()) == 12
    assert stats.read(connector)["fallbackEmailsSent"] == 12
