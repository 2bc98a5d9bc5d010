"""DynamoDB access for connectors: everything about one connector lives in one partition.

| item       | pk                 | sk                  |
| connector  | CONNECTOR#{id}     | CONFIG              |
| counters   | CONNECTOR#{id}     | STATS               |
| log entry  | CONNECTOR#{id}     | LOG#{time}#{random} |

GSI `gsi1` (gsi1pk = TENANT#{tenant}, gsi1sk = {createdAt}#{id}) lists a tenant's connectors.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

from . import dynamo, ids
from .errors import NotFound

CONFIG = "CONFIG"
KNOWN_MAX = 256  # connectors remembered per environment (a few KB each)
_known: dict[str, dict[str, Any]] = {}
_known_lock = threading.Lock()


def pk(connector_id: str) -> str:
    return f"CONNECTOR#{connector_id}"


def tenant_pk(tenant_id: str) -> str:
    return f"TENANT#{tenant_id}"


def key(connector_id: str) -> dict[str, Any]:
    return {"pk": {"S": pk(connector_id)}, "sk": {"S": CONFIG}}


def _item(record: dict[str, Any]) -> dict[str, Any]:
    return dynamo.to_item(
        {
            "pk": pk(record["id"]),
            "sk": CONFIG,
            "gsi1pk": tenant_pk(record["tenantId"]),
            "gsi1sk": f"{record['createdAt']}#{record['id']}",
            **record,
        }
    )


def put_new(record: dict[str, Any]) -> None:
    item = _item(record)
    dynamo.client().put_item(TableName=dynamo.table(), Item=item, ConditionExpression="attribute_not_exists(pk)")


OPT_OUTS_AT = "optOutsAt"  # when the service last marked a recipient opted out


def replace(record: dict[str, Any], *, opt_outs_at: str | None = None) -> bool:
    """Overwrite an existing connector of the same tenant whose opt-out marks are still those
    it was read with (`opt_outs_at`); False if it is gone or a recipient was marked meanwhile."""
    item = _item(record)
    values = {":t": {"S": record["tenantId"]}}
    if opt_outs_at is None:
        marks = "attribute_not_exists(#marks)"
    else:
        marks, values[":marks"] = "#marks = :marks", {"S": opt_outs_at}
    try:
        dynamo.client().put_item(
            TableName=dynamo.table(),
            Item=item,
            ConditionExpression=f"attribute_exists(pk) AND tenantId = :t AND {marks}",
            ExpressionAttributeNames={"#marks": OPT_OUTS_AT},
            ExpressionAttributeValues=values,
        )
    except dynamo.client().exceptions.ConditionalCheckFailedException:
        return False
    return True


def get(connector_id: str) -> dict[str, Any] | None:
    item = dynamo.client().get_item(TableName=dynamo.table(), Key=key(connector_id)).get("Item")
    return _record(item) if item else None


def owned(tenant_id: str, connector_id: str) -> dict[str, Any]:
    """A tenant's stored connector, or NotFound when it is unknown or belongs to another tenant."""
    if not ids.is_connector_id(connector_id):
        raise NotFound()
    record = get(connector_id)
    if record is None or record.get("tenantId") != tenant_id:
        raise NotFound()
    return record


def get_many(connector_ids: set[str]) -> dict[str, dict[str, Any]]:
    """Read several connectors in as few calls as DynamoDB allows (100 keys a call); this
    environment remembers them (`known`)."""
    records = (_record(item) for item in dynamo.batch_get([key(i) for i in sorted(connector_ids)]))
    found = {record["id"]: record for record in records}
    with _known_lock:
        for connector_id in connector_ids:
            _known.pop(connector_id, None)  # re-inserted last: the oldest go first
            if connector_id in found:
                _known[connector_id] = copy.deepcopy(found[connector_id])
        while len(_known) > KNOWN_MAX:
            _known.pop(next(iter(_known)))
    return found


def known(connector_ids: set[str]) -> dict[str, dict[str, Any]] | None:
    """The connectors as `get_many` last read them in this environment, when it read them all;
    else None. A guess to be confirmed by reading them again, never the truth."""
    with _known_lock:
        if not all(i in _known for i in connector_ids):
            return None
        return {i: _known[i] for i in connector_ids}


