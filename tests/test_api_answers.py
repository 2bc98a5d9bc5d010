"""What a newcomer sees of the API (issue 17): one shape and format for every error, 405 with
Allow, a 409 for an email connector still in use, answers without empty fields, page tokens that
need no URL encoding and a last page that says so. Through the local stack's HTTP adapter (the
template's routes, the JWT authorizer, every function), in process, against moto."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from devstack import auth, template
from devstack.api_server import ApiServer
from devstack.handlers import load
from sms_connector import error_log
from tests.test_models import EMAIL, GUIDE_46ELKS, GUIDE_TELNYX, GUIDE_TWILIO, with_

KEY = auth.signing_key()


class Gateway:
    def __init__(self, server: ApiServer) -> None:
        self.server = server
        self.token = auth.mint("tenant-a", key=KEY)

    def __call__(
        self, method: str, path: str, body: Any = None, *, token: str | None = "tenant", headers: Any = None
    ) -> tuple[int, dict[str, str], str]:
        sent = {"content-type": "application/json"} | (headers or {})
        if token:
            sent["authorization"] = f"Bearer {self.token if token == 'tenant' else token}"
        raw = body if isinstance(body, bytes | str) else (json.dumps(body) if body is not None else "")
        status, out, data = self.server.handle(method, path, sent, raw.encode() if isinstance(raw, str) else raw)
        return status, out, data.decode()

    def json(self, method: str, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
        status, _, text = self(method, path, body, **kwargs)
        return status, json.loads(text) if text else None

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        status, created = self.json("POST", "/connectors", body)
        assert status == 201, created
        return dict(created)


@pytest.fixture
def gateway(aws_env: None) -> Iterator[Gateway]:
    server = ApiServer({name: load(name) for name in template.functions()}, auth.Authorizer(KEY), port=0)
    yield Gateway(server)
    server.stop()


def assert_error(answer: tuple[int, dict[str, str], str], status: int) -> dict[str, Any]:
    """The one shape and format of every error: application/json, compact, a final newline."""
    got, headers, text = answer
    assert got == status, text
    assert headers["Content-Type"] == "application/json"
    assert text.endswith("}\n") and "\n" not in text[:-1] and ": " not in text.split('"message"')[0], text
    body = json.loads(text)
    assert body["statusCode"] == status and body["message"], body
    assert set(body) == ({"statusCode", "message", "detail"} if status == 422 else {"statusCode", "message"})
    return dict(body)


# --- 5. errors: one shape, one format, our words ------------------------------------------


def test_every_error_has_one_shape_and_format(gateway: Gateway) -> None:
    email = gateway.create(EMAIL)
    assert_error(gateway("POST", "/connectors", "{not json"), 400)
    assert_error(gateway("GET", "/connectors", token=None), 401)
    assert_error(gateway("GET", "/connectors", token=auth.mint(None, key=KEY)), 403)
    assert_error(gateway("GET", "/connectors/01UNKNOWN"), 404)
    assert_error(gateway("GET", "/no/such/path"), 404)
    assert_error(gateway("PATCH", "/connectors"), 405)
    assert_error(gateway("POST", "/connectors", with_(EMAIL, name="x" * 70_000)), 413)
    assert_error(gateway("POST", "/connectors", json.dumps(EMAIL), headers={"content-type": "text/plain"}), 415)
    assert_error(gateway("POST", "/connectors", {"type": "email"}), 422)
    assert_error(gateway("POST", f"/connectors/{email['id']}/test"), 422)
    gateway.create(with_(GUIDE_TELNYX, emailConnectorId=email["id"]))
    assert_error(gateway("DELETE", f"/connectors/{email['id']}"), 409)


def test_every_json_answer_ends_with_a_newline(gateway: Gateway) -> None:
    email = gateway.create(EMAIL)
    for method, path in (
        ("GET", "/connectors"),
        ("GET", f"/connectors/{email['id']}"),
        ("GET", "/swagger?format=json"),
    ):
        status, headers, text = gateway(method, path)
        assert status == 200 and headers["Content-Type"] == "application/json" and text.endswith("}\n"), path
    status, _, text = gateway("POST", "/preview", {"message": "hi"})
    assert status == 200 and text.endswith("}\n")
    status, _, text = gateway("DELETE", f"/connectors/{email['id']}")
    assert status == 204 and text == ""


def test_a_put_without_type_says_it_is_required(gateway: Gateway) -> None:
    email = gateway.create(EMAIL)
    without_type = {k: v for k, v in EMAIL.items() if k != "type"}
    body = assert_error(gateway("PUT", f"/connectors/{email['id']}", without_type), 422)
    assert body["message"] == "invalid request: type: is required (sms or email)"
    assert body["detail"] == [
        {"loc": ["body", "type"], "field": "type", "msg": "is required (sms or email)", "type": "missing"}
    ]
    body = assert_error(gateway("PUT", f"/connectors/{email['id']}", with_(EMAIL, type="fax")), 422)
    assert body["message"] == "invalid request: type: must be sms or email"
    no_provider = {k: v for k, v in GUIDE_TWILIO.items() if k != "provider"}
    body = assert_error(gateway("POST", "/connectors", no_provider), 422)
    assert body["message"] == "invalid request: provider: is required (46elks, telnyx or twilio)"


def test_a_422_names_where_the_field_is_as_the_client_sent_it(gateway: Gateway) -> None:
    body = assert_error(gateway("POST", "/connectors", with_(GUIDE_TWILIO, recipients=[{"to": "0701234567"}])), 422)
    [error] = body["detail"]
    assert error["loc"] == ["body", "recipients", 0, "to"]  # no union member ("twilio") in the way
    assert error["field"] == "recipients[0].to"
    body = assert_error(gateway("GET", "/connectors?limit=0"), 422)
    assert body["detail"] == [
        {"loc": ["query", "limit"], "field": "limit", "msg": "must be at least 1", "type": "greater_than_equal"}
    ]


def test_a_wrong_method_is_a_405_naming_the_methods_allowed(gateway: Gateway) -> None:
    for method, path, allowed in (
        ("PATCH", "/connectors", "GET, POST"),
        ("DELETE", "/connectors", "GET, POST"),
        ("POST", "/connectors/01ABC", "DELETE, GET, PUT"),
        ("GET", "/connectors/01ABC/test", "POST"),
        ("GET", "/connectors/01ABC/verify", "POST"),
        ("DELETE", "/connectors/01ABC/stats", "GET"),
        ("POST", "/connectors/01ABC/logs", "GET"),
        ("GET", "/preview", "POST"),
    ):
        status, headers, text = gateway(method, path)
        assert status == 405 and headers["Allow"] == allowed, (method, path, text)
        use = " or ".join(allowed.rsplit(", ", 1))  # "DELETE, GET, PUT" -> "DELETE, GET or PUT"
        assert json.loads(text)["message"] == f"{method} is not allowed on {path}: use {use}"
    # The ANY routes keep the JWT authorizer: no token, no answer about the route
    assert gateway("PATCH", "/connectors", token=None)[0] == 401


def test_a_body_on_a_route_that_takes_none_is_ignored(gateway: Gateway) -> None:
    status, page = gateway.json("GET", "/connectors", "{not json")
    assert status == 200 and page["items"] == []


# --- 6. an email connector in use is not deleted ------------------------------------------


def test_an_email_connector_in_use_cannot_be_deleted(gateway: Gateway) -> None:
    # Given an email connector that two SMS connectors send backup emails through
    email = gateway.create(EMAIL)
    night = gateway.create(with_(GUIDE_46ELKS, name="Night shift"))  # the tenant's only one: linked
    day = gateway.create(with_(GUIDE_TWILIO, name="Day shift", emailConnectorId=email["id"]))
    gateway.create(with_(GUIDE_TELNYX, name="No backups", recipients=[{"to": "+46710000001"}]))
    # When it is deleted / Then 409 names them, and nothing changed
    status, answer = gateway.json("DELETE", f"/connectors/{email['id']}")
    assert status == 409
    assert answer == {
        "statusCode": 409,
        "message": "email connector 'Alerts mail' is used by 2 SMS connectors: 'Day shift', 'Night shift'; "
        "change them first",
    }
    assert gateway.json("GET", f"/connectors/{email['id']}")[0] == 200
    # Once neither uses it, it goes
    gateway.json("DELETE", f"/connectors/{night['id']}")
    no_backup = with_(GUIDE_TWILIO, name="Day shift", recipients=[{"to": "+46710000001"}])
    assert gateway.json("PUT", f"/connectors/{day['id']}", no_backup)[1].get("emailConnectorId") is None
    assert gateway.json("DELETE", f"/connectors/{email['id']}")[0] == 204


def test_another_tenants_sms_connectors_do_not_count(gateway: Gateway) -> None:
    email = gateway.create(EMAIL)
    other = Gateway(gateway.server)
    other.token = auth.mint("tenant-b", key=KEY)
    other.create(EMAIL)
    other.create(GUIDE_46ELKS)
    assert gateway.json("DELETE", f"/connectors/{email['id']}")[0] == 204


# --- 7. answers without empty fields; page tokens -----------------------------------------


def test_answers_carry_no_empty_fields(gateway: Gateway) -> None:
    email = gateway.create(EMAIL)
    assert set(email) == {"id", "type", "name", "from", "createdAt", "updatedAt"}
    telnyx = gateway.create(with_(GUIDE_TELNYX, recipients=[{"to": "+46710000001"}]))
    assert "credentials" not in telnyx and "webhookPublicKey" not in telnyx  # a Telnyx key has no public part
    assert "limits" not in telnyx and "emailConnectorId" not in telnyx
    assert telnyx["recipients"] == [{"to": "+46710000001", "optedOut": False}]
    elks = gateway.create(with_(GUIDE_46ELKS, limits={"duplicateWindowMinutes": 5}))
    assert elks["credentials"] == {"username": "your_46elks_username"}
    assert elks["limits"] == {"duplicateWindowMinutes": 5}
    assert elks["recipients"] == [{"to": "+46710000001", "backupEmail": "user@example.com", "optedOut": False}]
    twilio = gateway.create(GUIDE_TWILIO)
    assert twilio["credentials"] == {"accountSid": "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"}
    status, page = gateway.json("GET", "/connectors")
    assert status == 200 and "null" not in json.dumps(page["items"])


def test_page_tokens_need_no_url_encoding_and_the_last_page_has_none(gateway: Gateway) -> None:
    for i in range(4):
        gateway.create(with_(GUIDE_TELNYX, name=f"n{i}", recipients=[{"to": "+46710000001"}]))
    seen, token, pages = [], None, 0
    while True:
        status, page = gateway.json("GET", "/connectors?limit=2" + (f"&nextToken={token}" if token else ""))
        assert status == 200
        seen += [c["name"] for c in page["items"]]
        pages += 1
        token = page["nextToken"]
        if token is None:
            break
        assert re.fullmatch(r"[A-Za-z0-9_-]+", token), token  # pasted into a URL as it is
    assert seen == ["n0", "n1", "n2", "n3"] and pages == 2  # no empty third page


def test_the_log_gives_no_token_on_its_last_page(gateway: Gateway) -> None:
    import boto3

    from sms_connector import dynamo

    connector = gateway.create(with_(GUIDE_TELNYX, recipients=[{"to": "+46710000001"}]))
    for i in range(4):
        boto3.client("dynamodb").put_item(
            TableName=dynamo.table(),
            Item=error_log.entry_item(
                connector["id"],
                at=f"2026-11-26T10:00:0{i}.000Z",
                level="error",
                message=f"failure {i}",
                provider="telnyx",
                recipient="+46710000001",
                error_code="40001",
                action_id=f"a{i}",
                kind="sms",
            ),
        )
    path = f"/connectors/{connector['id']}/logs?limit=2"
    status, first = gateway.json("GET", path)
    assert status == 200 and [e["message"] for e in first["items"]] == ["failure 3", "failure 2"]
    assert re.fullmatch(r"[A-Za-z0-9_-]+", first["nextToken"])
    status, last = gateway.json("GET", f"{path}&nextToken={first['nextToken']}")
    assert [e["message"] for e in last["items"]] == ["failure 1", "failure 0"] and last["nextToken"] is None


def test_a_test_send_to_an_email_connector_is_a_422_on_the_connector(gateway: Gateway) -> None:
    email = gateway.create(EMAIL)
    body = assert_error(gateway("POST", f"/connectors/{email['id']}/test"), 422)
    assert body["detail"] == [
        {
            "loc": ["path", "connectorId"],
            "field": "connectorId",
            "msg": "is an email connector; test sends need an SMS connector",
            "type": "value_error",
        }
    ]
