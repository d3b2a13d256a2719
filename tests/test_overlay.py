"""write_overlay: scored boxes over the frames, as a video or a PNG of the peak-score frame."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from detectors.base import Detections
from stgraph.io.frames import SourceError
from stgraph.overlay import write_overlay
from stgraph.scores import ScoreTable

H, W, T = 64, 96, 10
PEAK = 6
BOX = [20.0, 10.0, 60.0, 50.0]


@pytest.fixture()
def frames() -> np.ndarray:
    """[T, H, W, 3] uint8: frame k is uniformly grey at level 10 * k (so frames can be told apart)."""
    return np.stack([np.full((H, W, 3), 10 * k, np.uint8) for k in range(T)])


@pytest.fixture()
def table() -> ScoreTable:
    """One box per frame (none in frame 2); frame PEAK holds the highest score."""
    dets, scores = [], []
    for k in range(T):
        boxes = np.zeros((0, 4)) if k == 2 else np.array([BOX])
        dets.append(Detections(boxes, np.ones(len(boxes)), np.zeros(len(boxes), np.int64),
                               frame_index=k, image_size=(H, W), class_names=("person",)))
        scores.append(np.full(len(boxes), 5.0 if k == PEAK else 0.1 * k))
    return ScoreTable.from_detections("clip", dets, scores)


def test_png_is_the_peak_frame_with_a_red_box(frames, table, tmp_path: Path):
    out = write_overlay(frames, table, "clip", tmp_path / "peak.png")
    image = cv2.imread(str(out))
    assert image.shape == (H, W, 3)
    assert (image[H - 5, W - 5] == 10 * PEAK).all()  # untouched background of frame PEAK
    b, g, r = image[int(BOX[3]), 40].astype(int)  # bottom edge of the box, highest score -> red
    assert r > 120 and r > g + 60 and r > b + 60
    assert image[2:12, 2:60].max() > 200  # white banner text on a black band
    assert [p.name for p in tmp_path.iterdir()] == ["peak.png"]  # no temp file left behind


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_video_has_every_frame(frames, table, tmp_path: Path, suffix):
    out = write_overlay(frames, table, "clip", tmp_path / f"overlay{suffix}", fps=5)
    cap = cv2.VideoCapture(str(out))
    read = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        read.append(image)
    cap.release()
    assert len(read) == T and read[0].shape == (H, W, 3)
    # far from box and banner each frame keeps its own grey level (lossy codec: a few levels off)
    levels = [int(image[H - 4, W - 4].mean()) for image in read]
    assert np.allclose(levels, 10 * np.arange(T), atol=4)


def test_errors_name_the_problem(frames, table, tmp_path: Path):
    with pytest.raises(ValueError, match="overlay.gif"):
        write_overlay(frames, table, "clip", tmp_path / "overlay.gif")
    with pytest.raises(ValueError, match="'other'.*clip"):
        write_overlay(frames, table, "other", tmp_path / "o.png")
    missing = tmp_path / "missing.avi"
    with pytest.raises(SourceError, match="missing.avi"):
        write_overlay(missing, table, "clip", tmp_path / "o.png")
    broken = tmp_path / "broken.avi"
    broken.write_bytes(b"not a video")
    with pytest.raises(OSError, match="broken.avi"):
        write_overlay(broken, table, "clip", tmp_path / "o.mp4")
    assert not list(tmp_path.glob("o.*")) and not list(tmp_path.glob(".o.*"))


def test_a_video_that_does_not_fit_the_table_is_refused(frames, table, tmp_path: Path):
    short = frames[:3]  # frames 0..2: the peak frame 6 is missing
    with pytest.raises(ValueError, match="no frame 6"):
        write_overlay(short, table, "clip", tmp_path / "o.png")
    shifted = ScoreTable.from_detections(
        "late", [Detections([BOX], [1.0], [0], frame_index=50, image_size=(H, W))], [np.ones(1)])
    with pytest.raises(ValueError, match="none of the 10 frames"):
        write_overlay(frames, shifted, "late", tmp_path / "o.mp4")
    assert not list(tmp_path.iterdir())
