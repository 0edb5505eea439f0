"""Where Debian's Chromium is (Playwright can't download its own browsers here)."""

from __future__ import annotations

import os
import shutil

CHROMIUM_CANDIDATES = (
    "/usr/lib/chromium/chromium",  # the real binary behind Debian's /usr/bin/chromium wrapper
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome",
)


def find_chromium() -> str | None:
    """$CHROMIUM_PATH if set (and executable), else the first known install, else PATH."""
    configured = os.environ.get("CHROMIUM_PATH")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    for path in CHROMIUM_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    return shutil.which("chromium") or shutil.which("chromium-browser")