def forget() -> None:
    """Forget the connectors read so far (tests switch accounts between cases)."""
    with _known_lock:
        _known.clear()


def list_for_tenant(
    tenant_id: str, *, connector_type: str | None, limit: int, start: dict[str, Any] | None
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """One page of a tenant's connectors, oldest first, and the key the next page starts after
    (None on the last page); filters by type without short pages."""
    items: list[dict[str, Any]] = []
    last: dict[str, Any] | None = start
    while True:
        query: dict[str, Any] = {
            "TableName": dynamo.table(),
            "IndexName": "gsi1",
            "KeyConditionExpression": "gsi1pk = :t",
            "ExpressionAttributeValues": {":t": {"S": tenant_pk(tenant_id)}},
            # one more than the page: DynamoDB gives a LastEvaluatedKey with a full page even
            # when nothing follows, and a next page must not be promised that is empty
            "Limit": limit + 1 - len(items),
        }
        if connector_type:
            query["FilterExpression"] = "#type = :type"
            query["ExpressionAttributeNames"] = {"#type": "type"}
            query["ExpressionAttributeValues"][":type"] = {"S": connector_type}
        if last:
            query["ExclusiveStartKey"] = last
        answer = dynamo.client().query(**query)
        items.extend(answer.get("Items", []))
        last = answer.get("LastEvaluatedKey")
        if not last or len(items) > limit:
            break
    more = len(items) > limit
    items = items[:limit]
    after = dynamo.key_of(items[-1], ("pk", "sk", "gsi1pk", "gsi1sk")) if more else None
    return [_record(i) for i in items], after


def sms_connectors_using(tenant_id: str, email_connector_id: str) -> list[dict[str, Any]]:
    """The tenant's SMS connectors whose backup emails go through this email connector (read
    from the tenant's index: a tenant has a handful of connectors, never a table scan)."""
    query: dict[str, Any] = {
        "TableName": dynamo.table(),
        "IndexName": "gsi1",
        "KeyConditionExpression": "gsi1pk = :t",
        "FilterExpression": "emailConnectorId = :e",
        "ExpressionAttributeValues": {":t": {"S": tenant_pk(tenant_id)}, ":e": {"S": email_connector_id}},
    }
    found: list[dict[str, Any]] = []
    while True:
        answer = dynamo.client().query(**query)
        found.extend(_record(i) for i in answer.get("Items", []))
        if "LastEvaluatedKey" not in answer:
            return found
        query["ExclusiveStartKey"] = answer["LastEvaluatedKey"]


def delete_partition(connector_id: str) -> None:
    """Delete the connector and everything under it (counters, log entries).

    The connector is first marked as being deleted: from then on no send, receipt or email
    can add to its counters or log (their transactions check the mark), so nothing is
    recreated after the items are gone. The CONFIG item goes last, so a failure half-way
    leaves a connector that can be deleted again."""
    try:
        dynamo.client().update_item(
            TableName=dynamo.table(),
            Key=key(connector_id),
            UpdateExpression="SET deleting = :yes",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":yes": {"BOOL": True}},
        )
    except dynamo.client().exceptions.ConditionalCheckFailedException:
        pass  # already gone: delete whatever is left under it
    keys: list[dict[str, Any]] = []
    query: dict[str, Any] = {
        "TableName": dynamo.table(),
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": pk(connector_id)}},
        "ProjectionExpression": "pk, sk",
    }
    while True:
        answer = dynamo.client().query(**query)
        keys.extend(answer.get("Items", []))
        if "LastEvaluatedKey" not in answer:
            break
        query["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
    keys.sort(key=lambda k: k["sk"]["S"] == CONFIG)
    dynamo.batch_write([{"DeleteRequest": {"Key": k}} for k in keys])


_INTERNAL = ("pk", "sk", "gsi1pk", "gsi1sk")


def _record(item: dict[str, Any]) -> dict[str, Any]:
    values = dynamo.from_item(item)
    for name in _INTERNAL:
        values.pop(name, None)
    return values
