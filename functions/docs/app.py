"""Serves the OpenAPI document and Swagger UI at `GET /swagger` (no token needed).

The document is the one `make openapi` writes from the routes and models (`openapi.json`
beside this file; a test keeps it in step with the code, and this function's answers in step
with Powertools' own `enable_swagger` on every route). Served as written instead of built from
every route and model at each cold start, so this function starts like a plain Python handler:
no resolver, no pydantic, no models. Swagger UI's page is put together by Powertools, from the
files it ships, when first asked for.
"""

from __future__ import annotations

from http import HTTPStatus
from pathlib import Path
from typing import Any

from sms_connector.errors import error_body

DOCUMENT = Path(__file__).resolve().parent / "openapi.json"
_answers: dict[str, str] = {}


def _spec() -> str:
    """The document as the page and `?format=json` give it: `</` escaped, so that the page's
    script cannot be closed by a text inside the document."""
    if "json" not in _answers:
        _answers["json"] = DOCUMENT.read_text(encoding="utf-8").rstrip("\n").replace("</", "<\\/")
    return _answers["json"]


def _page() -> str:
    if "page" not in _answers:
        from aws_lambda_powertools.event_handler.openapi import swagger_ui

        files = Path(swagger_ui.__file__).parent
        _answers["page"] = swagger_ui.generate_swagger_html(
            _spec(),
            (files / "swagger-ui-bundle.min.js").read_text(encoding="utf-8"),
            (files / "swagger-ui.min.css").read_text(encoding="utf-8"),
            swagger_base_url="",
            oauth2_config=None,
        )
    return _answers["page"]


def _oauth2_redirect() -> str:
    from aws_lambda_powertools.event_handler.openapi import swagger_ui

    return swagger_ui.generate_oauth2_redirect_html()


def _answer(status: HTTPStatus, content_type: str, body: str) -> dict[str, Any]:
    headers = {"Content-Type": content_type}
    return {"statusCode": int(status), "headers": headers, "body": body, "isBase64Encoded": False}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    method = event.get("requestContext", {}).get("http", {}).get("method", "GET")
    if method != "GET":
        message = f"{method} is not allowed on /swagger: use GET"
        answer = _answer(HTTPStatus.METHOD_NOT_ALLOWED, "application/json", error_body(405, message))
        answer["headers"]["Allow"] = "GET"
        return answer
    wanted = (event.get("queryStringParameters") or {}).get("format")
    if wanted == "json":
        return _answer(HTTPStatus.OK, "application/json", _spec() + "\n")  # as every JSON answer of the API
    if wanted == "oauth2-redirect":
        return _answer(HTTPStatus.OK, "text/html", _oauth2_redirect())
    return _answer(HTTPStatus.OK, "text/html", _page())
