"""Writes the example answers of README.md's API section from the API's real answers
(`make readme`); `tests/test_readme_api.py` fails when the README shows anything else.

The requests go through the local stack's HTTP adapter (the template's routes and its JWT
authorizer, every function) in this process, against moto: no server, no AWS account.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any
from unittest import mock

README = Path(__file__).resolve().parent.parent / "README.md"
START = "<!-- api-examples: written by scripts/api_examples.py (make readme) from real answers -->"
END = "<!-- /api-examples -->"
ENVIRONMENT = {  # what the functions read, as the tests set it
    "AWS_ACCESS_KEY_ID": "examples",
    "AWS_SECRET_ACCESS_KEY": "examples",
    "AWS_DEFAULT_REGION": "eu-north-1",
    "AWS_REGION": "eu-north-1",
    "TABLE_NAME": "sms-connector-examples",
    "TENANT_CLAIM": "tenant_id",
    "SECRET_PREFIX": "sms-connector/examples/",
    "EMAIL_IDENTITY": "example.com",
    "POWERTOOLS_SERVICE_NAME": "sms-connector",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "CRITICAL",
}
ELKS = {"username": "demo-user", "password": "demo-password"}
ON_CALL = {
    "type": "sms",
    "name": "On-call team",
    "provider": "46elks",
    "credentials": ELKS,
    "from": "MyCompany",
    "recipients": [{"to": "+46710000001", "backupEmail": "oncall@example.com"}],
}
# (what it shows, method, path, body); {emailConnectorId} is the email connector the SMS connectors use.
EXAMPLES: list[tuple[str, str, str, Any]] = [
    (
        "A field that fails validation: 422, each field named as you wrote it (`field`) and where it is (`loc`)",
        "POST",
        "/connectors",
        ON_CALL | {"name": "Typo", "recipients": [{"to": "0701234567"}]},
    ),
    (
        "A field left out",
        "PUT",
        "/connectors/{emailConnectorId}",
        {"name": "Alerts mail", "from": "alerts@example.com"},
    ),
    ("A method the path does not take: 405, with the methods it takes in `Allow`", "PATCH", "/connectors", None),
    (
        "An email connector that SMS connectors still send backup emails through: 409, nothing deleted",
        "DELETE",
        "/connectors/{emailConnectorId}",
        None,
    ),
]


def answers() -> list[tuple[str, str, str, Any, int, dict[str, str], str]]:
    """Each example's request and the answer the API gave it, on a fresh local stack."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from moto import mock_aws

    with mock.patch.dict(os.environ, ENVIRONMENT), mock_aws():
        import boto3

        from devstack import auth, resources, template
        from devstack.api_server import ApiServer
        from devstack.handlers import load
        from sms_connector import aws, config, credentials

        aws.reset()
        config.reset()
        credentials.forget()
        resources.create(
            ENVIRONMENT["AWS_DEFAULT_REGION"], resources.default_parameters(), table_name="sms-connector-examples"
        )
        boto3.client("sesv2").create_email_identity(EmailIdentity="example.com")
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        server = ApiServer({name: load(name) for name in template.functions()}, auth.Authorizer(key), port=0)
        headers = {"authorization": f"Bearer {auth.mint('demo', key=key)}", "content-type": "application/json"}
        try:

            def call(method: str, path: str, body: Any) -> tuple[int, dict[str, str], str]:
                data = json.dumps(body).encode() if body is not None else b""
                status, out, text = server.handle(method, path, headers, data)
                return status, out, text.decode()

            email = json.loads(
                call("POST", "/connectors", {"type": "email", "name": "Alerts mail", "from": "alerts@example.com"})[2]
            )
            call("POST", "/connectors", ON_CALL)
            call("POST", "/connectors", ON_CALL | {"name": "Night shift"})
            found = []
            for title, method, path, body in EXAMPLES:
                status, out, text = call(method, path.format(emailConnectorId=email["id"]), body)
                found.append((title, method, path, body, status, out, text))
            return found
        finally:
            server.stop()
            aws.reset()
            config.reset()
            credentials.forget()


def block() -> str:
    parts = [START]
    for title, method, path, body, status, headers, text in answers():
        request = f"{method} {path}" + (f"\n{json.dumps(body)}" if body is not None else "")
        extra = "".join(f"\n{name}: {value}" for name, value in sorted(headers.items()) if name != "Content-Type")
        answer = shown(json.loads(text))
        parts.append(f"{title}:\n\n```http\n{request}\n```\n\n```http\nHTTP/1.1 {status}{extra}\n\n{answer}\n```")
    parts.append(END)
    return "\n\n".join(parts)


def shown(body: dict[str, Any]) -> str:
    """An answer's JSON for a reader: one field a line, each `detail` entry on a line of its own."""
    lines = []
    for name, value in body.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            entries = (",\n" + " " * (len(name) + 6)).join(json.dumps(v, ensure_ascii=False) for v in value)
            lines.append(f'"{name}": [{entries}]')
        else:
            lines.append(f'"{name}": {json.dumps(value, ensure_ascii=False)}')
    return "{" + ",\n ".join(lines) + "}"


def render(readme: str) -> str:
    """`readme` with its examples block written anew."""
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(readme):
        raise SystemExit(f"README.md has no block between {START} and {END}")
    return pattern.sub(lambda _: block(), readme)


if __name__ == "__main__":
    README.write_text(render(README.read_text()))
    sys.stdout.write(f"wrote the API examples in {README.name}\n")
