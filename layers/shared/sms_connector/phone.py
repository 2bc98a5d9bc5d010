"""Phone numbers: the E.164 type every model uses (masking is in `masking.py`)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, WithJsonSchema

EXAMPLE = "+46701234567"
# Separators people write inside numbers; anything else (letters, a missing '+') is rejected.
_SEPARATORS = re.compile(r"[\s\-.()]")
_PLAIN = re.compile(r"\+[0-9]{2,16}")


def normalise_e164(value: str) -> str:
    """Return `value` as E.164, or raise ValueError with a message showing the expected form.

    Spaces, dashes, dots and brackets are dropped. The number must start with '+' (a number
    without its country code is ambiguous), have a country code that exists and a length
    possible for that country. `is_valid_number` is not required: its range tables lag
    reality (the guide's own +46710000001 is in a Swedish M2M range it does not know).
    """
    import phonenumbers  # here, not at import: the sender needs it only to mask failures

    compact = _SEPARATORS.sub("", value)
    if not compact.startswith("+"):
        raise ValueError(f"must be in E.164 form with the country code, like {EXAMPLE}")
    if not _PLAIN.fullmatch(compact):
        raise ValueError(f"must contain only '+' and digits, like {EXAMPLE}")
    try:
        number = phonenumbers.parse(compact, None)
    except phonenumbers.NumberParseException:
        raise ValueError(f"is not a phone number; expected E.164, like {EXAMPLE}") from None
    if phonenumbers.region_code_for_country_code(number.country_code or 0) == "ZZ":
        raise ValueError(f"has no known country code (+{number.country_code}); expected E.164, like {EXAMPLE}")
    if not phonenumbers.is_possible_number(number):
        raise ValueError(f"has a length that is not possible for country code +{number.country_code}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


E164 = Annotated[
    str,
    Field(min_length=3, max_length=32),
    AfterValidator(normalise_e164),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 3,
            "maxLength": 32,
            "examples": [EXAMPLE],
            "description": "E.164 phone number: '+', country code, number",
        }
    ),
]
