"""The HTTP API's shared machinery: the resolver, error answers, the caller's tenant.

Every API function builds its resolver here, so domain errors map to HTTP answers in one
place and every route documents the same error bodies.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import traceback
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any, cast

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Route
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.router import Router
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from pydantic import BaseModel
from pydantic_core import to_json

from .config import settings
from .errors import (
    MAX_BODY_BYTES,
    Conflict,
    Forbidden,
    InvalidField,
    NotFound,
    TooManyRequests,
    Unavailable,
    error_body,
)
from .ids import CONNECTOR_ID_PATTERN
from .models.common import (
    MISSING_PROVIDER,
    MISSING_TYPE,
    NOT_AN_OBJECT,
    PROVIDERS,
    UNION_TAGS,
    UNKNOWN_PROVIDER,
    UNKNOWN_TYPE,
    ErrorBody,
    GatewayErrorBody,
    ValidationErrorBody,
)

NEXT_PAGE_HELP = "the previous page's nextToken, as it was given (its characters need no encoding in a URL)"
TITLE = "SMS connector API"
VERSION = "1.0.0"

logger = Logger()


def _error_response(description: str, model: type[BaseModel] = ErrorBody) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"model": model}}}


_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before trying again", "schema": {"type": "integer"}}}


def responses(
    status: int,
    description: str,
    *,
    body: bool = False,
    connector: bool = False,
    errors: dict[int, str] | None = None,
) -> dict[int, Any]:
    """A route's documented answers, and only those it can give: its success (schema from the
    return type), the errors of every route (401, 403, 422), those of a route that takes a body
    (`body`: 400, 413, 415) or names a connector (`connector`: 404), and its own (`errors`:
    409, 429, 503 with their descriptions)."""
    success: dict[str, Any] = {"description": description}
    if status == 204:
        success["content"] = {}
    answers: dict[int, Any] = {
        status: success,
        401: _error_response("No valid token (answered by the API Gateway authorizer)", GatewayErrorBody),
        403: _error_response("The token names no tenant"),
        422: _error_response(
            "A field, query parameter or path value is not valid; `detail` names each", ValidationErrorBody
        ),
    }
    if body:
        answers[400] = _error_response("The body is not JSON (or has a key twice, or nests too deeply)")
        answers[413] = _error_response(f"The body is larger than {MAX_BODY_BYTES // 1024} KiB")
        answers[415] = _error_response("The body is not application/json")
    if connector:
        answers[404] = _error_response("Unknown connector, or another tenant's")
    for code, text in (errors or {}).items():
        answers[code] = _error_response(text)
        if code in (429, 503):
            answers[code]["headers"] = _RETRY_AFTER
    return dict(sorted(answers.items()))


def _json(status: HTTPStatus, body: dict[str, Any]) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


def _error(status: HTTPStatus, message: str) -> Response:
    return _json(status, {"statusCode": status.value, "message": message})


def field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    """('body', 'recipients', 1, 'to') -> 'recipients[1].to'."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path"):
        parts = parts[1:]
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"


# --- validation errors in our own words ---------------------------------------------------

_PROVIDERS = f"{', '.join(PROVIDERS[:-1])} or {PROVIDERS[-1]}"
# The connector bodies' union: what `connector_kind` could not place -> (field, type, message).
_UNPLACED: dict[str, tuple[str | None, str, str]] = {
    MISSING_TYPE: ("type", "missing", "is required (sms or email)"),
    UNKNOWN_TYPE: ("type", "literal_error", "must be sms or email"),
    MISSING_PROVIDER: ("provider", "missing", f"is required ({_PROVIDERS})"),
    UNKNOWN_PROVIDER: ("provider", "literal_error", f"must be {_PROVIDERS}"),
    NOT_AN_OBJECT: (None, "model_type", "must be a JSON object"),
}
# Error types whose sentence needs no context.
_PLAIN_WORDS = {
    "missing": "is required",
    "extra_forbidden": "is not a field of this object",
    "string_type": "must be a string",
    "string_unicode": "must be valid Unicode text",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "int_parsing_size": "is too large a number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be a JSON object",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "none_required": "must be null",
    "json_type": "must be JSON",
}
_BOUNDS = {
    "greater_than_equal": ("ge", "must be at least"),
    "greater_than": ("gt", "must be more than"),
    "less_than_equal": ("le", "must be at most"),
    "less_than": ("lt", "must be less than"),
}
_PATTERNS = {CONNECTOR_ID_PATTERN: "must be a connector id: 1 to 64 of A-Z a-z 0-9 _ -"}


