"""A corpus of nasty inputs, written by hand: every one gets a clear 4xx, never a 5xx."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Api
from tests.test_models import EMAIL, GUIDE_46ELKS, GUIDE_TELNYX, with_

DEEP = "[" * 5000 + "]" * 5000
CASES: list[tuple[str, Any, dict[str, str], int, str]] = [
    # name, body, headers, status, words the answer must contain
    ("huge body", json.dumps(with_(EMAIL, name="x" * 80_000)), {}, 413, "larger"),
    ("deep nesting", DEEP, {}, 400, "nests too deeply"),
    ("deep object nesting", '{"a":' * 3000 + "1" + "}" * 3000, {}, 400, "nests too deeply"),
    (
        "duplicated keys",
        '{"type": "email", "name": "a", "name": "b", "from": "a@example.com"}',
        {},
        400,
        "key 'name' more than once",
    ),
    ("text/plain", json.dumps(EMAIL), {"content-type": "text/plain"}, 415, "application/json"),
    ("truncated JSON", '{"type": "email", "name": "a"', {}, 400, "not valid JSON"),
    ("JSON null", "null", {}, 422, "body"),
    ("a number", "42", {}, 422, "body"),
    ("NaN", '{"type": "email", "name": NaN, "from": "a@example.com"}', {}, 422, "name"),
    ("binary", "\x00\x01\x02", {}, 400, "not valid JSON"),
    ("empty name", with_(EMAIL, name=""), {}, 422, "name"),
    ("whitespace name", with_(EMAIL, name="   \t "), {}, 422, "name"),
    (
        "whitespace password",
        with_(GUIDE_46ELKS, credentials={"username": "u", "password": "  "}),
        {},
        422,
        "credentials.password",
    ),
    ("emoji sender", with_(GUIDE_46ELKS, **{"from": "Alarm🔥"}), {}, 422, "from"),
    ("letters in number", with_(GUIDE_TELNYX, recipients=[{"to": "+4670ABC1234"}]), {}, 422, "recipients[0].to"),
    ("number as integer", with_(GUIDE_TELNYX, recipients=[{"to": 46701234567}]), {}, 422, "recipients[0].to"),
    ("very long number", with_(GUIDE_TELNYX, recipients=[{"to": "+46" + "7" * 40}]), {}, 422, "recipients[0].to"),
    ("recipients as object", with_(GUIDE_TELNYX, recipients={"to": "+46710000001"}), {}, 422, "recipients"),
    ("credentials as string", with_(GUIDE_TELNYX, credentials="KEY"), {}, 422, "credentials"),
    ("null credentials", with_(GUIDE_TELNYX, credentials=None), {}, 422, "credentials"),
    ("type as list", {"type": ["sms"]}, {}, 422, "type"),
    ("email with spaces", with_(EMAIL, **{"from": "a b@example.com"}), {}, 422, "from"),
]


@pytest.mark.parametrize(("name", "body", "headers", "status", "says"), CASES, ids=[c[0] for c in CASES])
def test_nasty_bodies(
    connectors_api: Api, name: str, body: Any, headers: dict[str, str], status: int, says: str
) -> None:
    headers = {"content-type": "application/json"} | headers
    got, answer = connectors_api("POST", "/connectors", body, headers=headers)
    assert got == status, answer
    assert says in json.dumps(answer), answer
    assert connectors_api("GET", "/connectors")[1]["items"] == []  # nothing was stored


def test_unicode_names_and_messages_round_trip(connectors_api: Api) -> None:
    name = "Larm – kylrum 4 ❄️ 東京"  # noqa: RUF001 - the dash is the point
    status, created = connectors_api("POST", "/connectors", with_(EMAIL, name=name))
    assert status == 201 and created["name"] == name
    assert connectors_api("GET", f"/connectors/{created['id']}")[1]["name"] == name


@pytest.mark.parametrize("connector_id", ["..", "%00", "' OR 1=1 --", "a" * 65, "ülö", "<script>", "%2Fetc%2Fpasswd"])
def test_path_ids_that_are_not_ids_are_404(connectors_api: Api, connector_id: str) -> None:
    for method, body in (("GET", None), ("PUT", EMAIL), ("DELETE", None)):
        status, answer = connectors_api(method, f"/connectors/{connector_id}", body)
        assert status == 404, (method, answer)


def test_missing_content_type_is_read_as_json(connectors_api: Api) -> None:
    status, _ = connectors_api("POST", "/connectors", json.dumps(EMAIL), headers={})
    assert status == 201


def test_unknown_query_parameters_are_named(connectors_api: Api) -> None:
    status, answer = connectors_api("GET", "/connectors", query={"limt": "5"})
    assert status == 422 and answer["detail"][0]["field"] == "limt"


def test_a_body_that_is_not_utf8_is_400(connectors_api: Api) -> None:
    status, answer = connectors_api("POST", "/connectors", b"\xff\xfe{", headers={"content-type": "application/json"})
    assert status == 400 and "UTF-8" in answer["message"]


def test_multipart_is_415(connectors_api: Api) -> None:
    status, _ = connectors_api(
        "POST", "/connectors", json.dumps(EMAIL), headers={"content-type": "multipart/form-data"}
    )
    assert status == 415
