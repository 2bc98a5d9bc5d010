"""The local HTTP API: requests become API Gateway HTTP API (payload 2.0) events for the
function the template routes them to, after the JWT checks its authorizer would make."""

from __future__ import annotations

import base64
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from re import Pattern
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from . import template
from .apigw import http_event
from .auth import Authorizer
from .lambda_context import LambdaContext

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
# One line per request (method, path, status, time; never a body, a header or a query value).
# `make run` prints them; tests stay quiet unless they configure this logger.
request_log = logging.getLogger("devstack.requests")


@dataclass
class Route:
    method: str
    path: str
    pattern: Pattern[str]
    function: str
    timeout: int
    authorized: bool


def routes_from_template() -> list[Route]:
    """Every route of the template's HTTP APIs (the JWT-protected one and the receipts API):
    locally, one server serves them all."""
    found = []
    for fn in template.functions().values():
        for method, path, authorized in fn.routes:
            found.append(Route(method, path, template.route_pattern(path), fn.name, fn.timeout, authorized))
    # Literal paths before templated ones, as API Gateway prefers the most specific route.
    return sorted(found, key=lambda r: r.path.count("{"))


class ApiServer:
    def __init__(
        self,
        handlers: dict[str, Handler],
        authorizer: Authorizer,
        *,
        host: str = "127.0.0.1",
        port: int = 3000,
        extra: dict[str, Callable[[], Any]] | None = None,
    ) -> None:
        """`extra`: local-only JSON routes, keyed by path (GET) or by "METHOD path"."""
        self.routes = routes_from_template()
        self.handlers = handlers
        self.authorizer = authorizer
        self.extra = extra or {}
        # Powertools keeps the current event on a class attribute shared by every resolver of the
        # process: one invocation at a time keeps functions from seeing each other's requests.
        self.lock = threading.Lock()
        server = self

        class RequestHandler(_RequestHandler):
            api = server

        self._server = _Server((host, port), RequestHandler)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> ApiServer:
        threading.Thread(target=self._server.serve_forever, name="api", daemon=True).start()
        self._serving = True
        return self

    def stop(self) -> None:
        if getattr(self, "_serving", False):  # shutdown() waits for a serve_forever that never ran
            self._server.shutdown()
        self._server.server_close()

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict, bytes]:
        parts = urlsplit(raw_path)
        path = parts.path
        local = self.extra.get(f"{method} {path}") or (self.extra.get(path) if method == "GET" else None)
        if local is not None:
            return 200, {"Content-Type": "application/json"}, (json.dumps(local(), indent=2) + "\n").encode()
        matches = [(r, m) for r in self.routes if (m := r.pattern.match(path))]
        # A route of the request's own method wins over an ANY route, as in API Gateway.
        chosen = next(((r, m) for r, m in matches if r.method == method), None) or next(
            ((r, m) for r, m in matches if r.method == "ANY"), None
        )
        if chosen is None:
            return _json(404, "no such route")
        route, match = chosen
        claims = None
        if route.authorized:
            claims = self.authorizer.claims(headers.get("authorization"))
            if claims is None:
                return _json(401, "Unauthorized")
        payload: Any
        try:
            payload = body.decode("utf-8") if body else None
        except UnicodeDecodeError:
            payload = body
        event = http_event(
            method,
            path,
            route=route.path,
            path_parameters=match.groupdict() or None,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)) or None,
            headers=headers,
            body=payload,
            claims=claims,
        )
        event["rawQueryString"] = parts.query
        with self.lock:
            answer = self.handlers[route.function](event, LambdaContext(route.function, route.timeout))
        out_body = answer.get("body") or ""
        data = base64.b64decode(out_body) if answer.get("isBase64Encoded") else out_body.encode()
        out_headers = dict(answer.get("headers") or {})
        for name, values in (answer.get("multiValueHeaders") or {}).items():
            out_headers[name] = ", ".join(values)
        return int(answer.get("statusCode", 200)), out_headers, data


def _json(status: int, message: str) -> tuple[int, dict, bytes]:
    """An answer of the gateway itself, in the shape and format of the functions' errors.
    (API Gateway's own answers are `{"message": ...}`; an HTTP API cannot reshape them.)"""
    body = {"statusCode": status, "message": message}
    return status, {"Content-Type": "application/json"}, (json.dumps(body, separators=(",", ":")) + "\n").encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up early is no news; anything else is one line, not a traceback."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            return
        request_log.warning("request from %s:%s failed: %r", *client_address[:2], error)


class _RequestHandler(BaseHTTPRequestHandler):
    api: ApiServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        started = time.perf_counter()
        try:
            status = self._answer()
        except (ConnectionError, TimeoutError):
            status = 0  # the client hung up
            self.close_connection = True
        if request_log.isEnabledFor(logging.INFO):
            request_log.info(
                "%s %s %s %.0f ms",
                self.command,
                _loggable(self.path),
                status or "(client disconnected)",
                (time.perf_counter() - started) * 1000,
            )

    def _answer(self) -> int:
        length = int(self.headers.get("Content-Length") or 0)
        if length > 10 * 1024 * 1024:  # API Gateway's own payload limit
            status, headers, data = _json(413, "Request Entity Too Large")
        else:
            body = self.rfile.read(length) if length else b""
            headers_in = {k.lower(): v for k, v in self.headers.items()}
            try:
                status, headers, data = self.api.handle(self.command, self.path, headers_in, body)
            except Exception:  # a crash of the function: what API Gateway answers
                status, headers, data = _json(500, "Internal Server Error")
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":  # a HEAD answer has headers only
            self.wfile.write(data)
        return status

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve


_SECRET_IN_PATH = re.compile(r"^(/receipts/46elks/[^/]+/)[^/]+")  # the 46elks receipt token


def _loggable(raw_path: str) -> str:
    """The path (less the 46elks receipt token), and the query's parameter names only (a value
    could be a token or a number)."""
    parts = urlsplit(raw_path)
    names = [name for name, _ in parse_qsl(parts.query, keep_blank_values=True)]
    path = _SECRET_IN_PATH.sub(r"\1{token}", parts.path)
    return path + ("?" + "&".join(f"{name}=..." for name in names) if names else "")


def wsgi_app(api: ApiServer) -> Callable[[dict[str, Any], Callable[..., Any]], list[bytes]]:
    """The same routing and authorizer as a WSGI app (for in-process API fuzzing)."""
    from http import HTTPStatus

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        path = environ.get("RAW_URI") or environ.get("PATH_INFO", "/")
        if environ.get("QUERY_STRING") and "?" not in path:
            path += "?" + environ["QUERY_STRING"]
        status, out_headers, data = api.handle(environ["REQUEST_METHOD"], path, headers, body)
        start_response(f"{status} {HTTPStatus(status).phrase}", list(out_headers.items()))
        return [data]

    return app
