"""CompositeDetector: later detectors only add boxes the earlier ones do not explain."""
from __future__ import annotations

import numpy as np
import pytest

from detectors.base import BaseDetector, Detections
from detectors.composite import CompositeDetector, overlap_of_smaller
from detectors.motion import MotionRegionDetector
from stgraph.registry import build_component, component_spec


class _Fixed(BaseDetector):
    def __init__(self, boxes, names):
        self.boxes, self.class_names = np.asarray(boxes, np.float32).reshape(-1, 4), tuple(names)

    def detect(self, image, frame_index=0):
        return Detections(self.boxes, np.full(len(self.boxes), 0.5), np.zeros(len(self.boxes)),
                          frame_index, image.shape[:2], self.class_names)


def test_overlap_of_smaller():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[0, 0, 20, 20], [5, 0, 15, 10], [30, 30, 40, 40]])
    np.testing.assert_allclose(overlap_of_smaller(a, b), [[1.0, 0.5, 0.0]])


def test_merge_keeps_first_and_adds_only_new_boxes():
    first = _Fixed([[0, 0, 10, 20]], ["person"])
    second = _Fixed([[-2, -2, 12, 22], [40, 40, 50, 50]], ["moving"])
    det = CompositeDetector([first, second])
    d = det.detect(np.zeros((64, 64, 3), np.uint8), frame_index=3)
    assert d.names == ["person", "moving"] and d.frame_index == 3
    np.testing.assert_array_equal(d.boxes[1], [40, 40, 50, 50])
    assert det.class_names == ("person", "moving")


def test_empty_frames_and_bad_settings():
    det = CompositeDetector([_Fixed([], ["person"]), _Fixed([], ["moving"])])
    assert len(det.detect(np.zeros((8, 8, 3), np.uint8))) == 0
    with pytest.raises(ValueError, match="at least one"):
        CompositeDetector([])
    with pytest.raises(ValueError, match="overlap"):
        CompositeDetector([_Fixed([], ["a"])], overlap=2)


def test_registry_round_trip_and_warmup():
    det = CompositeDetector([MotionRegionDetector(clip_length=4), MotionRegionDetector()])
    assert det.warmup_frames == 4
    rebuilt = build_component(component_spec(det, "detector"), "detector")
    assert isinstance(rebuilt, CompositeDetector)
    assert rebuilt.get_params() == det.get_params()
