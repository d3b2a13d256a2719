"""Headless Chromium (Debian's ``chromium`` package) for the browser tests: load a page, get its
DOM after the scripts ran, a screenshot, and the console messages (each test fails on them).

Nothing is downloaded: the tests skip when no ``chromium`` binary is on the PATH
(``apt-get install -y chromium``; see the README). Screenshots go to ``$STGRAPH_SCREENSHOTS``
when it is set (the README's pictures come from there), else to the test's temporary folder.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

BINARIES = ("chromium", "chromium-browser", "google-chrome")


def chromium_binary() -> str:
    """The browser's path; skips the test when there is none."""
    for name in BINARIES:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no headless Chromium on the PATH (apt-get install -y chromium)")


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    base = [chromium_binary(), "--headless", "--no-sandbox", "--disable-gpu",
            "--no-first-run", "--disable-extensions", "--enable-logging=stderr", "--v=0",
            "--virtual-time-budget=3000"]
    return subprocess.run(base + args, capture_output=True, text=True, timeout=timeout)


def console_messages(stderr: str) -> list[str]:
    """The page's console lines (``INFO:CONSOLE``) in Chromium's log."""
    return [line for line in stderr.splitlines() if re.search(r":CONSOLE[:(]", line)]


def load(url: str, timeout: float = 90) -> tuple[str, list[str]]:
    """(DOM after the page's scripts ran, console messages)."""
    done = _run(["--dump-dom", url], timeout)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, console_messages(done.stderr)


def screenshot(url: str, path: Path, size: tuple[int, int] = (1280, 1500),
               timeout: float = 90) -> tuple[Path, list[str]]:
    """A PNG of the page (``size`` = window width, height), and the console messages."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    done = _run([f"--screenshot={path}", f"--window-size={size[0]},{size[1]}",
                 "--hide-scrollbars", url], timeout)
    assert done.returncode == 0 and path.is_file(), done.stderr[-2000:]
    return path, console_messages(done.stderr)


def screenshot_dir(tmp_path: Path) -> Path:
    return Path(os.environ.get("STGRAPH_SCREENSHOTS") or tmp_path)