def _count(value: Any, unit: str) -> str:
    number = int(value) if isinstance(value, float) and value.is_integer() else value
    return f"{number} {unit}{'' if number == 1 else 's'}" if unit else str(number)


def _words(error: Mapping[str, Any]) -> str:
    """A pydantic error as the API says it: our sentence for its type and context, never
    pydantic's own text (which talks of "Input should be ..." to a user who typed no input)."""
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind in _PLAIN_WORDS:
        return _PLAIN_WORDS[kind]
    if kind == "string_too_short":
        return (
            "must not be empty"
            if ctx.get("min_length") == 1
            else f"must be at least {_count(ctx.get('min_length'), 'character')}"
        )
    if kind == "string_too_long":
        return f"must be at most {_count(ctx.get('max_length'), 'character')}"
    if kind == "too_short":
        return f"must have at least {_count(ctx.get('min_length'), 'item')}"
    if kind == "too_long":
        return f"must have at most {_count(ctx.get('max_length'), 'item')}"
    if kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        return f"{words} {_count(ctx.get(key), '')}"
    if kind in ("literal_error", "enum"):
        return f"must be {str(ctx.get('expected', '')).replace(chr(39), '')}"
    if kind == "string_pattern_mismatch":
        return _PATTERNS.get(str(ctx.get("pattern")), "has characters or a form that is not allowed here")
    if kind == "value_error" and "reason" in ctx:  # EmailStr: email-validator's reason is not ours
        return "must be an email address, like alerts@example.com"
    if kind in ("value_error", "assertion_error") and "error" in ctx:  # our validators' own sentences
        return str(ctx["error"])
    logger.warning("validation error without our words", extra={"error_type": kind})
    return "is not valid here"


def _field_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    detail = []
    for error in errors:
        loc, kind = list(error["loc"]), error["type"]
        # pydantic names the union member it tried (`body.twilio.credentials`): the client
        # sent no such level, so it is left out
        if len(loc) > 1 and loc[0] == "body" and loc[1] in UNION_TAGS:
            del loc[1]
        if kind == "union_tag_invalid":
            field, kind, message = _UNPLACED.get(error.get("ctx", {}).get("tag"), _UNPLACED[UNKNOWN_TYPE])
            loc += [field] if field else []
        else:
            message = _words(error)
        detail.append({"loc": loc, "field": field_name(loc), "msg": message, "type": kind})
    return detail


def _validation_failed(detail: list[dict[str, Any]]) -> Response:
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
        return _validation_failed(_field_errors(errors))

    @app.exception_handler(InvalidField)
    def _invalid_field(exc: InvalidField) -> Response:
        parts = [exc.location, *exc.field.replace("[", ".").replace("]", "").split(".")]
        loc: list[str | int] = [int(p) if p.isdigit() else p for p in parts]
        return _validation_failed([{"loc": loc, "field": field_name(loc), "msg": exc.message, "type": "value_error"}])

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
        method, path = app.current_event.http_method.upper(), app.current_event.path
        allowed = methods_of(app, path)
        if not allowed:
            return _error(HTTPStatus.NOT_FOUND, "no such route")
        use = " or ".join([", ".join(allowed[:-1]), allowed[-1]] if len(allowed) > 1 else allowed)
        answer = _error(HTTPStatus.METHOD_NOT_ALLOWED, f"{method} is not allowed on {path}: use {use}")
        answer.headers["Allow"] = ", ".join(allowed)
        return answer

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response:
        # Never echo the exception, nor log its text: it may hold a credential, a number or a
        # message. Its type and where it happened are enough to find the bug.
        logger.error("unhandled error", extra={"error_type": type(exc).__name__, "where": where(exc)})
        return _error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error; it has been logged")


