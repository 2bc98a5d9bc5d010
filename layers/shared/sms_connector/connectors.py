"""Connector use cases: create, read, list, replace and delete, for one tenant at a time."""

from __future__ import annotations

import copy
import secrets
import time
from typing import Any

from pydantic import BaseModel, ValidationError

from . import clock, connector_store, credentials, dynamo, health, ids, senders
from .config import settings
from .errors import Conflict, InvalidField, NotFound, Unavailable
from .models.connectors import (
    CONNECTORS_OUT,
    CREDENTIALS,
    PUBLIC_CREDENTIAL_FIELDS,
    ConnectorOut,
    ConnectorPage,
    EmailConnector,
    VerifyOut,
)
from .providers.base import AccountCheck, amount_text
from .receipts import PREVIOUS_TOKEN_FIELD, PREVIOUS_UNTIL_FIELD, TOKEN_FIELD


def show(record: dict[str, Any]) -> ConnectorOut:
    """A stored connector as the API shows it: no secret values, no field without a value."""
    shown: dict[str, Any] = {k: record[k] for k in ("id", "type", "name", "from", "createdAt", "updatedAt")}
    if record["type"] == "sms":
        shown |= {
            "provider": record["provider"],
            "recipients": [r | {"optedOut": bool(r.get("optedOut"))} for r in record["recipients"]],
            "receipts": receipts_on(record),
        }
        shown |= {k: record[k] for k in ("emailConnectorId", "limits", "webhookPublicKey") if record.get(k)}
        if PUBLIC_CREDENTIAL_FIELDS[record["provider"]]:
            shown["credentials"] = record.get("publicCredentials") or {}
    model = CONNECTORS_OUT[record["provider"] if record["type"] == "sms" else "email"]
    return model.model_validate(shown)  # type: ignore[return-value]


def receipts_on(record: dict[str, Any]) -> bool:
    """Whether this connector's SMS ask for delivery receipts (DESIGN.md, Delivery receipts)."""
    if not settings().public_api_url:
        return False
    return record.get("provider") != "telnyx" or bool(record.get("webhookPublicKey"))


def create(tenant_id: str, body: BaseModel, deadline: float) -> ConnectorOut:
    """Store a new connector; with `"verify": true` only once its provider accepted the
    credentials (checked before anything is saved, within `deadline`: time.monotonic())."""
    now = clock.iso(clock.now())
    record = _settings(tenant_id, body) | {"id": ids.ulid(), "tenantId": tenant_id, "createdAt": now, "updatedAt": now}
    checked = None
    if record["type"] == "sms":
        _keep_opt_outs(record["recipients"], [])
    if record["type"] == "sms":
        values = body.credentials.model_dump()  # type: ignore[attr-defined]
        checked = _verified(record, values, body, deadline)
        stored = values | ({TOKEN_FIELD: new_token()} if record["provider"] == "46elks" else {})
        record["secretArn"], record["secretVersion"] = credentials.create(record["id"], tenant_id, stored)
        record["publicCredentials"] = _public(record["provider"], values)
    try:
        connector_store.put_new(record)
    except Exception:
        if "secretArn" in record:  # don't leave a secret behind for a connector that does not exist
            credentials.delete(record["secretArn"])
        raise
    if checked:
        health.remember(record, checked)
    return show(record)


def list_page(tenant_id: str, connector_type: str | None, limit: int, token: str | None) -> ConnectorPage:
    start = dynamo.decode_token(token, partition={"gsi1pk": connector_store.tenant_pk(tenant_id)})
    records, last = connector_store.list_for_tenant(tenant_id, connector_type=connector_type, limit=limit, start=start)
    return ConnectorPage(items=[show(r) for r in records], nextToken=dynamo.encode_token(last))


