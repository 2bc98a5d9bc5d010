"""Writes the OpenAPI document from the code (`make openapi`) to functions/docs/openapi.json,
which the docs function serves; a test keeps the two in step."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sms_connector.api import openapi_document
from sms_connector.routes.everything import full_app

OUT = Path(__file__).resolve().parent.parent / "functions" / "docs" / "openapi.json"


def render() -> str:
    return json.dumps(openapi_document(full_app()), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    OUT.write_text(render())
    sys.stdout.write(f"wrote {OUT.relative_to(OUT.parents[2])}\n")
