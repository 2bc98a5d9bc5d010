"""A Python integrator's view: a client generated from the OpenAPI document the local stack
serves (openapi-python-client, as its users run it), driven over every route, its answers typed.

What the generated client cannot call (a method a path does not take) goes through its own
httpx client and is parsed with its models, as an integrator would.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from devstack import auth
from tests.conftest import Local

pytestmark = pytest.mark.e2e

PACKAGE = "sms_connector_api_client"
GENERATOR = Path(sys.executable).parent / "openapi-python-client"


class Generated:
    """The generated package: `generated.api("connectors.create_connector")`, `generated.model("ErrorBody")`."""

    def __init__(self, package: ModuleType) -> None:
        self.package = package

    def api(self, name: str) -> Any:
        return importlib.import_module(f"{PACKAGE}.api.{name}")

    def model(self, name: str) -> Any:
        return getattr(importlib.import_module(f"{PACKAGE}.models"), name)

    def client(self, local: Local, token: str | None) -> Any:
        if token is None:
            return self.package.Client(base_url=local.url, raise_on_unexpected_status=True)
        return self.package.AuthenticatedClient(base_url=local.url, token=token, raise_on_unexpected_status=True)


@pytest.fixture(scope="module")
def generated(local: Local, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Generated]:
    # Given the document the running service serves (no token needed)
    status, document = local.call("GET", "/swagger?format=json", token=None)
    assert status == 200
    folder = tmp_path_factory.mktemp("client")
    (folder / "openapi.json").write_text(json.dumps(document))
    # no formatting hook: the generator would run ruff on the output, which changes nothing here
    (folder / "config.json").write_text(json.dumps({"post_hooks": []}))
    out = folder / PACKAGE
    # When a client is generated from it
    run = subprocess.run(
        [
            *(str(GENERATOR), "generate", "--path", str(folder / "openapi.json")),
            *("--output-path", str(out), "--config", str(folder / "config.json"), "--meta", "none"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Then the generator understood all of it: no warning, no skipped piece
    assert run.returncode == 0 and "Warning" not in run.stdout + run.stderr, run.stdout + run.stderr
    spec = importlib.util.spec_from_file_location(PACKAGE, out / "__init__.py", submodule_search_locations=[str(out)])
    assert spec and spec.loader
    package = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = package
    spec.loader.exec_module(package)
    yield Generated(package)
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
        del sys.modules[name]


def test_every_route_through_a_generated_client(local: Local, generated: Generated) -> None:
    api, model = generated.api, generated.model
    client = generated.client(local, auth.mint("generated-client"))
    unset = importlib.import_module(f"{PACKAGE}.types").UNSET

    # Create: an email connector, and SMS connectors of two providers (typed per kind)
    email = api("connectors.create_connector").sync(
        client=client, body=model("EmailConnector")(type_="email", name="Alerts", from_="alerts@example.com")
    )
    assert isinstance(email, model("EmailConnectorOut")) and isinstance(email.created_at, datetime)
    elks_body = model("Elks46Connector")(
        type_="sms",
        name="On-call",
        provider="46elks",
        credentials=model("Elks46Credentials")(username="demo-user", password="demo-password"),
        from_="MyCompany",
        recipients=[model("Recipient")(to="+46710000001", backup_email="oncall@example.com")],
    )
    elks = api("connectors.create_connector").sync(client=client, body=elks_body)
    assert isinstance(elks, model("Elks46ConnectorOut"))
    assert elks.credentials.username == "demo-user" and elks.email_connector_id == email.id
    assert elks.recipients[0].opted_out is False and elks.limits is unset
    telnyx = api("connectors.create_connector").sync(
        client=client,
        body=model("TelnyxConnector")(
            type_="sms",
            name="Telnyx",
            provider="telnyx",
            credentials=model("TelnyxCredentials")(api_key="KEY_demo"),
            from_="+46700000300",
            recipients=[model("Recipient")(to="+46710000002")],
        ),
    )
    assert isinstance(telnyx, model("TelnyxConnectorOut")) and telnyx.webhook_public_key is unset
    assert telnyx.recipients[0].backup_email is unset

    # List, page by page: a typed token, and none after the last page
    seen, token = [], unset
    while True:
        page = api("connectors.list_connectors").sync(client=client, limit=2, next_token=token)
        seen += [c.id for c in page.items]
        if page.next_token is None:
            break
        token = page.next_token
        assert isinstance(token, str)
    assert seen == [email.id, elks.id, telnyx.id]
    sms_only = api("connectors.list_connectors").sync(client=client, type_=model("ListConnectorsType").SMS)
    assert [c.id for c in sms_only.items] == [elks.id, telnyx.id]

    # Read, replace (credentials left out keep theirs), verify
    assert api("connectors.get_connector").sync(elks.id, client=client).name == "On-call"
    update = model("Elks46ConnectorUpdate").from_dict(elks_body.to_dict() | {"name": "Night shift"})
    update.credentials = unset
    replaced = api("connectors.replace_connector").sync(elks.id, client=client, body=update)
    assert replaced.name == "Night shift" and replaced.credentials.username == "demo-user"
    verdict = api("connectors.verify_connector").sync(elks.id, client=client)
    assert isinstance(verdict, model("VerifyOut")) and verdict.ok is True

    # Test send: without a body (all recipients, the default text), and with one
    sent = api("sending.test_send").sync(elks.id, client=client)
    assert isinstance(sent, model("TestSendOut")) and [r.to for r in sent.results] == ["+46710000001"]
    sent = api("sending.test_send").sync(
        elks.id, client=client, body=model("TestSendIn")(to="+46710000001", message="ping")
    )
    assert sent.results[0].status == model("SendResultStatus").SENT

    # Statistics, log, preview
    figures = api("statistics.get_stats").sync(elks.id, client=client)
    assert isinstance(figures, model("StatsOut")) and figures.total_sent == 2
    assert isinstance(figures.last_sent_at, datetime)
    log = api("statistics.get_logs").sync(elks.id, client=client, limit=5)
    assert isinstance(log, model("LogPage")) and log.next_token is None
    preview = api("sending.preview").sync(
        client=client, body=model("PreviewIn")(message="Door open ✓", provider=model("PreviewInProviderType0").ELKS46)
    )
    assert preview.encoding == model("PreviewOutEncoding").UCS_2 and preview.ucs_2_characters == ["✓"]

    # Errors, each a typed body
    refused = api("connectors.create_connector").sync(
        client=client,
        body=model("TwilioConnector").from_dict(
            {
                "type": "sms",
                "name": "Typo",
                "provider": "twilio",
                "credentials": {"accountSid": "XX", "authToken": "t"},
                "from": "+46700000000",
                "recipients": [{"to": "0701234567"}],
            }
        ),
    )
    assert isinstance(refused, model("ValidationErrorBody")) and refused.status_code == 422
    assert sorted(d.field for d in refused.detail) == ["credentials.accountSid", "recipients[0].to"]
    on_email = api("sending.test_send").sync(email.id, client=client)
    assert isinstance(on_email, model("ValidationErrorBody")) and on_email.detail[0].field == "connectorId"
    in_use = api("connectors.delete_connector").sync_detailed(email.id, client=client)
    assert in_use.status_code == 409 and "'Night shift'" in in_use.parsed.message
    missing = api("connectors.get_connector").sync("01UNKNOWN", client=client)
    assert isinstance(missing, model("ErrorBody")) and missing.status_code == 404
    wrong_method = client.get_httpx_client().request("PATCH", "/connectors")
    assert wrong_method.status_code == 405 and wrong_method.headers["Allow"] == "GET, POST"
    assert model("ErrorBody").from_dict(wrong_method.json()).status_code == 405
    no_token = api("connectors.list_connectors").sync(client=generated.client(local, None))
    assert isinstance(no_token, model("GatewayErrorBody")) and no_token.message == "Unauthorized"
    no_tenant = api("connectors.list_connectors").sync(client=generated.client(local, auth.mint(None)))
    assert isinstance(no_tenant, model("ErrorBody")) and no_tenant.status_code == 403

    # Delete: the SMS connectors, then the email connector they used
    for connector in (elks, telnyx, email):
        assert api("connectors.delete_connector").sync_detailed(connector.id, client=client).status_code == 204