def replace(tenant_id: str, connector_id: str, body: BaseModel, deadline: float) -> ConnectorOut:
    """Replace a connector's settings; with `"verify": true` only once its provider accepted the
    credentials as they will be (nothing changes otherwise)."""
    stored = connector_store.owned(tenant_id, connector_id)
    changes = _settings(tenant_id, body)
    if changes["type"] != stored["type"]:
        raise InvalidField("type", f"cannot change from {stored['type']} to {changes['type']}; create a new connector")
    record = {k: v for k, v in stored.items() if k in ("id", "tenantId", "createdAt", "secretArn", "secretVersion")}
    asked = copy.deepcopy(changes.get("recipients"))
    if changes["type"] == "sms":
        _keep_opt_outs(changes["recipients"], stored.get("recipients", []))
    record |= changes | {"updatedAt": clock.iso(clock.now())}
    checked = None
    if record["type"] == "sms":
        values = _merged_credentials(stored, record["provider"], getattr(body, "credentials", None))
        checked = _verified(record, values, body, deadline)
        if not checked and _same_account(stored, record, values):
            _keep(stored, record, health.CURRENCY_FIELD)
        secret = credentials.read(stored["secretArn"], stored["secretVersion"])
        if values != {k: v for k, v in secret.items() if not k.startswith("_")}:
            record["secretVersion"] = credentials.replace(stored["secretArn"], values | _renewed_token(record, secret))
        record["publicCredentials"] = _public(record["provider"], values)
    for _ in range(5):
        if connector_store.replace(record, opt_outs_at=stored.get(connector_store.OPT_OUTS_AT)):
            break
        # gone, or a send marked a recipient opted out since the read: keep that mark too
        fresh = connector_store.get(connector_id)
        if fresh is None or fresh.get("tenantId") != tenant_id or fresh.get("deleting"):
            raise NotFound()
        stored = fresh
        if asked is not None:
            record["recipients"] = copy.deepcopy(asked)
            _keep_opt_outs(record["recipients"], stored.get("recipients", []))
    else:
        raise Unavailable("recipients kept being marked opted out while saving; try again")
    if checked:
        health.remember(record, checked)
    return show(record)


def verify(tenant_id: str, connector_id: str, deadline: float) -> VerifyOut:
    """Check a connector's stored credentials with its provider now; keep what the answer
    teaches (a 46elks account's currency, a low balance as a warning)."""
    record = connector_store.owned(tenant_id, connector_id)
    if record["type"] != "sms":
        raise InvalidField(
            "connectorId", "is an email connector: only SMS connectors have provider credentials to verify", "path"
        )
    secret = credentials.read(record["secretArn"], record["secretVersion"])
    values = {k: v for k, v in secret.items() if not k.startswith("_")}  # the receipt token is not a credential
    result = health.check(record["provider"], values, deadline)
    health.remember(record, result)
    return VerifyOut(
        ok=result.ok,
        detail=health.detail(record["provider"], result),
        balance=amount_text(result.balance) if result.balance is not None else None,
        currency=result.currency if result.balance is not None else None,
    )


def delete(tenant_id: str, connector_id: str) -> None:
    stored = connector_store.owned(tenant_id, connector_id)
    if stored["type"] == "email":
        _refuse_if_used(stored)
    if "secretArn" in stored:
        credentials.delete(stored["secretArn"])
    connector_store.delete_partition(connector_id)


# --- helpers ------------------------------------------------------------------------------


def _refuse_if_used(email: dict[str, Any]) -> None:
    """An email connector that SMS connectors send backup emails through stays (409): deleting
    it would leave their backups going nowhere, found only when an SMS fails."""
    users = connector_store.sms_connectors_using(email["tenantId"], email["id"])
    if users:
        names = ", ".join(sorted(f"'{u['name']}'" for u in users))
        count = f"{len(users)} SMS connector{'s' if len(users) > 1 else ''}"
        raise Conflict(f"email connector '{email['name']}' is used by {count}: {names}; change them first")


def _settings(tenant_id: str, body: BaseModel) -> dict[str, Any]:
    """The stored form of a validated request body, without credentials."""
    if isinstance(body, EmailConnector):
        senders.check(str(body.sender))
        return {"type": "email", "name": body.name, "from": str(body.sender)}
    data = body.model_dump(by_alias=True, exclude={"credentials"})
    recipients = [{k: v for k, v in r.items() if v is not None} for r in data["recipients"]]
    settings_ = {
        "type": "sms",
        "name": data["name"],
        "provider": data["provider"],
        "from": data["from"],
        "recipients": recipients,
        "emailConnectorId": _email_connector_for(tenant_id, data.get("emailConnectorId"), recipients),
    }
    if data.get("webhookPublicKey"):
        settings_["webhookPublicKey"] = data["webhookPublicKey"]
    limits = {k: v for k, v in (data.get("limits") or {}).items() if v is not None}
    if limits:
        settings_["limits"] = limits
    return settings_


