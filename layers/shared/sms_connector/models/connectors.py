"""The connectors' models: what a client may send to create or change a connector, and what
it gets back."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    EmailStr,
    Field,
    StrictBool,
    StringConstraints,
    Tag,
    field_validator,
)

from ..ids import CONNECTOR_ID_PATTERN
from ..phone import E164, normalise_e164
from ..text import clean_line, not_blank
from .common import (
    MISSING_PROVIDER,
    MISSING_TYPE,
    NOT_AN_OBJECT,
    PROVIDERS,
    UNKNOWN_PROVIDER,
    UNKNOWN_TYPE,
    Omittable,
    Strict,
    Timestamp,
)

MAX_RECIPIENTS = 100

# 46elks text sender: A-Z a-z 0-9, 3 to 11 characters, not starting with a digit (providers.md 1.3).
_ELKS_ALPHA_SENDER = re.compile(r"[A-Za-z][A-Za-z0-9]{2,10}")


Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), AfterValidator(clean_line)
]


def _credential(value: str) -> str:
    """Pasted keys often bring a newline or a space: trimmed, and refused inside, so a key can
    never break an HTTP header (whose error message would carry it into a log)."""
    if any(c.isspace() or not c.isprintable() for c in value):
        raise ValueError("must not contain spaces, line breaks or control characters")
    return value


Credential = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=256),
    AfterValidator(not_blank),
    AfterValidator(_credential),
]
ConnectorId = Annotated[str, StringConstraints(pattern=CONNECTOR_ID_PATTERN)]
Email = Annotated[EmailStr, StringConstraints(max_length=254)]


def _twilio_sid(value: str) -> str:
    if not value.startswith("AC"):
        raise ValueError("must start with AC, like AC followed by 32 characters")
    _credential(value)
    # Twilio's SIDs are AC + 32 hex digits (providers.md 3.1); letters beyond hex are let
    # through so the guide's own example (ACXXXX...) stays valid.
    if not re.fullmatch(r"AC[0-9A-Za-z]{32}", value):
        raise ValueError("must be AC followed by 32 letters and digits")
    return value


def _elks46_sender(value: str) -> str:
    if _ELKS_ALPHA_SENDER.fullmatch(value):
        return value
    if value[:1].isdigit() or (not value.startswith("+") and value.isalnum()):
        raise ValueError(
            "must be E.164 (like +46701234567) or a text sender of 3 to 11 characters "
            "A-Z a-z 0-9 not starting with a digit (like MyCompany)"
        )
    try:
        return normalise_e164(value)
    except ValueError as exc:
        raise ValueError(
            f"{exc}; or a text sender of 3 to 11 characters A-Z a-z 0-9 not starting with a digit, like MyCompany"
        ) from None


TwilioSid = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64),
    AfterValidator(_twilio_sid),
    Field(description="Twilio Account SID; starts with AC", examples=["AC" + "0" * 32]),
]
Elks46Sender = Annotated[
    str,
    StringConstraints(min_length=1, max_length=32),
    AfterValidator(_elks46_sender),
    Field(description="E.164 number, or a text sender: 3-11 of A-Z a-z 0-9, not starting with a digit"),
]


# --- credentials --------------------------------------------------------------------------


class Elks46Credentials(Strict):
    username: Credential
    password: Credential


class TelnyxCredentials(Strict):
    apiKey: Credential


class TwilioCredentials(Strict):
    accountSid: TwilioSid
    authToken: Credential


class Elks46CredentialsUpdate(Strict):
    username: Credential | None = None
    password: Credential | None = None


class TelnyxCredentialsUpdate(Strict):
    apiKey: Credential | None = None


class TwilioCredentialsUpdate(Strict):
    accountSid: TwilioSid | None = None
    authToken: Credential | None = None


CREDENTIALS: dict[str, type[Strict]] = {
    "46elks": Elks46Credentials,
    "telnyx": TelnyxCredentials,
    "twilio": TwilioCredentials,
}
# Identifiers that are not secret and may be shown back; every other credential field is secret.
PUBLIC_CREDENTIAL_FIELDS = {"46elks": ("username",), "telnyx": (), "twilio": ("accountSid",)}


# --- connectors ---------------------------------------------------------------------------


class Recipient(Strict):
    to: E164
    backupEmail: Email | None = None
    optedOut: bool | None = Field(
        default=None,
        description="set by the service when the provider says the person replied STOP; "
        "send false to clear it (the person opted back in); left out, a PUT keeps it",
    )


class Limits(Strict):
    """Guardrails against alert storms (all optional)."""

    duplicateWindowMinutes: int | None = Field(
        default=None, ge=1, le=1440, description="the same text to the same recipient within this window is sent once"
    )
    maxPerRecipientPerHour: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="SMS per recipient per clock hour; the rest are held back and summed up in one SMS after the hour",
    )
    monthlySegmentBudget: int | None = Field(
        default=None, ge=1, le=10_000_000, description="SMS segments per calendar month (UTC); none are sent over it"
    )


class _SmsFields(Strict):
    type: Literal["sms"]
    name: Name
    recipients: list[Recipient] = Field(min_length=1, max_length=MAX_RECIPIENTS)
    emailConnectorId: ConnectorId | None = None
    limits: Limits | None = None
    verify: StrictBool = Field(
        default=False,
        description="check the credentials with the provider first, and save nothing if it rejects them "
        "(422 on credentials) or cannot be reached (503); not stored",
    )

    @field_validator("recipients")
    @classmethod
    def _unique_recipients(cls, recipients: list[Recipient]) -> list[Recipient]:
        seen: set[str] = set()
        for r in recipients:
            if r.to in seen:
                raise ValueError(f"{r.to} is listed twice")
            seen.add(r.to)
        return recipients


class Elks46Connector(_SmsFields):
    provider: Literal["46elks"]
    sender: Elks46Sender = Field(alias="from")
    credentials: Elks46Credentials


def _webhook_public_key(value: str) -> str:
    from ..receipts.telnyx import public_key_valid

    if not public_key_valid(value):
        raise ValueError("must be the base64 of a 32-byte Ed25519 public key (Telnyx portal, API keys page)")
    return value


WebhookPublicKey = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(_webhook_public_key),
    Field(
        description="the Telnyx account's public key for webhook signatures (base64); with it, delivery receipts are on"
    ),
]


class TelnyxConnector(_SmsFields):
    provider: Literal["telnyx"]
    sender: E164 = Field(alias="from")
    credentials: TelnyxCredentials
    webhookPublicKey: WebhookPublicKey | None = None


class TwilioConnector(_SmsFields):
    provider: Literal["twilio"]
    sender: E164 = Field(alias="from")
    credentials: TwilioCredentials


class Elks46ConnectorUpdate(Elks46Connector):
    credentials: Elks46CredentialsUpdate | None = None  # type: ignore[assignment]  # a PUT may leave them out


class TelnyxConnectorUpdate(TelnyxConnector):
    credentials: TelnyxCredentialsUpdate | None = None  # type: ignore[assignment]  # a PUT may leave them out


class TwilioConnectorUpdate(TwilioConnector):
    credentials: TwilioCredentialsUpdate | None = None  # type: ignore[assignment]  # a PUT may leave them out


class EmailConnector(Strict):
    type: Literal["email"]
    name: Name
    sender: Email = Field(alias="from", description="an SES-verified identity")


def connector_kind(value: Any) -> str:
    """One flat union (OpenAPI cannot express nested discriminators): email, or the SMS provider."""
    if isinstance(value, BaseModel):
        return str(getattr(value, "provider", None) or getattr(value, "type", UNKNOWN_TYPE))
    if not isinstance(value, dict):
        return NOT_AN_OBJECT
    if "type" not in value:
        return MISSING_TYPE
    if value["type"] == "email":
        return "email"
    if value["type"] != "sms":
        return UNKNOWN_TYPE
    if "provider" not in value:
        return MISSING_PROVIDER
    provider = value["provider"]
    return provider if provider in PROVIDERS else UNKNOWN_PROVIDER


ConnectorIn = Annotated[
    Union[
        Annotated[Elks46Connector, Tag("46elks")],
        Annotated[TelnyxConnector, Tag("telnyx")],
        Annotated[TwilioConnector, Tag("twilio")],
        Annotated[EmailConnector, Tag("email")],
    ],
    Discriminator(connector_kind),
]
ConnectorUpdate = Annotated[
    Union[
        Annotated[Elks46ConnectorUpdate, Tag("46elks")],
        Annotated[TelnyxConnectorUpdate, Tag("telnyx")],
        Annotated[TwilioConnectorUpdate, Tag("twilio")],
        Annotated[EmailConnector, Tag("email")],
    ],
    Discriminator(connector_kind),
]


class RecipientOut(BaseModel, defer_build=True):
    to: str
    backupEmail: Omittable[str] = Field(default=None, description="left out when the recipient has none")
    optedOut: bool = Field(
        description="true once the provider said the person opted out (replied STOP): SMS are skipped, the backup "
        "email still goes; a PUT with false clears it"
    )


class LimitsOut(BaseModel, defer_build=True):
    """The limits that are set (a limit not set is left out)."""

    duplicateWindowMinutes: Omittable[int] = None
    maxPerRecipientPerHour: Omittable[int] = None
    monthlySegmentBudget: Omittable[int] = None


class Elks46Identifiers(BaseModel, defer_build=True):
    username: str


class TwilioIdentifiers(BaseModel, defer_build=True):
    accountSid: str


class _ConnectorOut(BaseModel, defer_build=True):
    """A connector as the API shows it: settings, no secret values, no empty fields."""

    model_config = ConfigDict(populate_by_name=True)

    id: str
    name: str
    sender: str = Field(alias="from")
    createdAt: Timestamp
    updatedAt: Timestamp


class _SmsConnectorOut(_ConnectorOut):
    type: Literal["sms"]
    recipients: list[RecipientOut]
    emailConnectorId: Omittable[str] = Field(
        default=None, description="the email connector backup emails go through; left out when there is none"
    )
    limits: Omittable[LimitsOut] = Field(default=None, description="left out when no limit is set")
    receipts: bool = Field(description="whether its SMS ask the provider for delivery receipts")


class Elks46ConnectorOut(_SmsConnectorOut):
    provider: Literal["46elks"]
    credentials: Elks46Identifiers = Field(description="the identifier that is not secret; never the password")


class TelnyxConnectorOut(_SmsConnectorOut):
    """A Telnyx connector (its API key has no public part: no credentials are shown)."""

    provider: Literal["telnyx"]
    webhookPublicKey: Omittable[str] = Field(
        default=None, description="the key delivery receipts are checked with; left out when not set"
    )


class TwilioConnectorOut(_SmsConnectorOut):
    provider: Literal["twilio"]
    credentials: TwilioIdentifiers = Field(description="the identifier that is not secret; never the auth token")


class EmailConnectorOut(_ConnectorOut):
    type: Literal["email"]


CONNECTORS_OUT: dict[str, type[_ConnectorOut]] = {
    "46elks": Elks46ConnectorOut,
    "telnyx": TelnyxConnectorOut,
    "twilio": TwilioConnectorOut,
    "email": EmailConnectorOut,
}
ConnectorOut = Annotated[
    Union[
        Annotated[Elks46ConnectorOut, Tag("46elks")],
        Annotated[TelnyxConnectorOut, Tag("telnyx")],
        Annotated[TwilioConnectorOut, Tag("twilio")],
        Annotated[EmailConnectorOut, Tag("email")],
    ],
    Discriminator(connector_kind),
]


class ConnectorPage(BaseModel, defer_build=True):
    items: list[ConnectorOut]
    nextToken: str | None


class VerifyOut(BaseModel, defer_build=True):
    ok: bool = Field(description="the provider accepted the stored credentials")
    detail: str = Field(description="the provider's verdict in words a user can act on")
    balance: str | None = Field(
        default=None, description="the account's balance as a decimal string; null when the provider gives none"
    )
    currency: str | None = Field(default=None, description="ISO 4217 currency of the balance")
