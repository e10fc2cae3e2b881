"""Debian's Chromium for Playwright (never a downloaded one), and where screenshots go."""

import os
from pathlib import Path

CHROMIUM = next((p for p in ("/usr/lib/chromium/chromium", "/usr/bin/chromium") if Path(p).exists()), None)
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def shots_dir(tmp_path) -> Path:
    """GATEHOUSE_SCREENSHOTS if set (to keep them), else the test's own directory."""
    path = Path(os.environ.get("GATEHOUSE_SCREENSHOTS") or tmp_path)
    path.mkdir(parents=True, exist_ok=True)
    return path

