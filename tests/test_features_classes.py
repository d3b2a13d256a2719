"""ClassFeatures: one-hot detector class (x score) with an "other" column."""
from __future__ import annotations

import json

import numpy as np
import pytest

from detectors.base import Detections
from detectors.coco import COCO_CLASSES
from stgraph.features import ClassFeatures, ConcatFeatures, FeatureError, GeometryFeatures
from stgraph.registry import build_component, component_spec

H, W = 60, 80
BLANK = np.zeros((H, W, 3), np.uint8)


def dets(labels, scores, class_names=("person", "bicycle", "car")) -> Detections:
    n = len(labels)
    boxes = np.tile(np.array([[1, 2, 30, 40]], np.float32), (n, 1))
    return Detections(boxes, scores, labels, frame_index=4, image_size=(H, W),
                      class_names=class_names)


def test_weighted_one_hot_with_other_column():
    d = dets([0, 2, 1], [0.9, 0.5, 0.25])
    f = ClassFeatures(("person", "bicycle"), weighted=True).extract(BLANK, d)
    assert f.dtype == np.float32 and f.shape == (3, 3)
    np.testing.assert_allclose(f, [[0.9, 0, 0], [0, 0, 0.5], [0, 0.25, 0]])
    unweighted = ClassFeatures(("person", "bicycle"), weighted=False).extract(BLANK, d)
    np.testing.assert_array_equal(unweighted, [[1, 0, 0], [0, 0, 1], [0, 1, 0]])
    assert ClassFeatures(("person", "bicycle")).columns == ("person", "bicycle", "other")


def test_columns_follow_class_names_not_label_ids():
    """The same class under another numbering lands in the same column."""
    d = dets([0], [1.0], class_names=("car", "person"))
    f = ClassFeatures(("person", "car"), weighted=False).extract(BLANK, d)
    np.testing.assert_array_equal(f, [[0, 1, 0]])


def test_default_is_coco_plus_other():
    producer = ClassFeatures()
    assert producer.dim == len(COCO_CLASSES) + 1 == 81
    d = dets([1], [0.7], class_names=COCO_CLASSES)
    f = producer.extract(BLANK, d)
    assert f[0, COCO_CLASSES.index("bicycle")] == pytest.approx(0.7)
    assert np.count_nonzero(f) == 1


def test_empty_frame_and_bad_inputs():
    empty = Detections.empty(0, (H, W), ("person",))
    assert ClassFeatures(("person",)).extract(BLANK, empty).shape == (0, 2)
    nameless = Detections([[0, 0, 5, 5]], [0.5], [0], image_size=(H, W))
    with pytest.raises(FeatureError, match="class_names"):
        ClassFeatures().extract(BLANK, nameless)
    with pytest.raises(FeatureError, match="repeats"):
        ClassFeatures(("person", "person")).dim
    with pytest.raises(FeatureError, match="sequence of class names"):
        ClassFeatures("person").dim
    with pytest.raises(FeatureError, match="size"):
        ClassFeatures().extract(np.zeros((H + 1, W, 3), np.uint8), dets([0], [1.0]))


def test_params_round_trip_inside_concat():
    producer = ConcatFeatures([GeometryFeatures(), ClassFeatures(("person", "car"), weighted=False)])
    spec = json.loads(json.dumps(component_spec(producer)))
    rebuilt = build_component(spec, "features")
    assert rebuilt.dim == 8 + 3
    d = dets([2, 0], [0.4, 0.8])
    np.testing.assert_array_equal(rebuilt.extract(BLANK, d), producer.extract(BLANK, d))
