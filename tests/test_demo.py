"""``python -m stgraph.demo`` on a tiny setting: every file written, a summary that adds up."""
from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import pytest

from stgraph.demo import main
from stgraph.scores import ScoreTable

TINY = ["--train", "1", "--test", "2", "--frames", "30", "--people", "3", "--epochs", "2",
        "--hidden", "8", "--quiet"]


@pytest.mark.parametrize("detector", ["motion", "gt"])
def test_demo_writes_every_file_and_a_sane_summary(tmp_path: Path, detector):
    out = tmp_path / "demo"
    assert main(["--out", str(out), "--detector", detector, *TINY]) == 0
    for name in ("graph.png", "curve.png", "overlay.png"):
        assert cv2.imread(str(out / name)) is not None, name
    summary = json.loads((out / "summary.json").read_text())
    table = ScoreTable.read_csv(out / "scores.csv")
    clips = summary["data"]["test_clips"]
    assert table.videos == sorted(clips) == ["test-00-fast", "test-01-wrong_direction"]
    assert summary["data"]["frames"] == {"train": 30, "test": 60}
    assert summary["objects"]["test"] == len(table) == summary["test_graph"]["nodes"] > 0
    assert summary["test_graph"]["spatial_edges"] + summary["test_graph"]["temporal_edges"] \
        == summary["test_graph"]["edges"]
    metrics = summary["metrics"]
    assert 0.0 <= metrics["micro_auc"] <= 1.0
    assert set(metrics["per_video_auc"]) == set(clips) == set(metrics["per_video_object_auc"])
    assert all(math.isnan(v) or 0.0 <= v <= 1.0 for v in metrics["per_video_object_auc"].values())
    assert {"render", "features", "fit", "score", "write"} <= set(summary["timings_s"])
    assert ("detect" in summary["timings_s"]) == (detector == "motion")
    assert summary["training_loss"]["epochs"] == 2
    model = out / "model"
    assert (model / "pipeline.json").is_file() == (detector == "motion")
    assert set(summary["files"]) >= {"graph.png", "scores.csv", "curve.png", "overlay.png",
                                     "summary.json", "model"}


def test_demo_bad_settings_exit_2(tmp_path: Path, capsys):
    assert main(["--out", str(tmp_path), "--frames", "5", "--quiet"]) == 2
    assert "n_frames must be >= 20" in capsys.readouterr().err
