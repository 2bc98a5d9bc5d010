"""The control-panel page: serves its own static files (`static/`), nothing else; wiring only.

`GET /` is the page; `GET /assets/{version}/{file}` its scripts and styles. The version is a
hash of the files, so an asset URL never changes meaning: it is cached for a year, while the
page itself is revalidated on every load (its ETag answers 304 when nothing changed).
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATIC = Path(__file__).resolve().parent / "static"
PAGE = "index.html"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
# Who may embed the page in a frame: CSP source expressions, separated by spaces.
DEFAULT_FRAME_ANCESTORS = "'self'"
_SOURCE = re.compile(r"'self'|'none'|\*|[a-z][a-z0-9+.-]*:|([a-z][a-z0-9+.-]*://)?(\*\.)?[a-z0-9.-]+(:(\d{1,5}|\*))?")

logger = logging.getLogger(__name__)


@dataclass
class File:
    body: bytes
    content_type: str
    etag: str
    _gzipped: bytes | None = None

    @property
    def gzipped(self) -> bytes:
        """Compressed when first asked for, not at cold start (most loads are 304s)."""
        if self._gzipped is None:
            self._gzipped = gzip.compress(self.body, mtime=0)
        return self._gzipped


def _file(body: bytes, suffix: str) -> File:
    digest = hashlib.sha256(body).hexdigest()[:20]
    return File(body, CONTENT_TYPES[suffix], f'"{digest}"')


def _load() -> tuple[str, File, dict[str, File]]:
    sources = {p.name: p.read_bytes() for p in sorted(STATIC.iterdir()) if p.suffix in CONTENT_TYPES}
    version = hashlib.sha256(b"".join(n.encode() + b"\0" + b for n, b in sources.items())).hexdigest()[:12]
    page = sources.pop(PAGE).replace(b"{{version}}", version.encode())
    return version, _file(page, ".html"), {name: _file(body, Path(name).suffix) for name, body in sources.items()}


VERSION, INDEX, ASSETS = _load()


def frame_ancestors(value: str | None) -> str:
    """The `frame-ancestors` sources from FRAME_ANCESTORS, or the default when it is not a clean list
    (a `;` or a newline there would let a setting rewrite the whole policy)."""
    if value is None or not value.strip():
        return DEFAULT_FRAME_ANCESTORS
    sources = value.split(" ")
    if all(_SOURCE.fullmatch(s.lower()) for s in sources if s):
        return " ".join(s for s in sources if s)
    logger.warning("FRAME_ANCESTORS is not a list of CSP sources; using %s", DEFAULT_FRAME_ANCESTORS)
    return DEFAULT_FRAME_ANCESTORS


def content_security_policy() -> str:
    return _policy(os.environ.get("FRAME_ANCESTORS"))


@functools.cache
def _policy(ancestors: str | None) -> str:
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        f"base-uri 'none'; form-action 'none'; frame-ancestors {frame_ancestors(ancestors)}; "
        "require-trusted-types-for 'script'; trusted-types 'none'"
    )


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    params = event.get("pathParameters") or {}
    if event.get("routeKey") == "GET /":
        found, cache = INDEX, "no-cache"
    else:
        asset = ASSETS.get(params.get("file", ""))  # only our own files, by exact name: no paths at all
        if asset is None:
            return _answer(404, "text/plain; charset=utf-8", b"Not Found", "no-store")
        # An old version's URL still gets today's file, but must not be cached as that version.
        current = params.get("version") == VERSION
        found, cache = asset, ("public, max-age=31536000, immutable" if current else "no-cache")
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    if found.etag in (t.strip() for t in headers.get("if-none-match", "").split(",")):
        return _answer(304, found.content_type, b"", cache, etag=found.etag)
    if "gzip" in headers.get("accept-encoding", ""):
        return _answer(200, found.content_type, found.gzipped, cache, etag=found.etag, encoding="gzip")
    return _answer(200, found.content_type, found.body, cache, etag=found.etag)


def _answer(
    status: int, content_type: str, body: bytes, cache: str, *, etag: str | None = None, encoding: str | None = None
) -> dict[str, Any]:
    headers = {
        "Content-Type": content_type,
        "Cache-Control": cache,
        "Content-Security-Policy": content_security_policy(),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Vary": "Accept-Encoding",
    }
    if etag:
        headers["ETag"] = etag
    if encoding:
        headers["Content-Encoding"] = encoding  # compressed bytes travel base64-encoded
    text = base64.b64encode(body).decode() if encoding else body.decode()
    return {"statusCode": status, "headers": headers, "body": text, "isBase64Encoded": encoding is not None}
