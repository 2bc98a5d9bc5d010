"""The system's Chromium (Debian's package), as the page's tests and screenshots drive it through
Playwright: never Playwright's own browser download, so nothing is fetched at test time."""

from __future__ import annotations

import shutil

# Debian names it chromium, Ubuntu's package chromium-browser; the path is what apt installs.
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
# Keep Chromium off the network it would otherwise call home to.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
