"""POST /preview: a message's encoding, characters and segments as each provider counts them,
for the rule editor. No AWS, no connector; a token with a tenant like every route."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from devstack.handlers import load
from devstack.template import ROOT
from tests.conftest import Api


@pytest.fixture
def preview() -> Api:
    return Api(load("PreviewFunction"), "tenant-a")  # no moto: an AWS call would fail the test


def ask(api: Api, message: str, provider: str | None = None) -> dict[str, Any]:
    body = {"message": message} | ({"provider": provider} if provider else {})
    status, answer = api("POST", "/preview", body)
    assert status == 200, answer
    return dict(answer)


@pytest.mark.parametrize(
    ("message", "provider", "encoding", "ucs2"),
    [
        ("Ça va", "twilio", "GSM-7", []),  # Ç is in GSM 03.38's basic table
        ("Ça va", "46elks", "GSM-7", []),
        ("Ça va", "telnyx", "UCS-2", ["Ç"]),  # not in Telnyx's own 7-bit set
        ("€5", "twilio", "GSM-7", []),  # an extension character: two septets
        ("€5", "46elks", "UCS-2", ["€"]),
        ("€5", "telnyx", "UCS-2", ["€"]),
        ("ΔΦ", "twilio", "GSM-7", []),
        ("ΔΦ", "telnyx", "UCS-2", ["Δ", "Φ"]),
        ("{x}", "telnyx", "GSM-7", []),
        ("{x}", "46elks", "UCS-2", ["{", "}"]),
        ("€5", None, "GSM-7", []),  # without a provider: standard GSM 03.38
    ],
)
def test_the_encoding_is_the_providers(
    preview: Api, message: str, provider: str | None, encoding: str, ucs2: list[str]
) -> None:
    answer = ask(preview, message, provider)
    assert (answer["encoding"], answer["ucs2Characters"]) == (encoding, ucs2)
    assert answer["characters"] == len(message) and answer["segments"] == 1 and answer["tooLong"] is False


def test_the_characters_that_force_ucs2_are_named_once_in_order(preview: Api) -> None:
    answer = ask(preview, "Temp “high” 😀 in room ж, again 😀 “", "twilio")
    assert answer["encoding"] == "UCS-2" and answer["ucs2Characters"] == ["“", "”", "😀", "ж"]


@pytest.mark.parametrize(
    ("message", "characters", "segments"),
    [
        ("a" * 160, 160, 1),
        ("a" * 161, 161, 2),  # 153 per part once split
        ("a" * 306, 306, 2),
        ("a" * 307, 307, 3),
        ("[" * 80, 80, 1),  # two septets each at Twilio: 160
        ("[" * 81, 81, 2),
        ("ж" * 70, 70, 1),
        ("ж" * 71, 71, 2),  # 67 per part once split
        ("😀" * 35, 35, 1),  # an emoji is two UTF-16 units: 70
        ("😀" * 36, 36, 2),
    ],
)
def test_segments_count_septets_or_utf16_units(preview: Api, message: str, characters: int, segments: int) -> None:
    answer = ask(preview, message, "twilio")
    assert (answer["characters"], answer["segments"]) == (characters, segments)


@pytest.mark.parametrize(
    ("message", "provider", "too_long"),
    [
        ("a" * 1600, "twilio", False),
        ("a" * 1601, "twilio", True),  # Twilio's Body limit
        ("a" * 1601, "46elks", True),  # held to the same 1,600 characters
        ("a" * 1530, "telnyx", False),  # 10 parts
        ("a" * 1531, "telnyx", True),  # 11 parts: more than Telnyx sends
        ("ж" * 670, "telnyx", False),
        ("ж" * 671, "telnyx", True),
        ("a" * 1600, None, False),
        ("a" * 1601, None, True),  # the service's own limit for a rule action's message
    ],
)
def test_too_long_is_the_providers_limit(preview: Api, message: str, provider: str | None, too_long: bool) -> None:
    assert ask(preview, message, provider)["tooLong"] is too_long


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "message"),
        ({"message": ""}, "message"),
        ({"message": "   "}, "message"),
        ({"message": 42}, "message"),
        ({"message": "bell \x07"}, "message"),
        ({"message": "a" * 10_001}, "message"),
        ({"message": "hi", "provider": "sinch"}, "provider"),
        ({"message": "hi", "provider": 1}, "provider"),
        ({"message": "hi", "connectorId": "x"}, "connectorId"),
    ],
)
def test_a_bad_request_is_a_422_naming_the_field(preview: Api, body: dict[str, Any], field: str) -> None:
    status, answer = preview("POST", "/preview", body)
    assert status == 422
    assert [d["field"] for d in answer["detail"]] == [field]
    assert answer["message"].startswith(f"invalid request: {field}")


def test_a_body_that_is_not_json_is_a_400(preview: Api) -> None:
    status, answer = preview("POST", "/preview", "{not json")
    assert status == 400 and "not valid JSON" in answer["message"]


def test_a_token_without_a_tenant_is_refused(preview: Api) -> None:
    status, answer = preview("POST", "/preview", {"message": "hi"}, claims={"sub": "someone"})
    assert status == 403 and "tenant_id" in answer["message"]


def test_the_preview_function_loads_no_aws_sdk() -> None:
    # Its cold start is a user waiting on a keystroke: no boto3, no connector code (Powertools
    # imports botocore's bare package for its user agent: that costs nothing)
    code = (
        "import importlib.util, sys\n"
        "spec = importlib.util.spec_from_file_location('app', 'functions/preview/app.py')\n"
        "m = importlib.util.module_from_spec(spec); sys.modules['app'] = m; spec.loader.exec_module(m)\n"
        "heavy = ('boto3', 'botocore.session', 'sms_connector.aws', 'sms_connector.connectors')\n"
        "print(sorted(n for n in heavy if n in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "layers/shared"), "TABLE_NAME": "unused"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "[]"
