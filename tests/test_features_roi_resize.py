"""RoIAlignFeatures on a reduced frame (``input_size``): boxes scaled along, defaults, empty frames."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from detectors.base import Detections
from stgraph.features import RoIAlignFeatures


def dets(boxes, image_size) -> Detections:
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    return Detections(boxes, np.ones(len(boxes)), np.zeros(len(boxes)), image_size=image_size)


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    """240×320 BGR frame: smooth colour blobs on the left, a fine random texture on the right."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:240, :320] / 40.0
    image = np.stack([np.sin(xx) * 60 + 128, np.cos(yy) * 60 + 128, np.sin(xx + yy) * 60 + 128], -1)
    image[:, 160:] = rng.integers(0, 256, (240, 160, 3))
    return image.astype(np.uint8)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_default_reduces_the_frame_and_is_a_param():
    roi = RoIAlignFeatures()
    assert roi.input_size == 240 and roi.get_params()["input_size"] == 240
    assert RoIAlignFeatures(input_size=None).get_params()["input_size"] is None


def test_boxes_are_scaled_into_the_reduced_frame(frame):
    """Reduced-frame features == native-size features of the same resize with boxes scaled."""
    boxes = np.array([[20, 30, 140, 200], [170, 10, 300, 120], [0, 0, 320, 240]], np.float32)
    reduced = RoIAlignFeatures(input_size=120).extract(frame, dets(boxes, (240, 320)))
    small = nn.functional.interpolate(torch.from_numpy(frame[None]).permute(0, 3, 1, 2),
                                      size=(120, 160), mode="bilinear", align_corners=False,
                                      antialias=True)[0].permute(1, 2, 0).contiguous().numpy()
    by_hand = RoIAlignFeatures(input_size=None).extract(small, dets(boxes / 2, (120, 160)))
    assert reduced.shape == (3, 96)
    np.testing.assert_allclose(reduced, by_hand, rtol=1e-4, atol=1e-4)


def test_large_box_feature_close_to_native_size(frame):
    """A large box keeps its appearance on a half-size frame: nearer its native-size feature than
    the other region's."""
    boxes = dets([[8, 8, 152, 232], [168, 8, 312, 232]], (240, 320))
    native = RoIAlignFeatures(input_size=None).extract(frame, boxes)
    reduced = RoIAlignFeatures(input_size=120).extract(frame, boxes)
    for i in range(2):
        assert cosine(reduced[i], native[i]) > 0.8
        assert cosine(reduced[i], native[i]) > cosine(reduced[i], native[1 - i])


@pytest.mark.parametrize("input_size", [None, 64, 160, 480])
def test_empty_frames_and_batches(frame, input_size):
    roi = RoIAlignFeatures(input_size=input_size)
    empty = dets(np.zeros((0, 4)), (240, 320))
    assert roi.extract(frame, empty).shape == (0, 96)
    one = dets([[10, 10, 100, 200]], (240, 320))
    batch = roi.extract_batch([frame, frame], [empty, one])
    assert [b.shape for b in batch] == [(0, 96), (1, 96)]
    np.testing.assert_allclose(batch[1], roi.extract(frame, one), atol=1e-4)


def test_resize_settings_change_the_cache_key():
    from stgraph.cache import component_key, settings_key
    from stgraph.registry import component_spec

    keys = {settings_key(component_key(component_spec(RoIAlignFeatures(input_size=s, layer=layer))))
            for s, layer in [(None, 13), (160, 13), (224, 13), (160, 6)]}
    assert len(keys) == 4


def test_folded_batchnorm_matches_the_backbone():
    from stgraph.features.roi import fold_batchnorm

    roi = RoIAlignFeatures()
    backbone = roi._backbone()
    fused = fold_batchnorm(backbone)
    assert roi.fused_ is not backbone
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in backbone.modules())  # left as it was
    x = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        torch.testing.assert_close(fused(x), backbone(x), rtol=1e-4, atol=1e-4)
