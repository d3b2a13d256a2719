"""The runnable examples stay runnable (the ones that need no ../shared data)."""
from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

from detectors import write_detections
from stgraph.datasets import make_normal_videos, make_test_videos
from stgraph.scores import ScoreTable

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", [name, *args])
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")


def test_quickstart_writes_scores_and_curve(tmp_path: Path, monkeypatch, capsys):
    run_example("quickstart_synthetic.py", ["--out", str(tmp_path)], monkeypatch)
    table = ScoreTable.read_csv(tmp_path / "scores.csv")
    assert len(table) > 0 and (tmp_path / "curve.png").stat().st_size > 0
    micro = float(capsys.readouterr().out.split("frame AUC micro ")[1].split(",")[0])
    assert micro > 80  # anomalous frames score higher than normal ones


def test_own_detections_scores_a_jsonl_video(tmp_path: Path, monkeypatch, capsys):
    train = [tmp_path / f"{v.name}.jsonl" for v in make_normal_videos(2, seed=0, n_frames=40)]
    for path, video in zip(train, make_normal_videos(2, seed=0, n_frames=40)):
        write_detections(path, video.ground_truth_detections(), video.name)
    test_video = make_test_videos(1, seed=0, n_frames=40)[0]
    write_detections(tmp_path / "test.jsonl", test_video.ground_truth_detections(), "test")
    out = tmp_path / "scores.csv"
    run_example("own_detections.py", [*map(str, train), "--test", str(tmp_path / "test.jsonl"),
                                      "--out", str(out)], monkeypatch)
    table = ScoreTable.read_csv(out)
    n_objects = sum(len(d) for d in test_video.ground_truth_detections())
    assert len(table) == n_objects and "Highest:" in capsys.readouterr().out
