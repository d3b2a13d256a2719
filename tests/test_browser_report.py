"""The HTML report in headless Chromium: it renders, the slider recounts, no console errors.

Slow suite (needs the Debian ``chromium`` package; skips without it): ``make test-slow``.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

from stgraph.cli import main
from tests._browser import load, screenshot, screenshot_dir
from tests.test_report import frame_labels, scene, scene_table  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow


def counts(dom: str, scope: str) -> dict[str, int]:
    row = re.search(rf'<tr data-scope="{scope}">(.*?)</tr>', dom, re.S).group(1)
    return {k: int(v) for k, v in re.findall(r'data-count="(\w+)">(\d+)<', row)}


def expected(threshold: float, videos=("01", "02")) -> dict[str, int]:
    fs = scene_table().frame_scores()
    scores = np.concatenate([fs[v].scores for v in videos])
    labels = np.concatenate([frame_labels()[v] for v in videos])
    hot = scores >= threshold
    return {"tp": int((hot & (labels == 1)).sum()), "fp": int((hot & (labels == 0)).sum()),
            "tn": int((~hot & (labels == 0)).sum()), "fn": int((~hot & (labels == 1)).sum())}


def test_report_page_in_chromium(scene, tmp_path):
    out = scene / "report"
    assert main(["eval", "--scores", str(scene / "scores.csv"),
                 "--labels", str(scene / "labels.npz"), "--masks", str(scene / "masks"),
                 "--report", str(out), "--video-root", str(scene / "frames"), "--html"]) == 0
    url = (out / "report.html").resolve().as_uri()
    dom, console = load(url)
    assert console == []
    assert 'data-ready="1"' in dom
    assert dom.count('class="score"') == 1 and 'class="threshold"' in dom  # the curve is drawn
    assert 'id="frame-svg"' in dom and dom.count('class="box') >= 2          # the peak frame
    youden = counts(dom, "all")
    assert youden == {"tp": 19, "fp": 1, "tn": 19, "fn": 1}
    # moving the slider (through its own input event) recounts and redraws the alarm segments
    for threshold in (0.5, 0.9, 0.05):
        moved, console = load(f"{url}#video=02&threshold={threshold}")
        assert console == []
        assert counts(moved, "all") == expected(threshold)
        assert counts(moved, "video") == expected(threshold, ("02",))
    assert counts(load(f"{url}#threshold=0.9")[0], "all") != youden
    # clicking the false alarm's frame and its box: the object panel fills
    clicked, console = load(f"{url}#video=02&frame=3&object=0")
    assert console == []
    assert "object 0 of frame 3" in clicked and 'id="graph-svg"' in clicked
    picture, console = screenshot(f"{url}#video=02&frame=3&object=0",
                                  screenshot_dir(tmp_path) / "html_report.png")
    assert console == [] and picture.stat().st_size > 10_000
