"""Tiny synthetic inputs of every kind an estimator can consume, for the contract battery.

``contract_inputs(kind, seed)`` returns ``(train_videos, y, test_video)``:

- ``"detections"``: videos of 12 frames, 3 objects walking right, 6-d features that depend on the
  position (a frame without objects in the test video);
- ``"frames"``: uint8 BGR videos ``[12, 32, 32, 3]``, a textured square moving right on a
  textured background (a faster square in the test video);
- ``"snippets"``: :class:`stgraph.features.snippets.SnippetFeatures` of 4 snippets on two grids.
- ``"frames+detections"``: the ``"frames"`` videos paired with a box on the square in each
  frame (4-d features: its position and the frame's mean intensity; the test video has one
  frame without the box).

Labels ``y`` are given for every kind (all zero for normal-only training; weak methods get
one abnormal video), so the battery can call ``fit(X, y)`` uniformly.
"""
from __future__ import annotations

import numpy as np

from detectors.base import Detections

IMAGE_HW = (32, 32)


def _detection_video(rng: np.random.Generator, n_frames: int = 12,
                     empty_frame: int | None = None) -> list[Detections]:
    h, w = 120, 160
    start = rng.uniform([0, 10], [60, 80], size=(3, 2))
    frames = []
    for t in range(n_frames):
        if t == empty_frame:
            frames.append(Detections.empty(t, (h, w), ("person",), 6))
            continue
        corner = start + [3.0 * t, 0.0]
        boxes = np.concatenate([corner, corner + [20.0, 30.0]], axis=1)
        centre = (corner + [10.0, 15.0]) / [w, h]
        features = np.concatenate([np.sin(3 * centre), np.cos(3 * centre),
                                   rng.normal(0, 0.05, (3, 2))], axis=1).astype(np.float32)
        frames.append(Detections(boxes.astype(np.float32), np.full(3, 0.9, np.float32),
                                 np.zeros(3, np.int64), frame_index=t, image_size=(h, w),
                                 class_names=("person",), features=features))
    return frames


def _frame_video(rng: np.random.Generator, speed: int = 1, n_frames: int = 12) -> np.ndarray:
    background = rng.integers(40, 90, size=(*IMAGE_HW, 3), dtype=np.uint8)
    texture = rng.integers(150, 255, size=(8, 8, 3), dtype=np.uint8)
    video = np.repeat(background[None], n_frames, axis=0)
    for t in range(n_frames):
        x = (2 + speed * t) % (IMAGE_HW[1] - 8)
        video[t, 12:20, x:x + 8] = texture
    return video


def _square_detections(video: np.ndarray, speed: int = 1,
                       empty_frame: int | None = None) -> list[Detections]:
    """A box on the moving square of :func:`_frame_video` in each frame, with 4-d features."""
    h, w = video.shape[1:3]
    frames = []
    for t in range(video.shape[0]):
        if t == empty_frame:
            frames.append(Detections.empty(t, (h, w), ("person",), 4))
            continue
        x = (2 + speed * t) % (w - 8)
        box = np.array([[x, 12, x + 8, 20]], np.float32)
        features = np.array([[x / w, 12 / h, speed / 4, video[t].mean() / 255]], np.float32)
        frames.append(Detections(box, np.full(1, 0.9, np.float32), np.zeros(1, np.int64),
                                 frame_index=t, image_size=(h, w), class_names=("person",),
                                 features=features))
    return frames


def _snippet_video(rng: np.random.Generator, abnormal: bool = False):
    from stgraph.features.snippets import SnippetFeatures

    n_snippets, dim = 4, 8
    grids = [(1, 1), (2, 2)]
    features = []
    for rows, cols in grids:
        x = rng.normal(0, 1, (n_snippets, rows * cols, dim)).astype(np.float32)
        if abnormal:
            x[2] += 3.0
        features.append(x)
    ranges = np.array([[16 * k, 16 * (k + 1)] for k in range(n_snippets)], np.int64)
    return SnippetFeatures(features=features, grids=grids, frame_ranges=ranges,
                           n_frames=16 * n_snippets, image_hw=(64, 64))


def contract_inputs(kind: str, seed: int = 0):
    """``(train_videos, y, test_video)`` of ``kind`` (see the module docstring)."""
    rng = np.random.default_rng(seed)
    if kind == "detections":
        train = [_detection_video(rng) for _ in range(3)]
        return train, np.zeros(3, np.int64), _detection_video(rng, empty_frame=4)
    if kind == "frames":
        train = [_frame_video(rng) for _ in range(3)]
        for video in train:
            video.setflags(write=False)  # an estimator that writes into its input fails here
        test = _frame_video(rng, speed=3)
        test.setflags(write=False)
        return train, np.zeros(3, np.int64), test
    if kind == "frames+detections":
        from stgraph.models.late_fusion import FramesAndDetections

        frames, y, test = contract_inputs("frames", seed)
        train = [FramesAndDetections(v, _square_detections(v)) for v in frames]
        return train, y, FramesAndDetections(test, _square_detections(test, 3, empty_frame=4))
    if kind == "snippets":
        train = [_snippet_video(rng, abnormal=k % 2 == 1) for k in range(4)]
        return train, np.array([0, 1, 0, 1]), _snippet_video(rng, abnormal=True)
    raise ValueError(f"unknown input kind {kind!r}")


def copy_inputs(videos):
    """A deep copy to compare against after fit/score (inputs must never change)."""
    import copy

    return copy.deepcopy(videos)


def same_inputs(a, b) -> bool:
    """Whether two inputs (nested lists of Detections / arrays / SnippetFeatures) are equal."""
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and np.array_equal(a, b)
    if isinstance(a, Detections):
        return (np.array_equal(a.boxes, b.boxes) and np.array_equal(a.scores, b.scores)
                and np.array_equal(a.labels, b.labels) and a.frame_index == b.frame_index
                and (a.features is None) == (b.features is None)
                and (a.features is None or np.array_equal(a.features, b.features)))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same_inputs(x, y) for x, y in zip(a, b))
    if hasattr(a, "features") and hasattr(a, "frame_ranges"):
        return (same_inputs(list(a.features), list(b.features))
                and np.array_equal(a.frame_ranges, b.frame_ranges))
    return a == b
