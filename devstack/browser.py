"""Debian's Chromium, as the page's tests and screenshots drive it through Playwright (never
Playwright's own browser download, which this network refuses)."""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
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