def _email_connector_for(tenant_id: str, named: str | None, recipients: list[dict[str, Any]]) -> str | None:
    """Check the backup-email rule; returns the email connector the backups will go through."""
    if named:
        record = connector_store.get(named)
        if record is None or record.get("tenantId") != tenant_id or record.get("type") != "email":
            raise InvalidField("emailConnectorId", "is not an email connector of this tenant")
        return named
    needing = [i for i, r in enumerate(recipients) if r.get("backupEmail")]
    if not needing:
        return None
    found, _ = connector_store.list_for_tenant(tenant_id, connector_type="email", limit=2, start=None)
    if not found:
        raise InvalidField(
            f"recipients[{needing[0]}].backupEmail",
            "needs an email connector: create one (type email) before adding backup emails",
        )
    if len(found) > 1:
        raise InvalidField("emailConnectorId", "is required: this tenant has several email connectors; name one")
    return str(found[0]["id"])


def _merged_credentials(stored: dict[str, Any], provider: str, given: BaseModel | None) -> dict[str, str]:
    """Credentials after a PUT: fields left out keep their stored values (same provider only)."""
    changes = given.model_dump(exclude_none=True) if given else {}
    base = credentials.read(stored["secretArn"], stored["secretVersion"]) if provider == stored["provider"] else {}
    base = {k: v for k, v in base.items() if not k.startswith("_")}  # the receipt token is not a credential
    try:
        model = CREDENTIALS[provider].model_validate(base | changes)
    except ValidationError as exc:
        missing = ".".join(str(p) for p in exc.errors()[0]["loc"])
        raise InvalidField(f"credentials.{missing}", "is required when the provider changes") from None
    return model.model_dump()


def _keep_opt_outs(recipients: list[dict[str, Any]], stored: list[dict[str, Any]]) -> None:
    """A PUT that leaves `optedOut` out keeps the mark the service set; false clears it."""
    marked = {r["to"] for r in stored if r.get("optedOut")}
    for r in recipients:
        if r.get("optedOut") is None and r["to"] in marked:
            r["optedOut"] = True
        if not r.get("optedOut"):
            r.pop("optedOut", None)


def new_token() -> str:
    return secrets.token_urlsafe(24)


def _renewed_token(record: dict[str, Any], secret: dict[str, str]) -> dict[str, str]:
    """New credentials, new 46elks receipt token; the previous one keeps working for the SMS
    sent with it until their receipt deadline."""
    if record["provider"] != "46elks":
        return {}
    fields = {TOKEN_FIELD: new_token()}
    if secret.get(TOKEN_FIELD):
        until = time.time() + settings().receipt_deadline_minutes * 60 + 3600
        fields |= {PREVIOUS_TOKEN_FIELD: secret[TOKEN_FIELD], PREVIOUS_UNTIL_FIELD: str(int(until))}
    return fields


def _verified(record: dict[str, Any], values: dict[str, str], body: BaseModel, deadline: float) -> AccountCheck | None:
    """The provider's verdict when the body asks for one (refused: 422, unreachable: 503)."""
    if not getattr(body, "verify", False):
        return None
    result = health.require_accepted(record["provider"], values, deadline)
    if record["provider"] == "46elks" and result.currency:
        record[health.CURRENCY_FIELD] = result.currency
    return result


def _same_account(stored: dict[str, Any], record: dict[str, Any], values: dict[str, str]) -> bool:
    """Whether a PUT leaves the connector on the same provider account (46elks: same username)."""
    if stored.get("provider") != record["provider"]:
        return False
    shown = stored.get("publicCredentials") or {}
    return all(shown.get(k) == values.get(k) for k in PUBLIC_CREDENTIAL_FIELDS[record["provider"]])


def _keep(stored: dict[str, Any], record: dict[str, Any], field: str) -> None:
    if stored.get(field) is not None:
        record[field] = stored[field]


def _public(provider: str, values: dict[str, str]) -> dict[str, str]:
    return {k: values[k] for k in PUBLIC_CREDENTIAL_FIELDS[provider]}
