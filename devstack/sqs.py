"""SQS events for Lambda, built the way Lambda's event source mapping builds them."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from typing import Any


def sqs_record(
    body: Any,
    *,
    message_id: str | None = None,
    queue_arn: str = "arn:aws:sqs:eu-north-1:123456789012:q",
    receive_count: int = 1,
    receipt_handle: str | None = None,
) -> dict[str, Any]:
    text = body if isinstance(body, str) else json.dumps(body)
    now = str(int(time.time() * 1000))
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": receipt_handle or uuid.uuid4().hex,
        "body": text,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": now,
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": now,
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(text.encode()).hexdigest(),  # noqa: S324 - SQS's own checksum
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3],
    }


def sqs_event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}
