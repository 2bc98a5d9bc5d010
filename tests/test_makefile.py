"""`make help` names every target the Makefile offers."""

from __future__ import annotations

import re
import subprocess

from devstack.template import ROOT


def test_make_help_lists_every_target() -> None:
    makefile = (ROOT / "Makefile").read_text()
    phony = re.search(r"^\.PHONY:(.*)$", makefile, re.M)
    assert phony
    targets = set(phony.group(1).split()) - {"help"}
    shown = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    listed = {m.group(1) for m in re.finditer(r"^make (\S+)", shown, re.M)}
    assert targets - listed == set()
    assert listed - targets == set()
