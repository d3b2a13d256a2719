"""Small hand-checkable score tables shared by the tests of stgraph.scores."""
from __future__ import annotations

import numpy as np

from detectors.base import Detections
from stgraph.scores import ScoreTable

CLASSES = ("person", "bicycle")

# Hand-checkable video: frames 0..4, frames 1 and 4 have no objects.
#   max  per frame with objects: f0 3, f2 4, f3 6  -> empty frames get min = 3
#   mean per frame with objects: f0 2, f2 4, f3 3  -> empty frames get min = 2
HAND = {0: [1.0, 3.0], 1: [], 2: [4.0], 3: [1.0, 2.0, 6.0], 4: []}


def dets(frame: int, n: int) -> Detections:
    """``n`` objects in ``frame``: box i is [10i, 20, 10i + 5, 40], labels alternate 0, 1."""
    x = 10.0 * np.arange(n)
    boxes = np.stack([x, np.full(n, 20.0), x + 5, np.full(n, 40.0)], axis=1)
    return Detections(boxes, np.linspace(0.9, 0.6, n), np.arange(n) % 2, frame_index=frame,
                      image_size=(120, 160), class_names=CLASSES)


def object_table(video: str, objects_per_frame: dict[int, list[float]], **extra) -> ScoreTable:
    """Object rows of one video: frame -> object scores (an empty list = a frame without objects)."""
    frames = sorted(objects_per_frame)
    detections = [dets(f, len(objects_per_frame[f])) for f in frames]
    scores = [np.array(objects_per_frame[f], float) for f in frames]
    return ScoreTable.from_detections(video, detections, scores, extra=extra or None)


def patch_table(video: str, n_frames: int = 3, seed: int = 0) -> ScoreTable:
    """Patch rows of one video: a 1x2 grid ("grid1x2", index 0) and a 2x2 grid ("grid2x2",
    index 1) on 40x60 frames, every frame, random scores."""
    rng = np.random.default_rng(seed)
    cells = [(0, [0, 0, 30, 40]), (0, [30, 0, 60, 40])] + [
        (1, [x, y, x + 30, y + 20]) for y in (0, 20) for x in (0, 30)]
    frames = np.repeat(np.arange(n_frames), len(cells))
    grid = np.tile([g for g, _ in cells], n_frames)
    boxes = np.tile(np.array([b for _, b in cells], float), (n_frames, 1))
    names = np.array(["grid1x2", "grid2x2"])[grid]
    return ScoreTable.from_patches(video, frames, boxes, rng.random(frames.shape[0]), names)
