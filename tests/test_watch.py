"""`stgraph watch`: overlay video, events and scores files; Ctrl-C leaves complete outputs."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from _live_helpers import saved_pipeline, small_video

from stgraph.alarms import read_events
from stgraph.cli import main
from stgraph.pipeline import Pipeline
from stgraph.scores import ScoreTable
from stgraph.watch import watch

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return saved_pipeline(tmp_path_factory.mktemp("watch") / "model", window_radius=3)


@pytest.fixture(scope="module")
def video_path(tmp_path_factory) -> Path:
    return small_video(5, n_frames=30, anomalies=("fast",)).write_video(
        tmp_path_factory.mktemp("videos") / "clip.mp4")


def count_frames(path: Path) -> int:
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), f"cannot reopen {path}"
    frames = 0
    while capture.read()[0]:
        frames += 1
    capture.release()
    return frames


def test_watch_cli_writes_overlay_events_and_scores(model_dir, video_path, tmp_path, capsys):
    pipe = Pipeline.load(model_dir, progress=False)
    low = pipe.model.train_scores_.quantile(0.5)  # low threshold: alarms are certain
    out, events, scores = tmp_path / "overlay.mp4", tmp_path / "events.jsonl", tmp_path / "s.csv"
    code = main(["watch", "--model", str(model_dir), "--video", str(video_path), "--out", str(out),
                 "--events", str(events), "--scores", str(scores), "--threshold", str(low),
                 "--min-duration", "1", "--merge-gap", "0"])
    assert code == 0
    assert "30 frames" in capsys.readouterr().out
    assert count_frames(out) == 30
    height, width = cv2.VideoCapture(str(out)).read()[1].shape[:2]
    assert (height, width) == (120 + 70, 160)  # frame + score-curve strip
    table = ScoreTable.read_csv(scores)
    batch = pipe.score(video_path)
    assert list(table.video_frames["clip"]) == list(range(30))
    np.testing.assert_allclose(table.column("score"), batch.column("score"), atol=1e-6)
    logged = read_events(events)
    assert logged and all(e.video == "clip" and e.peak_score > low for e in logged)
    hot = table.frame_scores(empty=0.0)["clip"]
    assert sum(e.hot_frames for e in logged) == int((hot.scores > low).sum())


def test_watch_rejects_missing_model_and_bad_extension(model_dir, video_path, tmp_path, capsys):
    assert main(["watch", "--model", str(tmp_path / "none"), "--video", str(video_path)]) == 2
    assert "none" in capsys.readouterr().err
    with pytest.raises(ValueError, match="extension"):
        watch(model_dir, str(video_path), out=tmp_path / "overlay.gif")


def test_interrupt_flushes_the_window_and_closes_every_file(model_dir, tmp_path):
    video = small_video(6, n_frames=30)

    def frames_then_ctrl_c():
        yield from video.frames[:12]
        raise KeyboardInterrupt

    out, events, scores = tmp_path / "o.avi", tmp_path / "e.jsonl", tmp_path / "s.csv"
    summary = watch(model_dir, frames_then_ctrl_c(), out=out, events=events, scores=scores,
                    threshold=0.0, min_duration=1, video="cam", log=lambda line: None)
    assert summary["interrupted"] and summary["frames"] == 12  # the 3 waiting frames too
    assert count_frames(out) == 12
    assert list(ScoreTable.read_csv(scores).video_frames["cam"]) == list(range(12))
    (event,) = read_events(events)  # threshold 0: one event over every frame with objects
    assert event.video == "cam" and event.end_frame <= 11


def test_sigint_during_watch_leaves_readable_outputs(model_dir, tmp_path):
    clip = small_video(7, n_frames=150).write_video(tmp_path / "long.mp4")  # 15 s at 10 fps
    out, events, scores = tmp_path / "o.mp4", tmp_path / "e.jsonl", tmp_path / "s.csv"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "stgraph.cli", "--quiet", "watch", "--model", str(model_dir),
         "--video", str(clip), "--realtime", "--out", str(out), "--events", str(events),
         "--scores", str(scores), "--threshold", "0.0", "--min-duration", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        for line in process.stderr:  # wait until it is watching
            if "Ctrl-C to stop" in line or time.monotonic() > deadline:
                break
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert "stopped by Ctrl-C" in stdout
    written = count_frames(out)
    assert 0 < written < 150
    assert len(ScoreTable.read_csv(scores).video_frames["long"]) == written
    assert all(e.video == "long" for e in read_events(events))
