"""The connector models: every rule of the guide's tables, its examples, valid and invalid."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from sms_connector.masking import number as mask
from sms_connector.models.connectors import ConnectorIn, ConnectorUpdate
from sms_connector.phone import normalise_e164

CONNECTOR = TypeAdapter(ConnectorIn)
UPDATE = TypeAdapter(ConnectorUpdate)

# The guide's three examples, as API bodies.
GUIDE_46ELKS = {
    "type": "sms",
    "name": "46elks example",
    "provider": "46elks",
    "credentials": {"username": "your_46elks_username", "password": "your_46elks_password"},
    "from": "MyCompany",
    "recipients": [{"to": "+46710000001", "backupEmail": "user@example.com"}],
}
GUIDE_TELNYX = {
    "type": "sms",
    "name": "Telnyx example",
    "provider": "telnyx",
    "credentials": {"apiKey": "your_telnyx_api_key"},
    "from": "+46700000000",
    "recipients": [{"to": "+46710000001", "backupEmail": "user@example.com"}],
}
GUIDE_TWILIO = {
    "type": "sms",
    "name": "Twilio example",
    "provider": "twilio",
    "credentials": {"accountSid": "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "authToken": "your_auth_token"},
    "from": "+46700000000",
    "recipients": [{"to": "+46710000001", "backupEmail": "user@example.com"}],
}
EMAIL = {"type": "email", "name": "Alerts mail", "from": "alerts@example.com"}


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**base, **changes}


def errors_of(adapter: TypeAdapter[Any], body: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        adapter.validate_python(body)
    return {".".join(str(p) for p in e["loc"]): e["msg"] for e in caught.value.errors()}


@pytest.mark.parametrize("body", [GUIDE_46ELKS, GUIDE_TELNYX, GUIDE_TWILIO, EMAIL], ids=lambda b: b["name"])
def test_guide_examples_are_valid(body: dict[str, Any]) -> None:
    # Given the guide's example / When validated / Then accepted, sender kept as written
    model = CONNECTOR.validate_python(body)
    assert model.sender == body["from"]


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        (with_(GUIDE_TELNYX, **{"from": "MyCompany"}), "telnyx.from", "E.164"),
        (with_(GUIDE_TWILIO, **{"from": "MyCompany"}), "twilio.from", "E.164"),
        (with_(GUIDE_46ELKS, **{"from": "1Company"}), "46elks.from", "not starting with a digit"),
        (with_(GUIDE_46ELKS, **{"from": "AB"}), "46elks.from", "3 to 11"),
        (with_(GUIDE_46ELKS, **{"from": "MyCompanyLtd"}), "46elks.from", "3 to 11"),
        (with_(GUIDE_46ELKS, **{"from": "My Company"}), "46elks.from", "3 to 11"),
        (with_(GUIDE_46ELKS, **{"from": "Café"}), "46elks.from", "3 to 11"),
        (with_(GUIDE_46ELKS, **{"from": "Shop😀"}), "46elks.from", "3 to 11"),
        (
            with_(GUIDE_TWILIO, credentials={"accountSid": "SK123", "authToken": "t"}),
            "twilio.credentials.accountSid",
            "must start with AC",
        ),
        (
            with_(GUIDE_TWILIO, credentials={"accountSid": "AC" + "1" * 32}),
            "twilio.credentials.authToken",
            "Field required",
        ),
        (with_(GUIDE_TELNYX, credentials={"apiKey": "   "}), "telnyx.credentials.apiKey", "empty"),
        (
            with_(GUIDE_46ELKS, credentials={"username": "", "password": "p"}),
            "46elks.credentials.username",
            "empty",
        ),
        (
            with_(GUIDE_TELNYX, credentials={"apiKey": "KEY_abc\ndef"}),
            "telnyx.credentials.apiKey",
            "line breaks",
        ),
        (
            with_(GUIDE_TWILIO, credentials={"accountSid": "AC" + "0" * 32, "authToken": "tok en"}),
            "twilio.credentials.authToken",
            "spaces",
        ),
        (
            with_(GUIDE_TWILIO, credentials={"accountSid": "AC123", "authToken": "t"}),
            "twilio.credentials.accountSid",
            "32 letters and digits",
        ),
        (with_(GUIDE_TELNYX, name="Night\r\nshift"), "telnyx.name", "control characters"),
        (with_(GUIDE_TELNYX, name="abc\u202egnp.exe"), "telnyx.name", "bidirectional"),
        (with_(GUIDE_TELNYX, name="zero\u200bwidth"), "telnyx.name", "invisible"),
        (with_(GUIDE_TELNYX, name="nul\u0000"), "telnyx.name", "control characters"),
        (with_(GUIDE_TELNYX, name="\u200b"), "telnyx.name", "invisible"),
        (with_(GUIDE_TELNYX, recipients=[]), "telnyx.recipients", "at least 1"),
        (with_(GUIDE_TELNYX, recipients=[{"to": "0701234567"}]), "telnyx.recipients.0.to", "country code"),
        (with_(GUIDE_TELNYX, recipients=[{"to": "+46 70 ABC"}]), "telnyx.recipients.0.to", "only '+' and digits"),
        (with_(GUIDE_TELNYX, recipients=[{"to": "+4612"}]), "telnyx.recipients.0.to", "length"),
        (with_(GUIDE_TELNYX, recipients=[{"to": "+999123456"}]), "telnyx.recipients.0.to", "not a phone number"),
        (
            with_(GUIDE_TELNYX, recipients=[{"to": "+46710000001", "backupEmail": "nope"}]),
            "telnyx.recipients.0.backupEmail",
            "email",
        ),
        (
            with_(GUIDE_TELNYX, recipients=[{"to": "+46710000001"}, {"to": "+46 71 000 00 01"}]),
            "telnyx.recipients",
            "listed twice",
        ),
        (
            with_(GUIDE_TELNYX, recipients=[{"to": f"+4671000{i:04d}"} for i in range(101)]),
            "telnyx.recipients",
            "at most 100",
        ),
        (with_(GUIDE_TELNYX, name=" "), "telnyx.name", "at least 1"),
        (with_(GUIDE_TELNYX, name="x" * 101), "telnyx.name", "at most 100"),
        (with_(GUIDE_TELNYX, color="red"), "telnyx.color", "Extra inputs"),
        (with_(EMAIL, **{"from": "not-an-address"}), "email.from", "email"),
    ],
)
def test_invalid_fields_are_named(body: dict[str, Any], field: str, says: str) -> None:
    errors = errors_of(CONNECTOR, body)
    assert field in errors, errors
    assert says in errors[field]


def test_numbers_with_spaces_and_dashes_are_normalised() -> None:
    body = with_(GUIDE_TELNYX, recipients=[{"to": "+46 71-000 00 01"}], **{"from": "+46 (70) 000.00.00"})
    model = CONNECTOR.validate_python(body)
    assert model.recipients[0].to == "+46710000001"
    assert model.sender == "+46700000000"


@pytest.mark.parametrize(
    ("given", "expected"),
    [("+46710000001", "+46710000001"), ("+1 650 253 0000", "+16502530000"), ("+44 20 7946 0958", "+442079460958")],
)
def test_e164_accepts_possible_numbers(given: str, expected: str) -> None:
    assert normalise_e164(given) == expected


def test_update_may_leave_credentials_out() -> None:
    body = {k: v for k, v in GUIDE_TWILIO.items() if k != "credentials"}
    model = UPDATE.validate_python(body)
    assert model.credentials is None
    partial = UPDATE.validate_python(with_(GUIDE_TWILIO, credentials={"authToken": "new"}))
    assert partial.credentials.accountSid is None and partial.credentials.authToken == "new"


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("+46701234567", "+46 *******67"),
        ("+46710000001", "+46 *******01"),
        ("+442079460958", "+44 ********58"),
        ("+6012345678", "+60 ******78"),  # Malaysia: no group of the national number shows
        ("+15558675310", "+1 ********10"),
    ],
)
def test_mask_keeps_only_the_country_code_and_last_two_digits(number: str, masked: str) -> None:
    assert mask(number) == masked


def test_pasted_credentials_are_trimmed() -> None:
    body = with_(
        GUIDE_TWILIO, credentials={"accountSid": " ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX\n", "authToken": "\ttoken123\r\n"}
    )
    model = CONNECTOR.validate_python(body)
    assert model.credentials.model_dump() == {  # type: ignore[union-attr]
        "accountSid": "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",  # the guide's own example stays valid
        "authToken": "token123",
    }
