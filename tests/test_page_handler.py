"""The control panel's handler: its own files only, with the right types, caching and security headers."""

from __future__ import annotations

import base64
import gzip
import re
from typing import Any

import pytest

from devstack.apigw import http_event
from devstack.handlers import load
from devstack.lambda_context import LambdaContext

ASSETS_ROUTE = "/assets/{version}/{file}"


def page_module() -> Any:
    import sys

    load("PageFunction")
    return sys.modules["_function_PageFunction"]


def get(path: str, *, route: str | None = None, params: dict[str, str] | None = None, **headers: str) -> dict[str, Any]:
    event = http_event("GET", path, route=route or path, path_parameters=params, headers=headers)
    return load("PageFunction")(event, LambdaContext("page"))


def asset(file: str, version: str | None = None, **headers: str) -> dict[str, Any]:
    version = version or page_module().VERSION
    return get(f"/assets/{version}/{file}", route=ASSETS_ROUTE, params={"version": version, "file": file}, **headers)


def test_the_page_is_html_revalidated_on_every_load_and_names_versioned_assets() -> None:
    # When the page is asked for
    answer = get("/")
    # Then it is HTML that the browser revalidates, and its assets carry today's version
    assert answer["statusCode"] == 200
    assert answer["headers"]["Content-Type"] == "text/html; charset=utf-8"
    assert answer["headers"]["Cache-Control"] == "no-cache"
    version = page_module().VERSION
    assert f'src="assets/{version}/main.js"' in answer["body"]
    assert f'href="assets/{version}/app.css"' in answer["body"]
    assert "{{version}}" not in answer["body"]


@pytest.mark.parametrize(
    ("file", "content_type"),
    [
        ("main.js", "text/javascript; charset=utf-8"),
        ("app.css", "text/css; charset=utf-8"),
        ("icon.svg", "image/svg+xml"),
    ],
)
def test_assets_have_their_content_type_and_are_cached_for_good(file: str, content_type: str) -> None:
    answer = asset(file)
    assert answer["statusCode"] == 200
    assert answer["headers"]["Content-Type"] == content_type
    assert answer["headers"]["Cache-Control"] == "public, max-age=31536000, immutable"


def test_an_old_versions_url_gets_todays_file_without_the_long_cache() -> None:
    answer = asset("main.js", version="000000000000")
    assert answer["statusCode"] == 200 and answer["headers"]["Cache-Control"] == "no-cache"


@pytest.mark.parametrize(
    "file",
    ["nothing.js", "index.html", "app.py", "../app.py", "..%2Fapp.py", "%2e%2e/app.py", "/etc/passwd", "", "MAIN.JS"],
)
def test_only_the_pages_own_files_are_served(file: str) -> None:
    # Given a name that is not one of the static files (the page itself is served at / only)
    answer = asset(file)
    # Then it is a 404 that reveals nothing
    assert answer["statusCode"] == 404
    assert answer["body"] == "Not Found"
    assert answer["headers"]["Cache-Control"] == "no-store"


def test_every_answer_carries_the_security_headers() -> None:
    for answer in (get("/"), asset("main.js"), asset("missing.js")):
        headers = answer["headers"]
        csp = headers["Content-Security-Policy"]
        for directive in (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'self'",
        ):
            assert directive in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("'self' https://platform.example.com", "'self' https://platform.example.com"),
        ("https://*.example.com:8443", "https://*.example.com:8443"),
        ("'none'", "'none'"),
        ("", "'self'"),
        ("https://x.example; script-src *", "'self'"),  # would rewrite the policy
        ("https://x.example\nscript-src *", "'self'"),
    ],
)
def test_frame_ancestors_come_from_the_environment_when_they_are_clean(
    setting: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRAME_ANCESTORS", setting)
    csp = get("/")["headers"]["Content-Security-Policy"]
    assert re.search(r"frame-ancestors ([^;]*);", csp).group(1) == expected  # type: ignore[union-attr]


def test_an_unchanged_file_answers_304_and_a_gzip_client_gets_gzip() -> None:
    first = asset("main.js")
    again = asset("main.js", **{"if-none-match": first["headers"]["ETag"]})
    assert again["statusCode"] == 304 and again["body"] == ""
    zipped = asset("main.js", **{"accept-encoding": "gzip, br"})
    assert zipped["headers"]["Content-Encoding"] == "gzip" and zipped["isBase64Encoded"] is True
    assert gzip.decompress(base64.b64decode(zipped["body"])).decode() == first["body"]


def test_the_page_has_no_inline_script_style_or_handler() -> None:
    body = get("/")["body"]
    assert not re.search(r"<script(?![^>]*\bsrc=)", body)
    assert "<style" not in body and "style=" not in body
    assert not re.search(r"\son[a-z]+=", body)


def test_make_run_prints_the_page_with_the_demo_token() -> None:
    from devstack.__main__ import _banner

    state = {
        "apiUrl": "http://127.0.0.1:3000",
        "swaggerUrl": "http://127.0.0.1:3000/swagger",
        "motoUrl": "http://127.0.0.1:5050",
        "sendQueueUrl": "q",
        "simulatorUrl": "http://127.0.0.1:4010",
        "region": "eu-north-1",
        "ports": {"api": 3000, "moto": 5050, "simulators": 4010},
        "emailIdentity": "example.com",
        "tenant": "demo",
        "token": "eyJ.demo.token",
        "demoConnectors": {},
    }
    assert "http://127.0.0.1:3000/#token=eyJ.demo.token\n" in _banner(state)
