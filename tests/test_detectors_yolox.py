"""YOLOX ONNX detector: hand-checked letterbox, grid, decoding and NMS; the real YOLOX-Nano."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from detectors.base import DetectionError
from detectors.coco import COCO_CLASSES
from detectors.yolox_onnx import (YoloxOnnxDetector, decode_yolox_outputs, letterbox,
                                  select_detections, yolox_grid)


def test_letterbox_pastes_top_left_on_114_canvas():
    image = np.empty((100, 200, 3), np.uint8)
    image[:] = (10, 20, 30)                                     # B, G, R
    blob, ratio = letterbox(image, 64)
    assert blob.shape == (1, 3, 64, 64) and blob.dtype == np.float32
    assert ratio == pytest.approx(0.32)                         # min(64/100, 64/200)
    for channel, value in enumerate((10, 20, 30)):              # BGR kept, 0..255, no normalisation
        assert np.all(blob[0, channel, :32, :] == value)        # 200x100 -> 64x32 at the top-left
    assert np.all(blob[0, :, 32:, :] == 114)


def test_grid_rows_follow_yolox_order():
    cells, strides = yolox_grid(64)                             # sides 8, 4, 2 -> 64 + 16 + 4 rows
    assert cells.shape == (84, 2) and strides.shape == (84, 1)
    np.testing.assert_array_equal(cells[[0, 1, 8, 9, 64, 83]],
                                  [[0, 0], [1, 0], [0, 1], [1, 1], [0, 0], [1, 1]])
    np.testing.assert_array_equal(strides[[0, 63, 64, 79, 80, 83], 0], [8, 8, 16, 16, 32, 32])


def test_decoding_by_hand():
    cells, strides = yolox_grid(64)
    raw = np.zeros((84, 7), np.float32)                         # 2 classes
    raw[9] = [0.5, 0.25, np.log(2), 0, 0.8, 0.25, 0.9]          # cell (1, 1), stride 8
    raw[80] = [0, 0, 0, 0, 0.5, 1.0, 0.0]                       # cell (0, 0), stride 32
    boxes, scores = decode_yolox_outputs(raw, cells, strides, ratio=0.5)
    # centre ((0.5 + 1) * 8, (0.25 + 1) * 8) = (12, 10), size (2 * 8, 1 * 8) -> [4, 6, 20, 14]
    np.testing.assert_allclose(boxes[9], np.array([4, 6, 20, 14]) / 0.5, rtol=1e-6)
    np.testing.assert_allclose(scores[9], [0.8 * 0.25, 0.8 * 0.9], rtol=1e-6)
    # centre (0, 0), size 32 -> [-16, -16, 16, 16]
    np.testing.assert_allclose(boxes[80], np.array([-16, -16, 16, 16]) / 0.5)
    np.testing.assert_allclose(scores[80], [0.5, 0.0])


def test_selection_thresholds_and_class_aware_nms():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [50, 50, 60, 60],
                      [80, 80, 90, 90]], np.float32)
    class_scores = np.array([[0.9, 0.1],    # class 0
                             [0.8, 0.0],    # class 0, IoU 0.68 with row 0 -> suppressed
                             [0.1, 0.7],    # class 1, same box as row 0 but another class -> kept
                             [0.2, 0.25],   # best class 1 at 0.25 < 0.3 -> dropped
                             [0.6, 0.0]], np.float32)
    kept_boxes, scores, labels = select_detections(boxes, class_scores, conf_threshold=0.3,
                                                   nms_threshold=0.45)
    np.testing.assert_allclose(scores, [0.9, 0.7, 0.6])
    np.testing.assert_array_equal(labels, [0, 1, 0])
    np.testing.assert_array_equal(kept_boxes, boxes[[0, 2, 4]])
    _, scores, labels = select_detections(boxes, class_scores, 0.3, 0.45, keep_classes=[1])
    np.testing.assert_array_equal(labels, [1])
    empty = select_detections(boxes[:0], class_scores[:0], 0.3, 0.45)
    assert [a.shape for a in empty] == [(0, 4), (0,), (0,)]


def test_missing_model_and_bad_settings(tmp_path):
    with pytest.raises(FileNotFoundError, match="YOLOX ONNX model not found: .*nope.onnx"):
        YoloxOnnxDetector(tmp_path / "nope.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not an onnx graph")
    with pytest.raises(ValueError, match="backend must be one of"):
        YoloxOnnxDetector(junk, backend="tensorrt")
    with pytest.raises(ValueError, match="multiple of 32"):
        YoloxOnnxDetector(junk, input_size=400)
    with pytest.raises(ValueError, match="unknown class name 'pedestrian'"):
        YoloxOnnxDetector(junk, classes=("pedestrian",))
    for backend in ("onnxruntime", "opencv"):
        with pytest.raises(DetectionError, match="cannot load .*junk.onnx"):
            YoloxOnnxDetector(junk, backend=backend)


# ------------------------------------------------------------------------------ real model (slow)
@pytest.fixture(scope="module")
def model_path(shared_data):
    return shared_data / "models" / "yolox_nano.onnx"


@pytest.fixture(scope="module")
def street_frame(shared_data):
    capture = cv2.VideoCapture(str(shared_data / "videos" / "vtest.avi"))
    ok, frame = capture.read()
    capture.release()
    assert ok, "cannot read vtest.avi"
    return frame


@pytest.mark.slow
def test_finds_pedestrians_on_ped2(shared_data, model_path):
    image = cv2.imread(str(shared_data / "ucsd_ped2" / "testing" / "frames" / "01" / "000.jpg"))
    detections = YoloxOnnxDetector(model_path).detect(image, frame_index=7)
    assert detections.frame_index == 7 and detections.image_size == (240, 360)
    people = detections.filter(min_score=0.3, classes=["person"])
    assert len(people) >= 2
    boxes = people.boxes
    assert np.all(boxes[:, 2:] > boxes[:, :2]) and np.all(boxes >= 0)
    assert np.all(boxes[:, [0, 2]] <= 360) and np.all(boxes[:, [1, 3]] <= 240)
    heights = boxes[:, 3] - boxes[:, 1]
    assert np.all((heights > 10) & (heights < 120))             # walkers are 20-60 px tall in Ped2


@pytest.mark.slow
def test_street_video_and_class_filter(model_path, street_frame):
    everything = YoloxOnnxDetector(model_path).detect(street_frame)
    assert len(everything.filter(classes=["person"])) >= 3
    cars = YoloxOnnxDetector(model_path, classes=("car", 7)).detect(street_frame)  # car, truck
    assert set(cars.labels.tolist()) <= {2, 7} and 0 < len(cars) < len(everything)
    expected = everything.filter(classes=["car", "truck"])      # filtering happens after argmax
    np.testing.assert_allclose(cars.boxes, expected.boxes)


@pytest.mark.slow
def test_backends_agree_and_params_rebuild(model_path, street_frame):
    onnx = YoloxOnnxDetector(model_path, backend="onnxruntime")
    opencv = YoloxOnnxDetector(model_path, backend="opencv")
    a, b = onnx.detect(street_frame), opencv.detect(street_frame)
    assert len(a) == len(b) and len(a) > 0
    np.testing.assert_allclose(a.boxes, b.boxes, atol=0.5)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-3)
    params = json.loads(json.dumps(onnx.get_params()))
    rebuilt = YoloxOnnxDetector(**params)
    np.testing.assert_array_equal(rebuilt.detect(street_frame).boxes, a.boxes)
    assert rebuilt.class_names == COCO_CLASSES and "backend='onnxruntime'" in repr(rebuilt)


@pytest.mark.slow
def test_input_size_must_match_fixed_model(model_path):
    with pytest.raises(ValueError, match="input_size=320"):
        YoloxOnnxDetector(model_path, input_size=320, backend="onnxruntime")
