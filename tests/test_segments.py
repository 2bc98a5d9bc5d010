"""Segment math (providers.md section 4) and the providers' length limits."""

from __future__ import annotations

import pytest

from sms_connector.segments import count, too_long_for


@pytest.mark.parametrize(
    ("text", "encoding", "parts"),
    [
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 306, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("€" * 80, "GSM-7", 1),  # extension characters cost two septets
        ("€" * 81, "GSM-7", 2),
        ("åäöÅÄÖ" * 10, "GSM-7", 1),
        ("ж" * 70, "UCS-2", 1),
        ("ж" * 71, "UCS-2", 2),
        ("ж" * 134, "UCS-2", 2),
        ("ж" * 135, "UCS-2", 3),
        ("😀" * 35, "UCS-2", 1),  # outside the BMP: two UTF-16 units each
        ("😀" * 36, "UCS-2", 2),
        ("a" * 159 + "ж", "UCS-2", 3),  # one non-GSM character switches the whole message
    ],
)
def test_segments(text: str, encoding: str, parts: int) -> None:
    result = count(text)
    assert (result.encoding, result.parts) == (encoding, parts)


def test_provider_limits() -> None:
    assert too_long_for("twilio", "a" * 1600) is None
    assert "at most 1600" in (too_long_for("twilio", "a" * 1601) or "")
    assert too_long_for("telnyx", "a" * 1530) is None  # 10 parts of 153
    assert "10" in (too_long_for("telnyx", "a" * 1531) or "")
    assert too_long_for("telnyx", "ж" * 670) is None
    assert too_long_for("telnyx", "ж" * 671) is not None
    assert too_long_for("46elks", "a" * 1600) is None
