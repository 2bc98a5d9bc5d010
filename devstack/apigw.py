"""API Gateway HTTP API (payload format 2.0) events, as the real service builds them."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode


def http_event(
    method: str,
    path: str,
    *,
    route: str | None = None,
    path_parameters: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    body: Any = None,
    claims: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An event for `method path`. A dict/list body is sent as JSON; bytes as base64."""
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    raw: str | None
    encoded = False
    if body is None:
        raw = None
    elif isinstance(body, bytes):
        raw, encoded = base64.b64encode(body).decode(), True
    elif isinstance(body, str):
        raw = body
    else:
        raw = json.dumps(body)
        headers.setdefault("content-type", "application/json")
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": f"{method} {route or path}",
        "rawPath": path,
        "rawQueryString": urlencode(query or {}),
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": f"{method} {route or path}",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": encoded,
    }
    if query:
        event["queryStringParameters"] = dict(query)
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if raw is not None:
        event["body"] = raw
    if claims is not None:
        event["requestContext"]["authorizer"] = {
            "jwt": {"claims": {k: str(v) for k, v in claims.items()}, "scopes": None}
        }
    return event
