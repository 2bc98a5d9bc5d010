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
    assert '"status":"sent"' in out  # the test send
    assert "Temperature above 30 C in room 4" in out  # at the simulator, and in the backup email
    assert "oncall@example.com" in out and "SMS could not be delivered" in out
    assert '"totalSent":2' in out and '"totalFails":1' in out  # test send + rule action
    assert '"recipient":"+46 *******02"' in out
    assert '"field":"credentials.accountSid"' in out and '"field":"recipients[0].to"' in out
    assert out.rstrip().endswith('{"items":[],"nextToken":null}')
