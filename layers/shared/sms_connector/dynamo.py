"""DynamoDB plumbing shared by the stores: the table, item (de)serialisation, page tokens."""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from . import aws
from .config import settings
from .errors import InvalidField

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def client() -> Any:
    return aws.client("dynamodb")


def table() -> str:
    return settings().table_name


def batch_get(keys: list[dict[str, Any]], *, consistent: bool = False) -> list[dict[str, Any]]:
    """Every item of `keys` that exists: 100 keys a call, unprocessed keys asked again."""
    found: list[dict[str, Any]] = []
    for start in range(0, len(keys), 100):
        request: dict[str, Any] = {table(): {"Keys": keys[start : start + 100], "ConsistentRead": consistent}}
        for attempt in range(20):
            answer = client().batch_get_item(RequestItems=request)
            found.extend(answer["Responses"].get(table(), []))
            request = answer.get("UnprocessedKeys") or {}
            if not request:
                break
            time.sleep(min(1.0, 0.05 * 2**attempt))  # DynamoDB's advice: back off before asking again
        else:
            raise RuntimeError("DynamoDB left keys unprocessed after 20 tries")
    return found


def batch_write(requests: list[dict[str, Any]]) -> None:
    """Write `requests` (PutRequest / DeleteRequest): 25 a call, unprocessed ones sent again."""
    for start in range(0, len(requests), 25):
        pending: dict[str, Any] = {table(): requests[start : start + 25]}
        for attempt in range(20):
            pending = client().batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            if not pending:
                break
            time.sleep(min(1.0, 0.05 * 2**attempt))
        else:
            raise RuntimeError("DynamoDB left writes unprocessed after 20 tries")


def update(
    key: dict[str, Any],
    *,
    sets: dict[str, Any] | None = None,
    adds: dict[str, Any] | None = None,
    removes: Iterable[str] = (),
    condition: str | None = None,
    condition_names: dict[str, str] | None = None,
    condition_values: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A transaction's Update item: SET `sets`, ADD `adds`, REMOVE `removes`, under `condition`
    with its own placeholders (`condition_names`, `condition_values`). Values are plain Python;
    every name and value in the update is a placeholder."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {k: _serializer.serialize(v) for k, v in (condition_values or {}).items()}
    clauses = []
    for action, prefix, between, pairs in (("SET", "s", " = ", sets), ("ADD", "a", " ", adds)):
        if pairs:
            for i, (name, value) in enumerate(pairs.items()):
                names[f"#{prefix}{i}"], values[f":{prefix}{i}"] = name, _serializer.serialize(value)
            clauses.append(f"{action} " + ", ".join(f"#{prefix}{i}{between}:{prefix}{i}" for i in range(len(pairs))))
    dropped = [name for name in dict.fromkeys(removes) if name not in (sets or {})]
    if dropped:
        for i, name in enumerate(dropped):
            names[f"#r{i}"] = name
        clauses.append("REMOVE " + ", ".join(f"#r{i}" for i in range(len(dropped))))
    body: dict[str, Any] = {"TableName": table(), "Key": key, "UpdateExpression": " ".join(clauses)}
    if condition:
        body["ConditionExpression"] = condition
        names |= {k: v for k, v in (condition_names or {}).items() if k in condition}
    if names:
        body["ExpressionAttributeNames"] = names
    if values:
        body["ExpressionAttributeValues"] = values
    return {"Update": body}


def update_if(key: dict[str, Any], **parts: Any) -> bool:
    """Run one conditional `update` (same arguments) now; False when its condition did not hold."""
    try:
        client().update_item(**update(key, **parts)["Update"])
    except client().exceptions.ConditionalCheckFailedException:
        return False
    return True


def key_of(item: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """The key attributes `names` of a typed item: where the next page starts after it."""
    return {name: item[name] for name in names}


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in values.items() if v is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _plain(_deserializer.deserialize(v)) for k, v in item.items()}


def _plain(value: Any) -> Any:
    """Whole Decimals from DynamoDB become ints (counts, epoch seconds); amounts stay Decimal."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, set):
        return {_plain(v) for v in value}
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else value
    return value


def encode_token(key: dict[str, Any] | None) -> str | None:
    """A page token that needs no encoding in a URL: base64url without its `=` padding."""
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_token(token: str | None, *, partition: dict[str, str]) -> dict[str, Any] | None:
    """Decode a page token, refusing one that is malformed or points into another partition.
    (A token with its padding, as this API gave them before, is still read.)"""
    if not token:
        return None
    try:
        unpadded = token.rstrip("=")
        key = json.loads(base64.urlsafe_b64decode(unpadded + "=" * (-len(unpadded) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidField("nextToken", "is not a token this API returned", "query") from None
    valid = isinstance(key, dict) and all(
        isinstance(v, dict) and len(v) == 1 and isinstance(v.get("S"), str) for v in key.values()
    )
    if not valid or any(key.get(name) != {"S": value} for name, value in partition.items()):
        raise InvalidField("nextToken", "is not a token this API returned", "query")
    return key
