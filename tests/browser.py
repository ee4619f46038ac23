"""Headless Chromium for tests: find the binary, take a screenshot, dump the DOM after the load event.

Not a test module (pytest collects only ``test_*.py``). Chromium runs with no
network-facing features (``--disable-background-networking`` and friends) and a
throwaway profile, so a test never depends on, or reaches, anything outside the
machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

# Debian and Ubuntu name it chromium (or chromium-browser); Google's build is google-chrome.
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
ENV_VAR = "IMBSTAT_CHROMIUM"  # an explicit binary wins over the search on PATH
FLAGS = (
    "--headless",
    "--no-sandbox",  # CI containers run as root, where the sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",  # the screenshot shows the page only
)
TIMEOUT_S = 120


def find_chromium() -> str | None:
    """The Chromium binary: ``$IMBSTAT_CHROMIUM`` if set, else the first of :data:`CANDIDATES` on PATH."""
    if os.environ.get(ENV_VAR):
        return shutil.which(os.environ[ENV_VAR])
    return next((found for name in CANDIDATES if (found := shutil.which(name))), None)


def run_headless(binary: str, page: Path, profile: Path, *args: str, size: tuple[int, int] = (1280, 4000)) -> str:
    """Open ``file://page`` in a ``size`` (width, height) window with ``args``; returns stdout; raises on failure."""
    command = [binary, *FLAGS, f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}", *args]
    done = subprocess.run([*command, page.resolve().as_uri()], capture_output=True, text=True, timeout=TIMEOUT_S)
    if done.returncode != 0:
        raise RuntimeError(f"chromium exited with {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


def screenshot(binary: str, page: Path, png: Path, profile: Path, size: tuple[int, int] = (1280, 4000)) -> Path:
    """A PNG of the top ``size`` pixels of the rendered page."""
    run_headless(binary, page, profile, f"--screenshot={png}", size=size)
    return png


def dump_dom(binary: str, page: Path, profile: Path, size: tuple[int, int] = (1280, 4000)) -> str:
    """The serialised DOM after the load event, including what the page's own scripts added by then."""
    return run_headless(binary, page, profile, "--dump-dom", size=size)
