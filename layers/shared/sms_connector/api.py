"""The HTTP API's shared machinery: the resolver, error answers, the caller's tenant.

Every API function builds its resolver here, so domain errors map to HTTP answers in one
place and every route documents the same error bodies.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer
from aws_lambda_powertools.event_handler.router import Router

from .config import settings
from .errors import Conflict, Forbidden, InvalidField, NotFound
from .models import NOT_AN_OBJECT, PROVIDERS, UNION_TAGS, UNKNOWN_PROVIDER, ErrorBody

MAX_BODY_BYTES = 64 * 1024
TITLE = "SMS connector API"
VERSION = "1.0.0"

logger = Logger()


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"model": ErrorBody}}}


# Answers every route may give besides its own; listed so the OpenAPI document is complete.
ERROR_RESPONSES: dict[int, Any] = {
    400: _error_response("The body is not JSON"),
    401: _error_response("No valid token (answered by the API Gateway authorizer)"),
    403: _error_response("The token names no tenant"),
    404: _error_response("Unknown connector, or another tenant's"),
    413: _error_response("The body is larger than 64 KiB"),
    415: _error_response("The body is not application/json"),
}


def _json(status: HTTPStatus, body: dict[str, Any]) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


def _error(status: HTTPStatus, message: str) -> Response:
    return _json(status, {"statusCode": status.value, "message": message})


def field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    """('body', 'sms', 'twilio', 'recipients', 1, 'to') -> 'recipients[1].to'."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path"):
        parts = parts[1:]
    while parts and parts[0] in UNION_TAGS:  # pydantic names the union member it tried
        parts = parts[1:]
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"


def _validation_failed(errors: list[dict[str, Any]]) -> Response:
    detail = []
    for error in errors:
        loc = list(error["loc"])
        message = str(error.get("msg", error["type"])).removeprefix("Value error, ")
        if error["type"] == "union_tag_invalid":  # say which of type/provider is wrong
            tag = error.get("ctx", {}).get("tag")
            if tag == UNKNOWN_PROVIDER:
                loc.append("provider")
                message = f"must be one of {', '.join(PROVIDERS)}"
            elif tag == NOT_AN_OBJECT:
                message = "must be a JSON object"
            else:
                loc.append("type")
                message = "must be sms or email"
        detail.append({"loc": loc, "msg": message, "type": error["type"], "field": field_name(loc)})
    summary = "; ".join(f"{d['field']}: {d['msg']}" for d in detail)
    return _json(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        {"statusCode": 422, "message": f"invalid request: {summary}", "detail": detail},
    )


def _register_errors(app: APIGatewayHttpResolver) -> None:
    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response:
        errors = list(exc.errors())
        bad_json = next((e for e in errors if e["type"] == "json_invalid"), None)
        if bad_json:
            reason = bad_json.get("ctx", {}).get("error", "malformed")
            return _error(HTTPStatus.BAD_REQUEST, f"the body is not valid JSON: {reason}")
        return _validation_failed(errors)

    @app.exception_handler(InvalidField)
    def _invalid_field(exc: InvalidField) -> Response:
        loc = [exc.location, *exc.field.replace("[", ".").replace("]", "").split(".")]
        loc = [int(p) if isinstance(p, str) and p.isdigit() else p for p in loc]
        return _validation_failed([{"loc": loc, "msg": exc.message, "type": "value_error"}])

    @app.exception_handler(RequestUnsupportedContentType)
    def _content_type(exc: RequestUnsupportedContentType) -> Response:
        return _error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "the body must be application/json")

    @app.exception_handler(NotFound)
    def _not_found(exc: NotFound) -> Response:
        return _error(HTTPStatus.NOT_FOUND, str(exc))

    @app.exception_handler(Forbidden)
    def _forbidden(exc: Forbidden) -> Response:
        return _error(HTTPStatus.FORBIDDEN, str(exc))

    @app.exception_handler(Conflict)
    def _conflict(exc: Conflict) -> Response:
        return _error(HTTPStatus.CONFLICT, str(exc))

    @app.not_found
    def _no_route(exc: Exception) -> Response:
        return _error(HTTPStatus.NOT_FOUND, "no such route")

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response:
        # Never echo the exception: it may name internals. The log has the traceback.
        logger.exception("unhandled error")
        return _error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error; it has been logged")


def create_app(*routers: Router) -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver(enable_validation=True)
    _register_errors(app)
    for router in routers:
        app.include_router(router)
    return app


def openapi_document(app: APIGatewayHttpResolver) -> dict[str, Any]:
    return json.loads(app.get_openapi_json_schema(**_openapi_options()))


def enable_swagger(app: APIGatewayHttpResolver) -> None:
    app.enable_swagger(path="/swagger", **_openapi_options())


def _openapi_options() -> dict[str, Any]:
    return {
        "title": TITLE,
        "version": VERSION,
        "description": "Connectors for 46elks, Telnyx and Twilio, test sends, statistics and error logs.",
        "security_schemes": {"jwt": HTTPBearer(bearerFormat="JWT")},
        "security": [{"jwt": []}],
    }


def tenant_of(app: APIGatewayHttpResolver | Router) -> str:
    """The caller's tenant: the JWT claim named by TENANT_CLAIM (checked by the authorizer)."""
    claim = settings().tenant_claim
    authorizer = app.current_event.request_context.authorizer
    claims = (authorizer.jwt_claim if authorizer else None) or {}
    tenant = claims.get(claim)
    if not isinstance(tenant, str) or not tenant.strip():
        raise Forbidden(f"the token carries no '{claim}' claim")
    return tenant


def lambda_handler(app: APIGatewayHttpResolver) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The Lambda entry point for `app`: refuses oversized bodies before parsing them."""

    @logger.inject_lambda_context(clear_state=True)
    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        body = event.get("body") or ""
        if len(body) > MAX_BODY_BYTES * (4 / 3 if event.get("isBase64Encoded") else 1):
            response = _error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the body is larger than {MAX_BODY_BYTES} bytes")
            return {
                "statusCode": response.status_code,
                "headers": {"Content-Type": content_types.APPLICATION_JSON},
                "body": json.dumps(response.body),
            }
        return app.resolve(event, context)

    return handle
