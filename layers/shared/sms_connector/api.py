"""The HTTP API's shared machinery: the resolver, error answers, the caller's tenant.

Every API function builds its resolver here, so domain errors map to HTTP answers in one
place and every route documents the same error bodies.
"""

from __future__ import annotations

import base64
import binascii
import json
import traceback
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, cast

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.router import Router
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from pydantic import BaseModel

from .config import settings
from .errors import Conflict, Forbidden, InvalidField, NotFound, TooManyRequests, Unavailable
from .models import NOT_AN_OBJECT, PROVIDERS, UNION_TAGS, UNKNOWN_PROVIDER, ErrorBody, GatewayErrorBody

MAX_BODY_BYTES = 64 * 1024
TITLE = "SMS connector API"
VERSION = "1.0.0"

logger = Logger()


def _error_response(description: str, model: type[BaseModel] = ErrorBody) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"model": model}}}


# Answers every route may give besides its own; listed so the OpenAPI document is complete.
ERROR_RESPONSES: dict[int, Any] = {
    400: _error_response("The body is not JSON"),
    401: _error_response("No valid token (answered by the API Gateway authorizer)", GatewayErrorBody),
    403: _error_response("The token names no tenant"),
    404: _error_response("Unknown connector, or another tenant's"),
    413: _error_response("The body is larger than 64 KiB"),
    415: _error_response("The body is not application/json"),
}


# Answers of the routes that ask a provider (a credential check).
PROVIDER_RESPONSES: dict[int, Any] = {
    503: _error_response("The provider could not be reached or did not answer; nothing was saved"),
}


def responses(status: int, description: str, *, provider: bool = False) -> dict[int, Any]:
    """A route's documented answers: its success (schema from the return type) and the errors;
    `provider`: also the 503 of a provider that could not be asked."""
    success: dict[str, Any] = {"description": description}
    if status == 204:
        success["content"] = {}
    return {status: success, **ERROR_RESPONSES, **(PROVIDER_RESPONSES if provider else {})}


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
        parts = [exc.location, *exc.field.replace("[", ".").replace("]", "").split(".")]
        loc: list[str | int] = [int(p) if p.isdigit() else p for p in parts]
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

    @app.exception_handler(TooManyRequests)
    def _too_many(exc: TooManyRequests) -> Response:
        answer = _error(HTTPStatus.TOO_MANY_REQUESTS, str(exc))
        answer.headers["Retry-After"] = str(exc.retry_after)
        return answer

    @app.exception_handler(Unavailable)
    def _unavailable(exc: Unavailable) -> Response:
        answer = _error(HTTPStatus.SERVICE_UNAVAILABLE, str(exc))
        answer.headers["Retry-After"] = "30"
        return answer

    @app.not_found
    def _no_route(exc: Exception) -> Response:
        return _error(HTTPStatus.NOT_FOUND, "no such route")

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response:
        # Never echo the exception, nor log its text: it may hold a credential, a number or a
        # message. Its type and where it happened are enough to find the bug.
        logger.error("unhandled error", extra={"error_type": type(exc).__name__, "where": where(exc)})
        return _error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error; it has been logged")


def where(exc: BaseException) -> list[str]:
    """The frames an exception went through (file:line function), without its message."""
    return [f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in traceback.extract_tb(exc.__traceback__)][
        -6:
    ]


def _known_query_only(app: APIGatewayHttpResolver, next_middleware: Any) -> Any:
    """Refuse query parameters the route does not declare: `?limt=5` must not pass as no limit."""
    route = app.context.get("_route")
    if route is not None and route.include_in_schema:  # not for Powertools' own /swagger
        declared = {p.alias for p in route.dependant.query_params}
        unknown = sorted(set(app.current_event.query_string_parameters or {}) - declared)
        if unknown:
            raise InvalidField(unknown[0], "is not a parameter of this route", "query")
    return next_middleware(app)


def create_app(*routers: Router) -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver(enable_validation=True)
    app.use(middlewares=[_known_query_only])
    _register_errors(app)
    for router in routers:
        app.include_router(router)
    return app


def openapi_document(app: APIGatewayHttpResolver) -> dict[str, Any]:
    return json.loads(app.get_openapi_json_schema(**_openapi_options()))


def enable_swagger(app: APIGatewayHttpResolver) -> None:
    app.enable_swagger(path="/swagger", **_openapi_options())


def _openapi_options() -> dict[str, Any]:
    # Here, not at import: Powertools' OpenAPI models take ≈ 50 ms to build, and only the docs
    # function (and `make openapi`) write the document.
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

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
    event = cast(APIGatewayProxyEventV2, app.current_event)
    authorizer = event.request_context.authorizer
    claims = (authorizer.jwt_claim if authorizer else None) or {}
    tenant = claims.get(claim)
    if not isinstance(tenant, str) or not tenant.strip():
        raise Forbidden(f"the token carries no '{claim}' claim")
    return tenant


class _DuplicateKey(ValueError):
    pass


class _HugeNumber(ValueError):
    pass


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > 30:  # no field of ours holds a number this long
        raise _HugeNumber(text[:20])
    return int(text)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


def _unreadable(event: dict[str, Any]) -> tuple[HTTPStatus, str] | None:
    """Why a body must be refused before the resolver parses it, or None.

    Python's json would take the last of duplicated keys silently, and hit its recursion
    limit on deep nesting (a 500): both are the client's mistakes, so both are a 400.
    """
    body = event.get("body") or ""
    if len(body) > MAX_BODY_BYTES * (4 / 3 if event.get("isBase64Encoded") else 1):
        return HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the body is larger than {MAX_BODY_BYTES} bytes"
    if not body:
        return None
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    media = headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        return HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "the body must be application/json"
    try:
        text = base64.b64decode(body).decode("utf-8") if event.get("isBase64Encoded") else body
        text.encode("utf-8")  # lone surrogates from a broken client are not text either
        json.loads(text, object_pairs_hook=_no_duplicates, parse_int=_bounded_int)
    except _DuplicateKey as exc:
        return HTTPStatus.BAD_REQUEST, f"the body has the key '{exc}' more than once"
    except _HugeNumber:
        return HTTPStatus.BAD_REQUEST, "the body holds a number with more than 30 digits"
    except RecursionError:
        return HTTPStatus.BAD_REQUEST, "the body nests too deeply"
    except UnicodeDecodeError:
        return HTTPStatus.BAD_REQUEST, "the body is not UTF-8 text"
    except (ValueError, binascii.Error):
        return None  # not JSON: the resolver says so in its own words
    return None


def lambda_handler(app: APIGatewayHttpResolver) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The Lambda entry point for `app`: refuses unreadable bodies before the resolver parses them."""

    @logger.inject_lambda_context(clear_state=True)
    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        refused = _unreadable(event)
        if refused:
            status, message = refused
            return {
                "statusCode": status.value,
                "headers": {"Content-Type": content_types.APPLICATION_JSON},
                "body": json.dumps({"statusCode": status.value, "message": message}),
            }
        return app.resolve(event, context)

    return handle
