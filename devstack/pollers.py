"""Feeds SQS queues to functions the way Lambda's event source mapping does.

Receive a batch, call the function, delete what succeeded; failed records stay invisible
until their visibility timeout ends (or `retry_delay`, shorter, for tests) and come back
with a higher receive count, until the queue's redrive policy moves them to the DLQ. A
function that raises fails the whole batch, as in Lambda.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import boto3

from .lambda_context import LambdaContext
from .sqs import sqs_event

log = logging.getLogger("devstack.pollers")


class QueuePoller:
    def __init__(
        self,
        queue_url: str,
        handler: Callable[[dict[str, Any], Any], Any],
        *,
        function_name: str,
        timeout_seconds: float,
        batch_size: int = 10,
        report_batch_item_failures: bool = True,
        retry_delay: int | None = None,
        wait_seconds: int = 1,
        region: str | None = None,
    ) -> None:
        self.queue_url = queue_url
        self.handler = handler
        self.function_name = function_name
        self.timeout_seconds = timeout_seconds
        self.batch_size = min(batch_size, 10)
        self.partial = report_batch_item_failures
        self.retry_delay = retry_delay
        self.wait_seconds = wait_seconds
        self._sqs = boto3.client("sqs", region_name=region)
        arn = self._sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        self.queue_arn = arn["Attributes"]["QueueArn"]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.invocations = 0
        self.errors = 0

    def poll_once(self, wait_seconds: int = 0) -> int:
        """One receive and invocation; answers how many records were received."""
        answer = self._sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = answer.get("Messages", [])
        if not messages:
            return 0
        records = []
        for m in messages:
            attributes = m.get("Attributes", {})
            records.append(
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": attributes,
                    "messageAttributes": m.get("MessageAttributes", {}),
                    "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.queue_arn,
                    "awsRegion": self.queue_arn.split(":")[3],
                }
            )
        failed: set[str]
        self.invocations += 1
        try:
            result = self.handler(sqs_event(*records), LambdaContext(self.function_name, self.timeout_seconds))
            items = (result or {}).get("batchItemFailures", []) if self.partial else []
            failed = {i["itemIdentifier"] for i in items}
        except Exception:
            self.errors += 1
            log.exception("%s failed; the whole batch returns to the queue", self.function_name)
            failed = {r["messageId"] for r in records}
        done = [
            {"Id": str(i), "ReceiptHandle": r["receiptHandle"]}
            for i, r in enumerate(records)
            if r["messageId"] not in failed
        ]
        if done:
            self._sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=done)
        if self.retry_delay is not None:
            for r in records:
                if r["messageId"] in failed:
                    self._sqs.change_message_visibility(
                        QueueUrl=self.queue_url, ReceiptHandle=r["receiptHandle"], VisibilityTimeout=self.retry_delay
                    )
        return len(records)

    def drain(self, max_rounds: int = 100) -> int:
        """Poll until the queue answers empty (tests); answers the records handled."""
        total = 0
        for _ in range(max_rounds):
            got = self.poll_once()
            if not got:
                return total
            total += got
        return total

    def start(self) -> QueuePoller:
        self._thread = threading.Thread(target=self._run, name=f"poll-{self.function_name}", daemon=True)
        self._thread.start()
        return self

    def stop_soon(self) -> None:
        """Ask the poller to stop after its current receive or invocation."""
        self._stop.set()

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=self.wait_seconds + 5 if timeout is None else timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once(wait_seconds=self.wait_seconds)
            except Exception:  # keep polling: a local stack should survive a hiccup
                log.exception("polling %s failed", self.queue_url)
                self._stop.wait(1)


class Schedule:
    """Invokes a scheduled function every `seconds`, as EventBridge would at its own rate."""

    def __init__(self, handler: Callable[[dict[str, Any], Any], Any], function: Any, seconds: float) -> None:
        self.handler = handler
        self.function = function
        self.seconds = seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> Any:
        event = {"version": "0", "source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
        return self.handler(event, LambdaContext(self.function.name, self.function.timeout))

    def start(self) -> Schedule:
        self._thread = threading.Thread(target=self._run, name=f"schedule-{self.function.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            try:
                self.run_once()
            except Exception:  # keep the schedule going, as EventBridge would
                log.exception("%s failed", self.function.name)
