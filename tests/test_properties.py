"""Property tests: the E.164 normaliser, the 46elks sender rule, the segment counter."""

from __future__ import annotations

import math
import re

import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from sms_connector.models.connectors import Elks46Sender
from sms_connector.phone import normalise_e164
from sms_connector.segments import GSM_BASIC, GSM_EXTENSION, count

REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
SENDER = TypeAdapter(Elks46Sender)


@st.composite
def numbers(draw: st.DrawFn) -> phonenumbers.PhoneNumber:
    region = draw(st.sampled_from(REGIONS))
    kind = draw(st.sampled_from([phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE]))
    example = phonenumbers.example_number_for_type(region, kind) or phonenumbers.example_number(region)
    if example is None:
        example = phonenumbers.parse("+46701234567")
    return example


@given(numbers(), st.sampled_from(["INTERNATIONAL", "E164", "spaced", "dashed", "dotted"]))
@settings(max_examples=300)
def test_e164_normalisation_round_trips(number: phonenumbers.PhoneNumber, style: str) -> None:
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if style == "INTERNATIONAL":
        written = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    elif style == "E164":
        written = e164
    else:
        separator = {"spaced": " ", "dashed": "-", "dotted": "."}[style]
        written = "+" + separator.join(re.findall(r"\d{1,3}", e164[1:]))
    assert normalise_e164(written) == e164
    assert normalise_e164(normalise_e164(written)) == e164  # idempotent


@given(st.text(max_size=20))
def test_e164_never_crashes_and_answers_plain_e164(text: str) -> None:
    try:
        result = normalise_e164(text)
    except ValueError:
        return
    assert re.fullmatch(r"\+[1-9][0-9]{2,15}", result)


@given(st.from_regex(r"[A-Za-z][A-Za-z0-9]{2,10}", fullmatch=True))
def test_46elks_text_senders_that_follow_the_rule_pass(sender: str) -> None:
    assert SENDER.validate_python(sender) == sender


@given(st.text(min_size=1, max_size=14))
def test_46elks_text_senders_that_break_the_rule_fail(sender: str) -> None:
    follows = re.fullmatch(r"[A-Za-z][A-Za-z0-9]{2,10}", sender) is not None
    try:
        accepted = SENDER.validate_python(sender)
    except ValidationError:
        assert not follows
        return
    # Accepted without following the text rule: then it was a phone number, now in E.164.
    assert follows or re.fullmatch(r"\+[1-9][0-9]{2,15}", accepted)


GSM = sorted(GSM_BASIC)
EXT = sorted(GSM_EXTENSION)


@given(st.lists(st.sampled_from(GSM + EXT), max_size=400))
def test_gsm_segments(chars: list[str]) -> None:
    text = "".join(chars)
    units = sum(2 if c in GSM_EXTENSION else 1 for c in text)
    result = count(text)
    assert result.encoding == "GSM-7" and result.units == units
    assert result.parts == (1 if units <= 160 else math.ceil(units / 153))


@given(
    st.text(min_size=1, max_size=300).filter(lambda t: any(c not in GSM_BASIC and c not in GSM_EXTENSION for c in t))
)
def test_ucs2_segments(text: str) -> None:
    units = len(text.encode("utf-16-be", "surrogatepass")) // 2
    result = count(text)
    assert result.encoding == "UCS-2" and result.units == units
    assert result.parts == (1 if units <= 70 else math.ceil(units / 67))


@given(st.integers(min_value=0, max_value=2000))
def test_segment_boundaries(n: int) -> None:
    assert count("a" * n).parts == (1 if n <= 160 else math.ceil(n / 153))
    assert count("ж" * n).parts == (1 if n <= 70 else math.ceil(n / 67))


# Texts near the edges: invisible and control characters, joiners, line breaks, lengths around
# the limit. (Surrogates excluded: JSON text cannot carry a lone one; both refuse it.)
_EDGES = st.sampled_from(["\u200b", "\u200d", "\u202e", "\x00", "\x07", "\r", "\n", "\t", " ", "a", "é", "😀"])
_MESSAGES = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=40),
    st.lists(_EDGES, max_size=12).map("".join),
    st.integers(1595, 1605).map(lambda n: "x" * n),
)


@given(_MESSAGES)
@settings(max_examples=400)
def test_the_sender_and_the_api_agree_on_what_a_message_is(text: str) -> None:
    """The sender checks rule actions without pydantic (json_fields); the API with it. The same
    text must get the same verdict, and the same value, from both."""
    import json

    from sms_connector import json_fields
    from sms_connector.sending.batch import RuleAction
    from sms_connector.text import Message

    try:
        api: str | None = TypeAdapter(Message).validate_python(text)
    except ValidationError:
        api = None
    try:
        sender: str | None = RuleAction.parse(json.dumps({"connectorId": "c1", "message": text})).message
    except json_fields.Malformed:
        sender = None
    assert sender == api
