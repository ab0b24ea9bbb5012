"""Headless Chromium, to look at the HTML report as a browser shows it."""

import shutil
import subprocess
import tempfile
from pathlib import Path

BINARIES = ("chromium", "chromium-browser", "google-chrome")


def find() -> str | None:
    return next((path for name in BINARIES if (path := shutil.which(name))), None)


def screenshot(binary: str, page: Path, png: Path, size: tuple[int, int] = (1200, 1400)) -> None:
    """Open `page` with nothing reaching the network, and save what the window shows."""
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                f"--screenshot={png}",
                f"--window-size={size[0]},{size[1]}",
                page.resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
