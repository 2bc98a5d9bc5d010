"""The connector routes, called as API Gateway calls them, against moto."""

from __future__ import annotations

import json
import os
from typing import Any
from unittest.mock import ANY

import boto3
import pytest

from tests.conftest import Api
from tests.test_models import EMAIL, GUIDE_46ELKS, GUIDE_TELNYX, GUIDE_TWILIO, with_

SECRETS = {"your_46elks_password", "your_telnyx_api_key", "your_auth_token", "new-token", "new-password"}


def table_items() -> list[dict[str, Any]]:
    return boto3.client("dynamodb").scan(TableName=os.environ["TABLE_NAME"])["Items"]


def secret_of(connector_id: str) -> dict[str, Any]:
    sm = boto3.client("secretsmanager")
    return json.loads(sm.get_secret_value(SecretId=f"sms-connector/test/{connector_id}")["SecretString"])


def create(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    status, answer = api("POST", "/connectors", body)
    assert status == 201, answer
    return answer


@pytest.mark.parametrize("body", [GUIDE_46ELKS, GUIDE_TELNYX, GUIDE_TWILIO], ids=lambda b: b["provider"])
def test_create_and_read_sms_connector_keeps_secrets_in_secrets_manager(connectors_api: Api, body: dict) -> None:
    # Given an email connector for the backup addresses
    email = create(connectors_api, EMAIL)
    # When the guide's example is created
    created = create(connectors_api, body)
    # Then it is stored with its settings, linked to the email connector, secrets only in Secrets Manager
    assert created["provider"] == body["provider"] and created["from"] == body["from"]
    assert created["recipients"] == [r | {"optedOut": False} for r in body["recipients"]]
    assert created["emailConnectorId"] == email["id"]
    secret = secret_of(created["id"])
    assert {k: v for k, v in secret.items() if not k.startswith("_")} == body["credentials"]
    # 46elks signs no receipts: a random token in the receipt URL, kept with the credentials
    assert ("_receiptToken" in secret) == (body["provider"] == "46elks")
    status, read = connectors_api("GET", f"/connectors/{created['id']}")
    assert status == 200 and read == created
    shown = json.dumps([created, table_items()])
    assert not any(secret in shown for secret in SECRETS)


def test_public_identifiers_are_shown_secret_values_are_not(connectors_api: Api) -> None:
    create(connectors_api, EMAIL)
    elks = create(connectors_api, GUIDE_46ELKS)
    twilio = create(connectors_api, GUIDE_TWILIO)
    telnyx = create(connectors_api, GUIDE_TELNYX)
    assert elks["credentials"] == {"username": "your_46elks_username"}
    assert twilio["credentials"] == {"accountSid": "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"}
    assert "credentials" not in telnyx  # a Telnyx API key has no public part


def test_email_connector_round_trip(connectors_api: Api) -> None:
    created = create(connectors_api, EMAIL)
    assert created["type"] == "email" and created["from"] == "alerts@example.com"
    assert {"id", "createdAt", "updatedAt"} <= created.keys()


def test_backup_email_needs_an_email_connector(connectors_api: Api) -> None:
    status, answer = connectors_api("POST", "/connectors", GUIDE_TELNYX)
    assert status == 422
    assert answer["detail"][0]["field"] == "recipients[0].backupEmail"
    assert "email connector" in answer["message"]


def test_several_email_connectors_need_one_named(connectors_api: Api) -> None:
    first = create(connectors_api, EMAIL)
    create(connectors_api, with_(EMAIL, name="Second"))
    status, answer = connectors_api("POST", "/connectors", GUIDE_TELNYX)
    assert status == 422 and answer["detail"][0]["field"] == "emailConnectorId"
    named = create(connectors_api, with_(GUIDE_TELNYX, emailConnectorId=first["id"]))
    assert named["emailConnectorId"] == first["id"]


def test_email_connector_of_another_tenant_cannot_be_named(connectors_api: Api) -> None:
    other = create(connectors_api.as_tenant("tenant-b"), EMAIL)
    status, answer = connectors_api("POST", "/connectors", with_(GUIDE_TELNYX, emailConnectorId=other["id"]))
    assert status == 422 and answer["detail"][0]["field"] == "emailConnectorId"


def test_list_is_paginated_and_filtered_by_type(connectors_api: Api) -> None:
    create(connectors_api, EMAIL)
    ids = [create(connectors_api, with_(GUIDE_TELNYX, name=f"n{i}"))["id"] for i in range(5)]
    create(connectors_api.as_tenant("tenant-b"), EMAIL)
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        query = {"type": "sms", "limit": "2"} | ({"nextToken": token} if token else {})
        status, page = connectors_api("GET", "/connectors", query=query)
        assert status == 200
        seen += [c["id"] for c in page["items"]]
        assert all(c["type"] == "sms" for c in page["items"])
        pages += 1
        token = page["nextToken"]
        if not token:
            break
    assert seen == ids and pages == 3
    status, everything = connectors_api("GET", "/connectors")
    assert len(everything["items"]) == 6 and everything["nextToken"] is None


def test_a_forged_page_token_is_refused(connectors_api: Api) -> None:
    import base64

    forged = base64.urlsafe_b64encode(json.dumps({"gsi1pk": {"S": "TENANT#tenant-b"}}).encode()).decode()
    for token in ("not-a-token", forged):
        status, answer = connectors_api("GET", "/connectors", query={"nextToken": token})
        assert status == 422 and answer["detail"][0]["field"] == "nextToken"


def test_put_without_credentials_keeps_them_and_with_new_ones_replaces_them(connectors_api: Api) -> None:
    create(connectors_api, EMAIL)
    created = create(connectors_api, GUIDE_TWILIO)
    without = {k: v for k, v in GUIDE_TWILIO.items() if k != "credentials"}
    status, updated = connectors_api("PUT", f"/connectors/{created['id']}", with_(without, name="Renamed"))
    assert status == 200 and updated["name"] == "Renamed"
    assert secret_of(created["id"]) == GUIDE_TWILIO["credentials"]
    assert updated["createdAt"] == created["createdAt"] and updated["updatedAt"] >= created["updatedAt"]
    status, _ = connectors_api(
        "PUT", f"/connectors/{created['id']}", with_(GUIDE_TWILIO, credentials={"authToken": "new-token"})
    )
    assert status == 200
    assert secret_of(created["id"]) == {"accountSid": "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "authToken": "new-token"}


def test_put_changing_provider_needs_all_new_credentials(connectors_api: Api) -> None:
    create(connectors_api, EMAIL)
    created = create(connectors_api, GUIDE_TWILIO)
    no_creds = {k: v for k, v in GUIDE_TELNYX.items() if k != "credentials"}
    status, answer = connectors_api("PUT", f"/connectors/{created['id']}", no_creds)
    assert status == 422 and answer["detail"][0]["field"] == "credentials.apiKey"
    status, answer = connectors_api("PUT", f"/connectors/{created['id']}", GUIDE_TELNYX)
    assert status == 200 and answer["provider"] == "telnyx"
    assert secret_of(created["id"]) == {"apiKey": "your_telnyx_api_key"}


def test_put_cannot_change_the_type(connectors_api: Api) -> None:
    created = create(connectors_api, EMAIL)
    status, answer = connectors_api("PUT", f"/connectors/{created['id']}", GUIDE_46ELKS)
    assert status == 422 and answer["detail"][0]["field"] == "type"


def test_delete_removes_everything_and_schedules_the_secret(connectors_api: Api) -> None:
    create(connectors_api, EMAIL)
    created = create(connectors_api, GUIDE_46ELKS)
    status, _ = connectors_api("DELETE", f"/connectors/{created['id']}")
    assert status == 204
    assert connectors_api("GET", f"/connectors/{created['id']}")[0] == 404
    assert all(created["id"] not in json.dumps(item) for item in table_items())
    described = boto3.client("secretsmanager").describe_secret(SecretId=f"sms-connector/test/{created['id']}")
    assert "DeletedDate" in described  # scheduled, recoverable for the window
    assert connectors_api("DELETE", f"/connectors/{created['id']}")[0] == 404


def test_another_tenant_gets_404_on_every_route_and_changes_nothing(connectors_api: Api) -> None:
    create(connectors_api, EMAIL)
    created = create(connectors_api, GUIDE_46ELKS)
    intruder = connectors_api.as_tenant("tenant-b")
    path = f"/connectors/{created['id']}"
    for method, body in (
        ("GET", None),
        ("PUT", with_(GUIDE_46ELKS, recipients=[{"to": "+46710000009"}])),
        ("DELETE", None),
    ):
        status, answer = intruder(method, path, body)
        assert status == 404, (method, answer)
        assert answer == {"statusCode": 404, "message": "connector not found"}
    assert intruder("GET", "/connectors")[1]["items"] == []
    assert connectors_api("GET", path) == (200, created)
    assert secret_of(created["id"]) == GUIDE_46ELKS["credentials"] | {"_receiptToken": ANY}


def test_unknown_and_malformed_ids_are_404(connectors_api: Api) -> None:
    for connector_id in ("01UNKNOWN", "x" * 300, "a%20b", "..%2F..%2Fetc"):
        status, _ = connectors_api("GET", f"/connectors/{connector_id}")
        assert status == 404


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ("{not json", 400, None),
        ("", 422, "body"),
        ("[1, 2]", 422, "body"),
        ('"a string"', 422, "body"),
        ({"type": "fax"}, 422, "type"),
        ({"type": "sms", "provider": "sinch"}, 422, "provider"),
        (with_(GUIDE_TWILIO, credentials={"accountSid": 5, "authToken": "t"}), 422, "credentials.accountSid"),
        (with_(GUIDE_TELNYX, recipients=[{"to": 46710000001}]), 422, "recipients[0].to"),
        (with_(GUIDE_TELNYX, recipients="+46710000001"), 422, "recipients"),
    ],
)
def test_bad_bodies_get_a_4xx_naming_the_problem(connectors_api: Api, body: Any, status: int, field: str) -> None:
    got, answer = connectors_api("POST", "/connectors", body, headers={"content-type": "application/json"})
    assert got == status, answer
    assert answer["message"]
    if field:
        assert field in [d["field"] for d in answer["detail"]], answer


def test_oversized_body_is_413(connectors_api: Api) -> None:
    status, answer = connectors_api("POST", "/connectors", with_(EMAIL, name="x" * 70_000))
    assert status == 413 and "larger" in answer["message"]


def test_token_without_tenant_claim_is_403(connectors_api: Api) -> None:
    status, answer = connectors_api("GET", "/connectors", claims={"sub": "someone"})
    assert status == 403 and "tenant_id" in answer["message"]
