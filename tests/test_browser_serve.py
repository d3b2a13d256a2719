"""`stgraph serve` as a real process, in headless Chromium: the dashboard shows every source,
the events list fills while a short video streams, a killed server restarts with its events,
Ctrl-C ends it cleanly. Slow suite (needs the Debian ``chromium`` package; skips without it)."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import pytest

from tests._browser import chromium_binary, load, screenshot, screenshot_dir
from tests._live_helpers import saved_pipeline, small_video

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "stgraph.cli", "--quiet", "serve", *args],
                            stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)


def get(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def wait_for(url: str, test, timeout: float = 120.0):
    deadline, last = time.time() + timeout, None
    while time.time() < deadline:
        try:
            last = get(url)
            if test(last):
                return last
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting on {url}: {last}")


def test_dashboard_and_events_in_chromium(tmp_path):
    chromium_binary()
    model = saved_pipeline(tmp_path / "model")
    folders = []
    for seed, anomalies in ((5, ("fast",)), (6, ())):
        folder = tmp_path / f"video{seed}"
        folder.mkdir()
        for t, image in enumerate(small_video(seed, n_frames=120, anomalies=anomalies).frames):
            cv2.imwrite(str(folder / f"{t:03d}.png"), image)
        folders.append(folder)
    port, db = free_port(), tmp_path / "events.db"
    base = f"http://127.0.0.1:{port}"
    args = ["--model", str(model), "--port", str(port), "--db", str(db), "--realtime",
            "--threshold", "3.0", "--min-duration", "1", "--merge-gap", "2", "--retry-s", "1",
            "--source", str(folders[0]), "--source", str(folders[1]),
            "--source", str(tmp_path / "missing.mp4")]
    server = start_server(args, tmp_path / "serve.log")
    shots = screenshot_dir(tmp_path)
    try:
        # while the videos stream (real time: 120 frames at 25 fps): frames and events arrive
        sources = wait_for(f"{base}/api/sources",
                           lambda s: s[0]["events"] >= 1 and s[0]["status"] == "running")
        assert sources[2]["status"] == "failed" and "missing.mp4" in sources[2]["error"]
        dom, console = load(f"{base}/?mode=snapshots")
        assert console == []
        assert dom.count('class="card') == 3 and 'data-ready="1"' in dom
        assert dom.count('<svg viewBox="0 0 600 90"') == 3 and "failed" in dom  # charts
        events_dom, console = load(f"{base}/events")
        assert console == [] and events_dom.count('class="event"') >= 1
        assert "keyframes/0.jpg" in events_dom
        screenshot(f"{base}/?mode=snapshots", shots / "serve_dashboard.png", (1400, 800))
        screenshot(f"{base}/events", shots / "serve_events.png", (1400, 700))
        before = get(f"{base}/api/events?limit=10000")["events"]
        assert before
    finally:
        server.kill()  # as a crash would: no shutdown at all
        server.wait(30)
    restarted = start_server(args[:-6] + ["--source", str(tmp_path / "missing.mp4")],
                             tmp_path / "serve2.log")
    try:
        after = wait_for(f"{base}/api/events?limit=10000", lambda e: True)["events"]
        assert after == before  # every stored event survived the kill
        restarted.send_signal(signal.SIGINT)  # Ctrl-C
        assert restarted.wait(60) == 0
        assert "stgraph serve: stopped" in (tmp_path / "serve2.log").read_text()
    finally:
        if restarted.poll() is None:
            restarted.kill()
