"""Move a dead-letter queue's messages back to their queue, keeping each rule action's identity.

    python scripts/redrive.py --stack sms-connector-dev --queue send --dry-run
    python scripts/redrive.py --stack sms-connector-dev --queue send
    python scripts/redrive.py --local --queue fallback

(`make redrive ARGS="..."` runs it.) SQS gives a moved message a new message id, and a rule
action without an `actionId` is identified by its message id: this command writes the first
message id into the body as its `actionId` (a DLQ keeps the id the message had in its queue),
so the redelivery finds the SMS records of the first attempt and texts nobody twice. Messages
that are not a JSON object (malformed actions) are left in the DLQ and listed: redriving them
would only bring them back. Fallback messages name their SMS already and move as they are.

Against AWS the queues come from the stack's outputs (credentials and region as for the AWS
CLI); with --local, from the running local stack (`make run`).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from typing import Any

QUEUES = {  # --queue -> (stack output of the DLQ, of its queue)
    "send": ("SendDeadLetterQueueUrl", "SendQueueUrl"),
    "fallback": ("FallbackDeadLetterQueueUrl", "FallbackQueueUrl"),
}


@dataclass
class Report:
    moved: list[str] = field(default_factory=list)  # the DLQ message ids moved (or, dry, to move)
    given_action_ids: int = 0  # bodies that got their first message id as actionId
    left: list[tuple[str, str]] = field(default_factory=list)  # (message id, why) left in the DLQ


def redrive(sqs: Any, dlq_url: str, queue_url: str, *, keep_identity: bool, dry_run: bool = False) -> Report:
    """Move every message of `dlq_url` to `queue_url` (or, dry, say what would move)."""
    report = Report()
    seen: set[str] = set()
    kept: list[str] = []  # receipt handles of what stays in the DLQ
    while True:
        got = sqs.receive_message(
            QueueUrl=dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=120, MessageAttributeNames=["All"]
        ).get("Messages", [])
        fresh = [m for m in got if m["MessageId"] not in seen]
        if not fresh:
            break
        for message in fresh:
            seen.add(message["MessageId"])
            body, why = _body_to_send(message, keep_identity)
            if body is None:
                report.left.append((message["MessageId"], why))
                kept.append(message["ReceiptHandle"])
                continue
            report.given_action_ids += int(body != message["Body"])
            report.moved.append(message["MessageId"])
            if dry_run:
                kept.append(message["ReceiptHandle"])
                continue
            attributes = message.get("MessageAttributes") or {}
            sqs.send_message(
                QueueUrl=queue_url, MessageBody=body, **({"MessageAttributes": attributes} if attributes else {})
            )
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
    for handle in kept:  # what stays (malformed, or everything on a dry run) is visible again at once
        sqs.change_message_visibility(QueueUrl=dlq_url, ReceiptHandle=handle, VisibilityTimeout=0)
    return report


def _body_to_send(message: dict[str, Any], keep_identity: bool) -> tuple[str | None, str]:
    body = message["Body"]
    if not keep_identity:
        return body, ""
    try:
        action = json.loads(body)
    except ValueError:
        return None, "not JSON"
    if not isinstance(action, dict):
        return None, "not a JSON object"
    if action.get("actionId"):
        return body, ""
    action["actionId"] = message["MessageId"]
    return json.dumps(action), ""


def queues_of_stack(stack: str, region: str | None, which: str) -> tuple[Any, str, str]:
    import boto3

    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in boto3.client("cloudformation", region_name=region)
        .describe_stacks(StackName=stack)["Stacks"][0]
        .get("Outputs", [])
    }
    dlq, queue = QUEUES[which]
    return boto3.client("sqs", region_name=region), outputs[dlq], outputs[queue]


def queues_of_local(which: str, port: int | None) -> tuple[Any, str, str]:
    import boto3

    from devstack.instances import find

    state = find(port)
    sqs = boto3.client(
        "sqs",
        endpoint_url=state["motoUrl"],
        region_name=state["region"],
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - moto takes any key
    )
    dlq, queue = QUEUES[which]
    key = {
        "SendDeadLetterQueueUrl": "sendDeadLetterQueueUrl",
        "FallbackDeadLetterQueueUrl": "fallbackDeadLetterQueueUrl",
        "SendQueueUrl": "sendQueueUrl",
        "FallbackQueueUrl": "fallbackQueueUrl",
    }
    return sqs, state[key[dlq]], state[key[queue]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack", help="the CloudFormation stack (e.g. sms-connector-dev)")
    where.add_argument("--local", action="store_true", help="the running local stack (make run)")
    parser.add_argument("--queue", choices=sorted(QUEUES), required=True)
    parser.add_argument("--region", help="AWS region (default: as the AWS CLI finds it)")
    parser.add_argument("--port", type=int, help="with --local: the API port of the stack (when several run)")
    parser.add_argument("--dry-run", action="store_true", help="list what would move; move nothing")
    args = parser.parse_args(argv)
    try:
        if args.local:
            sqs, dlq, queue = queues_of_local(args.queue, args.port)
        else:
            sqs, dlq, queue = queues_of_stack(args.stack, args.region, args.queue)
    except Exception as exc:  # no stack, no credentials, no local stack: say so plainly
        print(f"Cannot find the queues: {exc}", file=sys.stderr)
        return 2
    report = redrive(sqs, dlq, queue, keep_identity=args.queue == "send", dry_run=args.dry_run)
    verb = "would move" if args.dry_run else "moved"
    print(f"{verb} {len(report.moved)} message(s) from the {args.queue} DLQ to its queue", end="")
    print(f"; {report.given_action_ids} kept their first message id as actionId" if report.given_action_ids else "")
    for message_id, why in report.left:
        print(f"left in the DLQ: {message_id} ({why})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
