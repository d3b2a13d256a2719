"""Per-box flow features and IoU-track features: shapes, empty frames, direction, speed, state."""
from __future__ import annotations

import numpy as np
import pytest

from detectors.base import Detections
from stgraph.features import FeatureError
from stgraph.features.flow import OpticalFlow
from stgraph.features.motion import FlowFeatures, box_flow_features, flow_feature_columns
from stgraph.features.tracks import TrackFeatures, greedy_iou_match
from stgraph.registry import build_component, component_spec


def _moving_square(n_frames: int = 4, step: int = 2) -> np.ndarray:
    frames = np.zeros((n_frames, 64, 64, 3), np.uint8)
    texture = np.random.default_rng(0).integers(60, 255, (16, 16, 3), dtype=np.uint8)
    for t in range(n_frames):
        frames[t, 20:36, 10 + step * t:26 + step * t] = texture
    return frames


def _dets(boxes, t=0, size=(64, 64)) -> Detections:
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    return Detections(boxes, np.ones(len(boxes)), np.zeros(len(boxes), np.int64), frame_index=t,
                      image_size=size)


def test_box_flow_features_of_a_uniform_field():
    flow = np.zeros((40, 60, 2), np.float32)
    flow[..., 0] = 2.0                                 # everything moves right by 2 px
    f = box_flow_features(flow, [[0, 0, 20, 10], [10, 10, 30, 30]], (40, 60))
    assert f.shape == (2, 16) and f.dtype == np.float32
    np.testing.assert_allclose(f[:, 0], [0.2, 0.1], rtol=1e-6)   # |flow| / box height
    np.testing.assert_allclose(f[:, 1], f[:, 0], rtol=1e-6)      # all along +x
    np.testing.assert_allclose(f[:, 4], f[:, 0], rtol=1e-6)      # orientation bin 0 (right)
    np.testing.assert_allclose(f[:, 4:12].sum(axis=1), f[:, 0], rtol=1e-6)
    assert f[0, 12:].tolist() == [0, 0, 0, 1] and f[1, 12:].tolist() == [0, 0, 1, 0]


def test_box_flow_features_scale_boxes_to_the_flow_resolution():
    flow = np.ones((20, 30, 2), np.float32)
    full = box_flow_features(np.ones((40, 60, 2), np.float32) * 2, [[0, 0, 20, 20]], (40, 60))
    half = box_flow_features(flow, [[0, 0, 20, 20]], (40, 60))
    np.testing.assert_allclose(full[:, :4], half[:, :4], rtol=1e-5)


def test_box_flow_features_empty_and_bad_input():
    assert box_flow_features(np.zeros((8, 8, 2)), np.zeros((0, 4)), (8, 8)).shape == (0, 16)
    with pytest.raises(FeatureError, match="speed_edges"):
        box_flow_features(np.zeros((8, 8, 2)), [[0, 0, 4, 4]], (8, 8), speed_edges=(0.2, 0.1))
    with pytest.raises(FeatureError, match="flow must be"):
        box_flow_features(np.zeros((8, 8)), [[0, 0, 4, 4]], (8, 8))


def test_flow_features_see_the_moving_square_and_match_the_cache_rounding():
    frames = _moving_square()
    producer = FlowFeatures(preset="medium")
    box = [[10, 20, 40, 36]]
    first = producer.extract(frames[0], _dets(box, 0))
    assert np.all(first == 0)                                   # no previous frame
    second = producer.extract(frames[1], _dets(box, 1))
    assert second[0, 1] > 0.01 and second[0, 0] > 0.01          # moving right
    field = OpticalFlow(preset="medium").compute(frames[1], frames[2])
    expected = box_flow_features(field.astype(np.float16).astype(np.float32), box, (64, 64))
    np.testing.assert_array_equal(producer.extract(frames[2], _dets(box, 2)), expected)
    producer.reset()
    assert np.all(producer.extract(frames[3], _dets(box, 3)) == 0)
    assert producer.dim == len(producer.columns) == len(flow_feature_columns()) == 16


def test_flow_features_empty_frame_advances_the_state():
    frames = _moving_square()
    producer = FlowFeatures()
    assert producer.extract(frames[0], _dets([], 0)).shape == (0, 16)
    assert producer.extract(frames[1], _dets([[10, 20, 40, 36]], 1))[0, 0] > 0


def test_motion_producers_round_trip_through_the_registry():
    for producer in (FlowFeatures(bins=4, size=(32, 32)), TrackFeatures(history=3)):
        rebuilt = build_component(component_spec(producer, "features"), "features")
        assert rebuilt.get_params() == producer.get_params()


def test_greedy_iou_match_is_one_to_one():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], np.float32)
    previous = np.array([[0, 0, 10, 10]], np.float32)
    assert greedy_iou_match(boxes, previous, 0.3).tolist() == [0, -1, -1]
    assert greedy_iou_match(boxes, np.zeros((0, 4), np.float32), 0.3).tolist() == [-1, -1, -1]


def test_track_features_velocity_acceleration_and_age():
    producer = TrackFeatures(history=2)
    out = [producer.extract(None, _dets([[2 * t, 0, 2 * t + 10, 20]], t)) for t in range(3)]
    assert out[0].tolist() == [[0, 0, 0, 0, 0]]
    np.testing.assert_allclose(out[2][0], [0.1, 0, 0.1, 0, 1.0], atol=1e-6)
    jump = producer.extract(None, _dets([[9, 0, 19, 20]], 3))    # sudden 5 px step
    assert jump[0, 3] > 0.05                                     # acceleration
    assert producer.extract(None, _dets([], 4)).shape == (0, 5)
    assert producer.extract(None, _dets([[10, 0, 20, 20]], 5))[0, 4] == 0   # a new track


def test_track_features_bad_settings():
    with pytest.raises(FeatureError, match="history"):
        TrackFeatures(history=0).extract(None, _dets([[0, 0, 1, 1]]))


def test_flow_features_keep_selects_columns():
    frames = _moving_square()
    full, speed = FlowFeatures(), FlowFeatures(keep=["speed", "dx"])
    box = [[10, 20, 40, 36]]
    for t in range(2):
        a, b = full.extract(frames[t], _dets(box, t)), speed.extract(frames[t], _dets(box, t))
    assert speed.dim == 2 and speed.columns == ("speed", "dx")
    np.testing.assert_array_equal(b, a[:, :2])
    with pytest.raises(FeatureError, match="keep"):
        FlowFeatures(keep=["nope"]).dim
