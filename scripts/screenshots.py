"""Regenerates the control panel's screenshots in docs/ (shown in README.md, "Control panel").

    .venv/bin/python scripts/screenshots.py [--out docs] [--show]

Starts the local stack on free ports, makes some traffic through the API (a connector, test
sends, failures), and photographs the page with Debian's Chromium through Playwright
(`apt-get install chromium`; Playwright's own browser download is not used).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import urllib3

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "layers" / "shared"), str(ROOT)]  # run as a script: the project's packages

from devstack.browser import CHROMIUM, CHROMIUM_FLAGS  # noqa: E402


def _api(base: str, token: str) -> Any:
    http = urllib3.PoolManager(timeout=30)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def call(method: str, path: str, body: Any = None) -> Any:
        answer = http.request(method, base + path, body=None if body is None else json.dumps(body), headers=headers)
        if answer.status >= 300:
            raise RuntimeError(f"{method} {path}: {answer.status} {answer.data[:300]!r}")
        return json.loads(answer.data) if answer.data else None

    return call


def traffic(base: str, token: str) -> str:
    """A connector with a history: sends, a failure or two. Answers its id."""
    call = _api(base, token)
    connector = call(
        "POST",
        "/connectors",
        {
            "type": "sms",
            "name": "Server room on-call",
            "provider": "46elks",
            "credentials": {"username": "demo-user", "password": "demo-password"},
            "from": "DemoCo",
            "recipients": [
                {"to": "+46710000001", "backupEmail": "oncall@example.com"},
                {"to": "+46710000002"},
                {"to": "+46700000003", "backupEmail": "facilities@example.com"},  # the simulator: out of credit
            ],
        },
    )
    path = f"/connectors/{connector['id']}/test"
    for _ in range(3):
        call("POST", path, {"to": "+46710000001", "message": "Freezer 2 above -15 C"})
    call("POST", path, {"message": "Server room temperature 31 C"})
    call("POST", path, {"to": "+46710000002", "message": "Door 4 open for 10 minutes"})
    return str(connector["id"])


def shoot(url: str, token: str, connector_id: str, out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    shots = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1200, "height": 760}, locale="en-GB", timezone_id="Europe/Stockholm")
        page.goto(f"{url}/#token={token}")
        page.wait_for_selector("table tbody tr")
        shots.append(out / "control-panel-list.png")
        page.screenshot(path=shots[-1], full_page=True)

        page.set_viewport_size({"width": 900, "height": 760})  # the form is one column wide
        page.goto(f"{url}/#/connectors/{connector_id}/edit")
        page.wait_for_selector(".recipient-row")
        shots.append(out / "control-panel-form.png")
        page.screenshot(path=shots[-1], full_page=True)

        page.set_viewport_size({"width": 1200, "height": 760})
        page.goto(f"{url}/#/connectors/{connector_id}")
        page.wait_for_selector(".log-table")
        page.get_by_role("button", name="Send test SMS").click()
        page.wait_for_selector(".outcomes")
        page.mouse.move(0, 0)
        page.locator("textarea").focus()
        page.locator("textarea").blur()  # no hover or focus ring on the button in the picture
        shots.append(out / "control-panel-statistics.png")
        page.screenshot(path=shots[-1], full_page=True)
        browser.close()
    return shots


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing: apt-get install chromium", file=sys.stderr)
        return 2
    from devstack.stack import LocalStack, Ports

    with tempfile.TemporaryDirectory() as tmp:
        stack = LocalStack(Ports(0, 0, 0), retry_delay=1, state_file=Path(tmp) / "state.json")
        try:
            state = stack.start()
            connector_id = traffic(state["apiUrl"], state["token"])
            for shot in shoot(state["apiUrl"], state["token"], connector_id, args.out):
                print(f"wrote {shot.relative_to(ROOT) if shot.is_relative_to(ROOT) else shot}")
        finally:
            stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
