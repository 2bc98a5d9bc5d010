"""The OpenAPI document: generated from the code, committed, served, and true to the bodies."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from devstack.handlers import load
from scripts.openapi import OUT, render
from tests.conftest import Api


def test_committed_openapi_json_matches_the_code() -> None:
    assert Path(OUT).read_text() == render(), "functions/docs/openapi.json is stale: run `make openapi` and commit it"


@pytest.mark.parametrize(
    ("method", "query"),
    [
        ("GET", None),
        ("GET", {"format": "json"}),
        ("GET", {"format": "json", "other": "x"}),
        ("GET", {"format": "oauth2-redirect"}),
        ("GET", {"format": "yaml"}),
        ("POST", None),
        ("HEAD", {"format": "json"}),
    ],
)
def test_the_docs_function_answers_as_powertools_own_swagger_route(
    aws_env: None, method: str, query: dict[str, str] | None
) -> None:
    """The docs function serves the committed document instead of building it from every route:
    its answers are those the function gave when it was a resolver with every route and
    `enable_swagger` behind our API's handler, the document included (its keys are sorted in the
    file; the same document)."""
    from devstack.apigw import http_event
    from devstack.lambda_context import LambdaContext
    from sms_connector.api import lambda_handler
    from sms_connector.routes.everything import full_app

    event = http_event(method, "/swagger", query=query)
    ours = load("DocsFunction")(event, LambdaContext())
    theirs = lambda_handler(full_app())(event, LambdaContext())
    assert ours["statusCode"] == theirs["statusCode"]
    assert ours["headers"] == theirs["headers"]
    assert ours["isBase64Encoded"] == theirs["isBase64Encoded"] is False
    if ours["headers"]["Content-Type"] == "application/json":
        assert json.loads(ours["body"]) == json.loads(theirs["body"])
        assert ours["body"].endswith("}\n") and theirs["body"].endswith("}\n")
        assert ("</" in ours["body"]) == ("</" in theirs["body"]) is False  # escaped, as in the page
        return
    spec = re.compile(r"spec: (\{.*?\n\}),\n", re.DOTALL)  # the document inside the page's script
    found = spec.search(ours["body"]), spec.search(theirs["body"])
    swagger_ui = query is None or query["format"] == "yaml"  # any other format: the page
    assert (found[0] is not None) == (found[1] is not None) == swagger_ui
    if found[0] and found[1]:
        assert json.loads(found[0][1]) == json.loads(found[1][1]) == json.loads(render())
    assert spec.sub("", ours["body"]) == spec.sub("", theirs["body"])


def test_every_template_route_is_documented() -> None:
    from devstack import template

    document = json.loads(render())
    for fn in template.functions().values():
        for method, path, _ in fn.routes:
            if method == "ANY":  # the other methods of a documented path: a 405 with Allow
                continue
            if path in ("/swagger", "/", "/assets/{version}/{file}"):  # HTML and static files, not the JSON API
                continue
            if path.startswith("/receipts/"):  # the providers' own formats, on the receipts API (README)
                continue
            assert method.lower() in document["paths"][path], (method, path)


def test_validation_error_body_matches_the_documented_schema(connectors_api: Api) -> None:
    document = json.loads(render())
    schemas = document["components"]["schemas"]
    status, answer = connectors_api("POST", "/connectors", {"type": "email", "name": "", "from": "x"})
    assert status == 422
    assert set(schemas["ValidationErrorBody"]["required"]) == answer.keys() == {"statusCode", "message", "detail"}
    for item in answer["detail"]:
        assert set(schemas["FieldError"]["required"]) == item.keys() == {"loc", "field", "msg", "type"}


def test_swagger_ui_is_served_without_a_token(aws_env: None) -> None:
    docs = Api(load("DocsFunction"), tenant=None)
    status, _ = docs("GET", "/swagger", query={"format": "json"}, claims=None)
    assert status == 200
    from devstack.apigw import http_event
    from devstack.lambda_context import LambdaContext

    page = load("DocsFunction")(http_event("GET", "/swagger"), LambdaContext())
    assert page["statusCode"] == 200 and "swagger-ui" in page["body"]
