"""The Detections contract: validation, clipping, selection, concatenation, dict round trip."""
from __future__ import annotations

import numpy as np
import pytest

from detectors import BaseDetector, DetectionError, Detections, check_image, run_detector
from stgraph.io import ArraySource


def _dets(n: int = 3, frame: int = 5) -> Detections:
    boxes = np.array([[10, 10, 30, 50], [100, 20, 140, 90], [50, 50, 60, 60]], np.float32)[:n]
    return Detections(boxes, np.linspace(0.9, 0.5, n), np.arange(n) % 2, frame_index=frame,
                      image_size=(120, 160), class_names=("person", "bicycle"))


def test_construction_normalises_dtypes_and_clips_to_image():
    d = Detections([[-5, 10, 200, 130]], [0.5], [1], image_size=(120, 160))
    assert d.boxes.dtype == np.float32 and d.labels.dtype == np.int64
    np.testing.assert_array_equal(d.boxes, [[0, 10, 160, 120]])


@pytest.mark.parametrize("kwargs, match", [
    (dict(boxes=np.zeros((2, 3)), scores=[1, 1], labels=[0, 0]), r"\[N, 4\]"),
    (dict(boxes=np.zeros((2, 4)), scores=[1], labels=[0, 0]), "2 boxes but 1 scores"),
    (dict(boxes=[[0, 0, np.nan, 1]], scores=[1], labels=[0]), "NaN"),
    (dict(boxes=[[0, 0, 1, 1]], scores=[np.inf], labels=[0]), "NaN or inf"),
    (dict(boxes=[[5, 0, 1, 1]], scores=[1], labels=[0]), "x2 >= x1"),
    (dict(boxes=[[0, 0, 1, 1]], scores=[1], labels=[0], features=np.zeros((2, 3))), r"\[1, D\]"),
])
def test_invalid_detections_raise_clear_errors(kwargs, match):
    with pytest.raises(DetectionError, match=match):
        Detections(**kwargs)


def test_empty_and_selection():
    e = Detections.empty(frame_index=4, image_size=(10, 10), feature_dim=8)
    assert len(e) == 0 and e.features.shape == (0, 8) and e.boxes.shape == (0, 4)
    d = _dets()
    assert len(d[1]) == 1 and d[1].boxes[0, 0] == 100
    assert len(d[d.scores > 0.6]) == 2
    assert d[1:].frame_index == 5
    assert d.names == ["person", "bicycle", "person"]
    assert len(d.filter(classes=["bicycle"])) == 1 and len(d.filter(min_score=0.8)) == 1
    np.testing.assert_allclose(d.centers[0], [20, 30])
    np.testing.assert_allclose(d.areas[2], 100)


def test_concat_and_features():
    a = _dets(2).with_features(np.ones((2, 4)))
    b = _dets(1).with_features(np.zeros((1, 4)))
    c = Detections.concat([a, b])
    assert len(c) == 3 and c.features.shape == (3, 4)
    assert Detections.concat([a, _dets(1)]).features is None
    with pytest.raises(DetectionError):
        Detections.concat([])


def test_dict_round_trip_keeps_everything():
    d = _dets().with_features(np.arange(6, dtype=np.float32).reshape(3, 2))
    back = Detections.from_dict(d.to_dict())
    np.testing.assert_allclose(back.boxes, d.boxes)
    np.testing.assert_allclose(back.scores, d.scores, atol=1e-6)
    np.testing.assert_array_equal(back.labels, d.labels)
    np.testing.assert_allclose(back.features, d.features)
    assert (back.frame_index, back.image_size, back.class_names) == (5, (120, 160), ("person", "bicycle"))
    with pytest.raises(DetectionError, match="lacks keys"):
        Detections.from_dict({"boxes": []})


def test_check_image():
    assert check_image(np.zeros((4, 5), np.uint8), "x").shape == (4, 5, 3)
    with pytest.raises(DetectionError, match="uint8"):
        check_image(np.zeros((4, 5, 3), np.float32), "MyDetector")
    with pytest.raises(DetectionError, match="MyDetector"):
        check_image("image.jpg", "MyDetector")


class _BrightSpotDetector(BaseDetector):
    """Test double: one box around the brightest pixel."""

    def detect(self, image, frame_index=0):
        image = check_image(image, "spot")
        y, x = np.unravel_index(np.argmax(image[..., 0]), image.shape[:2])
        return Detections([[x - 1, y - 1, x + 1, y + 1]], [1.0], [0], frame_index=frame_index,
                          image_size=image.shape[:2])


def test_run_detector_over_a_source_keeps_frame_indices():
    frames = np.zeros((4, 10, 10, 3), np.uint8)
    for i in range(4):
        frames[i, 5, i + 2] = 255
    out = run_detector(_BrightSpotDetector(), ArraySource(frames, stride=2), progress=False)
    assert [d.frame_index for d in out] == [0, 2]
    np.testing.assert_allclose(out[1].centers[0], [4, 5])
    batch = _BrightSpotDetector().detect_batch(list(frames), start_index=10)
    assert [d.frame_index for d in batch] == [10, 11, 12, 13]


def test_empty_frame_with_features_survives_dict_round_trip():
    frame = Detections.empty(7, (240, 360), ("person",), 5)
    back = Detections.from_dict(frame.to_dict())
    assert back.features is not None and back.features.shape == (0, 5)
    assert back.frame_index == 7 and len(back) == 0


def test_package_exports_adapters_lazily():
    import detectors

    assert detectors.MotionRegionDetector.__module__ == "detectors.motion"
    assert detectors.read_detections.__module__ == "detectors.files"
    with pytest.raises(AttributeError, match="no_such_detector"):
        detectors.no_such_detector
