"""The OpenAPI document: generated from the code, committed, served, and true to the bodies."""

from __future__ import annotations

import json
from pathlib import Path

from devstack.handlers import load
from scripts.openapi import OUT, render
from tests.conftest import Api


def test_committed_openapi_json_matches_the_code() -> None:
    assert Path(OUT).read_text() == render(), "openapi.json is stale: run `make openapi` and commit it"


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
