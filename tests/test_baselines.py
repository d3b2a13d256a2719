"""Naive frame-score baselines on hand-made inputs whose answers are worked out by hand."""
from __future__ import annotations

import numpy as np
import pytest

from detectors.base import Detections
from stgraph.baselines import class_confidence_scores, frame_difference_scores
from stgraph.io.frames import ArraySource

CLASSES = ("person", "car", "bicycle")


def grey(level: int, shape=(4, 6)) -> np.ndarray:
    return np.full((*shape, 3), level, np.uint8)


def test_frame_difference_is_the_mean_absolute_grey_change():
    frames = [grey(0), grey(10), grey(10), grey(40)]
    half = grey(0)
    half[:, :3] = 100  # half of the pixels change by 100 -> mean 50
    np.testing.assert_allclose(frame_difference_scores(frames), [10, 10, 0, 30])
    np.testing.assert_allclose(frame_difference_scores([grey(0), half]), [50, 50])


def test_frame_difference_takes_frame_objects_and_edge_cases():
    source = ArraySource(np.stack([grey(5), grey(25), grey(20)]))
    np.testing.assert_allclose(frame_difference_scores(source), [20, 20, 5])
    np.testing.assert_allclose(frame_difference_scores([grey(7)]), [0.0])
    with pytest.raises(ValueError, match="no frames"):
        frame_difference_scores([])


def dets(frame: int, labels: list[int], scores: list[float]) -> Detections:
    boxes = np.array([[0, 0, 10, 10]] * len(labels), np.float32).reshape(-1, 4)
    return Detections(boxes, scores, labels, frame_index=frame, class_names=CLASSES)


def test_class_confidence_takes_the_best_non_normal_object():
    video = [
        dets(0, [0, 0], [0.9, 0.8]),          # only people -> 0
        dets(1, [0, 1, 2], [0.99, 0.4, 0.7]),  # car 0.4, bicycle 0.7 -> 0.7
        dets(2, [], []),                      # nothing -> 0
        dets(3, [1], [0.35]),                 # car -> 0.35
    ]
    np.testing.assert_allclose(class_confidence_scores(video), [0, 0.7, 0, 0.35], rtol=1e-6)
    # with bicycles counted as normal, frame 1 falls back to the car
    np.testing.assert_allclose(class_confidence_scores(video, normal_classes=("person", "bicycle")),
                               [0, 0.4, 0, 0.35], rtol=1e-6)
    assert class_confidence_scores([]).shape == (0,)
