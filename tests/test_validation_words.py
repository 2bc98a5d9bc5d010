"""Every constraint of every request, broken one at a time: each 422 names the field and says
what is wrong in our words, never pydantic's ("Input should be ...", "Field required", ...).

The constraints are read from the OpenAPI document the service serves, so a field or rule added
later is walked too; the rules JSON Schema cannot say (our own validators) are listed by hand.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from devstack import template
from devstack.handlers import load
from scripts.openapi import render
from sms_connector import aws, config
from tests.conftest import Api, create_tables
from tests.test_models import EMAIL, GUIDE_46ELKS, GUIDE_TELNYX, GUIDE_TWILIO, with_

# What pydantic says and we never do.
PYDANTIC = re.compile(
    r"should|input|field required|value error|validation|valid (integer|string|boolean|dictionary)|"
    r"extra inputs|instance of|after validation|greater than or equal|less than or equal|pattern|"
    r"unable to|fractional|literal|tag|discriminat",
    re.IGNORECASE,
)
DOCUMENT = json.loads(render())
SCHEMAS = DOCUMENT["components"]["schemas"]
RECIPIENTS = [{"to": "+46710000001", "backupEmail": "user@example.com", "optedOut": False}]
LIMITS = {"duplicateWindowMinutes": 5, "maxPerRecipientPerHour": 10, "monthlySegmentBudget": 1000}
WEBHOOK_KEY = base64.b64encode(bytes(range(32))).decode()
EVERY_FIELD = {"recipients": RECIPIENTS, "limits": LIMITS, "emailConnectorId": "01EMAIL", "verify": False}
# A body with every optional field, per request schema: each constraint is broken in one of them.
BODIES: dict[str, dict[str, Any]] = {
    "Elks46Connector": with_(GUIDE_46ELKS, **EVERY_FIELD),
    "TelnyxConnector": with_(GUIDE_TELNYX, **EVERY_FIELD, webhookPublicKey=WEBHOOK_KEY),
    "TwilioConnector": with_(GUIDE_TWILIO, **EVERY_FIELD),
    "EmailConnector": EMAIL,
    "TestSendIn": {"to": "+46710000001", "message": "Hello"},
    "PreviewIn": {"message": "Hello", "provider": "telnyx"},
}
for name in ("Elks46Connector", "TelnyxConnector", "TwilioConnector"):
    BODIES[f"{name}Update"] = BODIES[name]
ROUTES = {  # where each request schema is sent
    "Elks46Connector": ("POST", "/connectors"),
    "Elks46ConnectorUpdate": ("PUT", "/connectors/{connectorId}"),
    "TestSendIn": ("POST", "/connectors/{connectorId}/test"),
    "PreviewIn": ("POST", "/preview"),
}
for kind in ("Telnyx", "Twilio"):
    ROUTES[f"{kind}Connector"] = ROUTES["Elks46Connector"]
    ROUTES[f"{kind}ConnectorUpdate"] = ROUTES["Elks46ConnectorUpdate"]
ROUTES["EmailConnector"] = ROUTES["Elks46Connector"]  # a PUT takes the same schema
REMOVE = object()


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    """A property's schema without its $ref and its `or null`."""
    if "$ref" in schema:
        return resolve(SCHEMAS[schema["$ref"].rsplit("/", 1)[1]])
    options = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    return resolve(options[0]) if len(options) == 1 else schema


def breaks(schema: dict[str, Any], value: Any, path: list[Any]) -> Iterator[tuple[str, list[Any], Any]]:
    """(constraint, where, a value breaking it) for every constraint of `schema`, recursively."""
    schema = resolve(schema)
    kind = schema.get("type")
    if "const" in schema or "enum" in schema:
        yield "enum", path, "bogus"
    if kind == "object":
        yield "type", path, ["not", "an object"]
        for name in schema.get("required", []):
            yield "required", [*path, name], REMOVE
        if schema.get("additionalProperties") is False:
            yield "additionalProperties", [*path, "bogus"], 1
        for name, sub in schema.get("properties", {}).items():
            assert name in value, f"the example body lacks {'.'.join(map(str, [*path, name]))}: add it to BODIES"
            yield from breaks(sub, value[name], [*path, name])
    elif kind == "array":
        yield "type", path, "a string"
        if "minItems" in schema:
            yield "minItems", path, []
        if "maxItems" in schema:
            yield "maxItems", path, [value[0]] * (schema["maxItems"] + 1)
        yield from breaks(schema["items"], value[0], [*path, 0])
    elif kind == "string":
        yield "type", path, 5
        if schema.get("minLength", 0) > 0:
            yield "minLength", path, "x" * (schema["minLength"] - 1)
        if "maxLength" in schema:
            yield "maxLength", path, "x" * (schema["maxLength"] + 1)
        if "pattern" in schema:
            yield "pattern", path, "not an id!"
        if schema.get("format") == "email":
            yield "format", path, "not-an-address"
    elif kind == "integer":
        yield "type", path, "abc"
        yield "type", path, 1.5
        if "minimum" in schema:
            yield "minimum", path, int(schema["minimum"]) - 1
        if "maximum" in schema:
            yield "maximum", path, int(schema["maximum"]) + 1
    elif kind == "boolean":
        yield "type", path, "maybe"


def broken(body: dict[str, Any], path: list[Any], bad: Any) -> Any:
    if not path:
        return bad
    body = copy.deepcopy(body)
    *parents, last = path
    target: Any = body
    for part in parents:
        target = target[part]
    if bad is REMOVE:
        del target[last]
    else:
        target[last] = bad
    return body


