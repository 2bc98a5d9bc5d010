"""What every API function's models share: the strict base, the shapes of answers' fields,
and the error bodies every route documents."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.json_schema import SkipJsonSchema

PROVIDERS = ("46elks", "telnyx", "twilio")
# Named values for generated clients (openapi-python-client reads x-enum-varnames): "46elks"
# would otherwise become VALUE_0.
Provider = Annotated[
    Literal["46elks", "telnyx", "twilio"],
    WithJsonSchema({"type": "string", "enum": list(PROVIDERS), "x-enum-varnames": ["ELKS46", "TELNYX", "TWILIO"]}),
]
# ISO 8601 UTC, as `clock.iso` writes it; typed clients read it as a date and time.
Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]

T = TypeVar("T")


def _absent(value: Any) -> bool:
    return value is None


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


# An answer's field that is left out when it has no value (never `null`): not required in the
# document, and typed as the value alone.
Omittable = Annotated[T | SkipJsonSchema[None], Field(exclude_if=_absent, json_schema_extra=_no_default)]


class Strict(BaseModel):
    """Unknown fields are errors: a typo in a field name must not be silently dropped."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)


# What `connector_kind` answers for a body it cannot place; the API turns each into its own words.
MISSING_TYPE = "missing-type"
UNKNOWN_TYPE = "unknown-type"
MISSING_PROVIDER = "missing-provider"
UNKNOWN_PROVIDER = "unknown-provider"
NOT_AN_OBJECT = "not-an-object"
# Union tags pydantic puts into error locations; dropped when naming the field for the client.
UNION_TAGS = frozenset({"email", *PROVIDERS})


# --- errors -------------------------------------------------------------------------------


class ErrorBody(BaseModel, defer_build=True):
    """Every error answer of the API: the HTTP status again, and what is wrong in words."""

    statusCode: int
    message: str


class GatewayErrorBody(BaseModel, defer_build=True):
    """API Gateway's own answer, before any function runs (its JWT authorizer's 401):
    `{"message": "Unauthorized"}` on AWS, where an HTTP API cannot reshape it; the local stack
    answers in the API's shape, with `statusCode` too."""

    message: str
    statusCode: Omittable[int] = None


class FieldError(BaseModel, defer_build=True):
    loc: list[str | int] = Field(description='where: "body", "query" or "path", then the field\'s path')
    field: str = Field(description="the field as a person writes it, like recipients[0].to")
    msg: str = Field(description="what is wrong with it, in words")
    type: str = Field(description="a code for the kind of error, like missing or value_error")


class ValidationErrorBody(BaseModel, defer_build=True):
    """A 422: every field that is wrong, each in `detail`; `message` sums them up."""

    statusCode: int
    message: str
    detail: list[FieldError]