def _routes(app: APIGatewayHttpResolver) -> list[Route]:
    return app._static_routes + app._dynamic_routes  # Powertools keeps no public list


def methods_of(app: APIGatewayHttpResolver, path: str) -> list[str]:
    """The methods `app` has routes for at `path` (for a 405's Allow)."""
    return sorted({route.method.upper() for route in _routes(app) if route.rule.match(path)})


def where(exc: BaseException) -> list[str]:
    """The frames an exception went through (file:line function), without its message."""
    return [f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in traceback.extract_tb(exc.__traceback__)][
        -6:
    ]


def _known_query_only(app: APIGatewayHttpResolver, next_middleware: Any) -> Any:
    """Refuse query parameters the route does not declare: `?limt=5` must not pass as no limit."""
    route = app.context.get("_route")
    # not for Powertools' own /swagger, nor for no route at all (a 404 or 405 says more)
    if route is not None and route.include_in_schema and route in _routes(app):
        declared = {p.alias for p in route.dependant.query_params}
        unknown = sorted(set(app.current_event.query_string_parameters or {}) - declared)
        if unknown:
            raise InvalidField(unknown[0], "is not a parameter of this route", "query")
    return next_middleware(app)


class _Resolver(APIGatewayHttpResolver):
    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> Any:
        """The document without the schemas no answer uses: Powertools adds its own validation
        error bodies, which ours replace on every route."""
        document = super().get_openapi_schema(*args, **kwargs)
        schemas = document.components.schemas if document.components else None
        if schemas:
            wanted: set[str] = set()
            found = _references(document.paths)
            while found - wanted:
                wanted |= found
                found = set().union(*(_references(schemas[name]) for name in wanted))
            for name in set(schemas) - wanted:
                del schemas[name]
        return document


def _references(value: Any) -> set[str]:
    return set(re.findall(r'"#/components/schemas/([^"]+)"', to_json(value, by_alias=True).decode()))


def create_app(*routers: Router) -> APIGatewayHttpResolver:
    app = _Resolver(enable_validation=True)
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
        if not _takes_body(app, event):  # a body where none belongs is ignored, unread
            event = {k: v for k, v in event.items() if k != "body"} | {"isBase64Encoded": False}
        refused = _unreadable(event)
        if refused:
            status, message = refused
            return {
                "statusCode": status.value,
                "headers": {"Content-Type": content_types.APPLICATION_JSON},
                "body": error_body(status, message),
            }
        return _ends_with_newline(app.resolve(event, context))

    return handle


def _takes_body(app: APIGatewayHttpResolver, event: dict[str, Any]) -> bool:
    """Whether the route the event is for declares a request body."""
    method = str(event.get("requestContext", {}).get("http", {}).get("method", "")).upper()
    path = event.get("rawPath", "")
    route = next((r for r in _routes(app) if r.method.upper() == method and r.rule.match(path)), None)
    return route is not None and bool(route.dependant.body_params)


def _ends_with_newline(answer: dict[str, Any]) -> dict[str, Any]:
    """Every JSON answer ends with a newline, as a terminal and a file expect of text."""
    headers = {k.lower(): v for k, v in (answer.get("headers") or {}).items()}
    body = answer.get("body")
    json_answer = headers.get("content-type", "").split(";")[0].strip() == content_types.APPLICATION_JSON
    if json_answer and isinstance(body, str) and body and not answer.get("isBase64Encoded") and body[-1] != "\n":
        answer["body"] = body + "\n"
    return answer