def field(path: list[Any]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".") or "body"


CASES = [
    (name, constraint, where, bad)
    for name, body in BODIES.items()
    for constraint, where, bad in breaks(SCHEMAS[name], body, [])
]


def assert_our_words(answer: dict[str, Any], expected_field: str) -> None:
    assert expected_field in [d["field"] for d in answer["detail"]], answer
    for text in [answer["message"], *(d["msg"] for d in answer["detail"])]:
        assert not PYDANTIC.search(text), text
    for detail in answer["detail"]:
        assert answer["message"].count(f"{detail['field']}: {detail['msg']}") == 1, answer


def call(method: str, path: str, body: Any = None, query: dict[str, str] | None = None) -> tuple[int, Any]:
    """`method path` as the function the template routes it to answers it (no connector needed:
    validation comes first)."""
    [function] = [f.name for f in template.functions().values() if (method.upper(), path, True) in f.routes]
    return Api(load(function), "tenant-a")(method.upper(), path.replace("{connectorId}", "01ANY"), body, query=query)


@pytest.fixture(scope="module", autouse=True)
def aws_once() -> Iterator[None]:
    """One moto account for the module: every request here is refused before any AWS call."""
    with mock_aws():
        aws.reset()
        config.reset()
        create_tables()
        yield
        aws.reset()
    config.reset()


def test_every_request_schema_is_walked() -> None:
    bodies = set()
    for path in DOCUMENT["paths"].values():
        for operation in path.values():
            schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if schema:
                refs = [schema] if "$ref" in schema else schema["oneOf"]
                bodies |= {r["$ref"].rsplit("/", 1)[1] for r in refs}
    assert bodies == set(BODIES) == set(ROUTES)
    assert len(CASES) > 250  # every field of every body, several constraints each


@pytest.mark.parametrize(("schema", "constraint", "where", "bad"), CASES, ids=lambda v: str(v)[:40])
def test_each_broken_constraint_is_named_in_our_words(schema: str, constraint: str, where: list[Any], bad: Any) -> None:
    status, answer = call(*ROUTES[schema], broken(BODIES[schema], where, bad))
    assert status == 422, (constraint, answer)
    assert_our_words(answer, field(where))


def query_cases() -> Iterator[tuple[str, str, str]]:
    for path, operations in DOCUMENT["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] != "query":
                    continue
                schema, name = resolve(parameter["schema"]), parameter["name"]
                if schema.get("type") == "integer":
                    yield method, path, f"{name}=abc"
                    yield method, path, f"{name}=1.5"
                    yield method, path, f"{name}={int(schema['minimum']) - 1}"
                    yield method, path, f"{name}={int(schema['maximum']) + 1}"
                if "enum" in schema:
                    yield method, path, f"{name}=fax"
                if "maxLength" in schema:
                    yield method, path, f"{name}={'x' * (schema['maxLength'] + 1)}"
            if method == "get":
                yield method, path, "limt=5"  # a parameter the route does not have


QUERY_CASES = list(query_cases())


@pytest.mark.parametrize(("method", "path", "query"), QUERY_CASES, ids=[f"{p} {q[:20]}" for _, p, q in QUERY_CASES])
def test_each_broken_query_parameter_is_named_in_our_words(method: str, path: str, query: str) -> None:
    name, _, value = query.partition("=")
    status, answer = call(method, path, query={name: value})
    assert status == 422, (query, answer)
    assert_our_words(answer, name)


# The rules JSON Schema cannot say: our own validators, whose sentences must come through
# without pydantic's "Value error, " in front.
OWN_RULES = [
    ("Elks46Connector", ["recipients", 0, "to"], "0701234567"),
    ("Elks46Connector", ["recipients", 0, "to"], "+4670ABC1234"),
    ("Elks46Connector", ["recipients", 0, "to"], "+99912345678"),
    ("Elks46Connector", ["recipients", 0, "to"], "+4612"),
    ("Elks46Connector", ["recipients"], [{"to": "+46710000001"}, {"to": "+46 71 000 00 01"}]),
    ("Elks46Connector", ["from"], "1Company"),
    ("Elks46Connector", ["from"], "Alarm🔥"),
    ("Elks46Connector", ["name"], "On\ncall"),
    ("Elks46Connector", ["name"], "   "),
    ("Elks46Connector", ["name"], "evil\u202eexe"),
    ("Elks46Connector", ["credentials", "password"], "pass word"),
    ("Elks46Connector", ["credentials", "password"], "   "),
    ("TwilioConnector", ["credentials", "accountSid"], "XX123"),
    ("TwilioConnector", ["credentials", "accountSid"], "AC123"),
    ("TwilioConnector", ["from"], "MyCompany"),
    ("TelnyxConnector", ["webhookPublicKey"], "not-a-key"),
    ("EmailConnector", ["from"], "a b@example.com"),
    ("TestSendIn", ["message"], " \n "),
    ("TestSendIn", ["to"], "46710000001"),
    ("PreviewIn", ["message"], "\u0007"),
]


@pytest.mark.parametrize(("schema", "where", "bad"), OWN_RULES, ids=[f"{s} {field(w)}" for s, w, _ in OWN_RULES])
def test_our_own_rules_speak_our_words(schema: str, where: list[Any], bad: Any) -> None:
    status, answer = call(*ROUTES[schema], broken(BODIES[schema], where, bad))
    assert status == 422, answer
    assert_our_words(answer, field(where))
