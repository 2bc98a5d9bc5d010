"""The README's five-minute tour, pasted line by line against a running local stack."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from devstack.template import ROOT
from tests.conftest import Local

pytestmark = pytest.mark.e2e


def tour_lines() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- tour.*?-->\s*```bash\n(.*?)```", text, re.S)
    assert block, "the README lost its tour"
    return [line for line in block.group(1).splitlines() if line.strip()]


def answers(out: str) -> list[object]:
    """Every JSON value printed, in order (curl prints them back to back)."""
    decoder, found, i = json.JSONDecoder(), [], 0
    while i < len(out):
        if out[i] in "{[":
            try:
                value, i = decoder.raw_decode(out, i)
                found.append(value)
                continue
            except ValueError:
                pass
        i += 1
    return found


def test_the_readme_tour_works(local: Local, tmp_path: os.PathLike[str]) -> None:
    lines = tour_lines()
    assert lines[0] == "API=http://127.0.0.1:3000"
    python = ".venv/bin/python" if (ROOT / ".venv/bin/python").exists() else sys.executable
    script = "\n".join(
        ["set -euo pipefail", f"API={local.url}"] + [line.replace(".venv/bin/python", python) for line in lines[1:]]
    )
    state = tmp_path / "state.json"  # type: ignore[operator]
    state.write_text(json.dumps(local.state))
    env = dict(os.environ, DEVSTACK_STATE=str(state), PYTHONPATH=f"{ROOT / 'layers/shared'}:{ROOT}")
    result = subprocess.run(
        ["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    printed = answers(out)
    [shown] = [a for a in printed if isinstance(a, dict) and a.get("name") == "On-call team"]
    assert shown["receipts"] is True and shown["limits"]["duplicateWindowMinutes"] == 10
    [verified] = [a for a in printed if isinstance(a, dict) and "ok" in a]
    assert verified["ok"] is True and verified["balance"] and verified["currency"] == "SEK"
    assert '"encoding":"UCS-2"' in out and "ucs2Characters" in out  # the preview names the culprit
    assert '"status":"sent"' in out  # the test send
    assert out.count("queued rule action") == 2
    assert "Temperature above 30 C in room 4" in out  # at the simulator, and in the backup email
    assert "oncall@example.com" in out and "SMS could not be delivered" in out
    last = [a for a in printed if isinstance(a, dict) and "totalSent" in a][-1]
    # the test send and the first action's two SMS went out; the repeat was suppressed; the
    # receipts came back: two delivered, +46700000006 not, and it got the backup email
    assert (last["totalSent"], last["totalSuppressed"], last["pendingReceipts"]) == (3, 2, 0)
    assert (last["totalDelivered"], last["totalUndelivered"], last["deliveryRate"]) == (2, 1, 66.67)
    assert last["fallbackEmailsSent"] == 1 and last["successRate"] == 100.0
    assert last["costThisMonth"] == [{"amount": "1.05", "currency": "SEK"}]
    assert '"recipient":"+46 *******06"' in out and "limit_duplicate" in out
    assert '"field":"credentials.accountSid"' in out and '"field":"recipients[0].to"' in out
    assert out.rstrip().endswith('{"items":[],"nextToken":null}')
