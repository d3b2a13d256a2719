"""Optical flow: direction of a moving square, zero first frame, cache round trip."""
from __future__ import annotations

import numpy as np
import pytest

from stgraph.features.flow import OpticalFlow, video_flow


def _moving_square(n_frames: int = 4, step: int = 2) -> np.ndarray:
    frames = np.zeros((n_frames, 64, 64, 3), np.uint8)
    rng = np.random.default_rng(0)
    texture = rng.integers(60, 255, (16, 16, 3), dtype=np.uint8)
    for t in range(n_frames):
        frames[t, 20:36, 10 + step * t:26 + step * t] = texture
    return frames


def test_flow_points_along_the_motion():
    frames = _moving_square()
    field = OpticalFlow(preset="medium").compute(frames[0], frames[1])
    assert field.shape == (64, 64, 2) and field.dtype == np.float32
    inside = field[22:34, 14:24]
    assert np.median(inside[..., 0]) > 1.0          # moves right by ~2 px
    assert abs(np.median(inside[..., 1])) < 0.5


def test_video_flow_first_frame_zero_and_cache(tmp_path):
    frames = _moving_square(5)
    folder = tmp_path / "clip"
    folder.mkdir()
    import cv2
    for t, image in enumerate(frames):
        cv2.imwrite(str(folder / f"{t:03d}.png"), image)
    flow = OpticalFlow(size=(32, 32))
    first = video_flow(folder, flow, cache_dir=tmp_path / "cache")
    assert first.shape == (5, 32, 32, 2)
    assert np.all(first[0] == 0)
    assert len(list((tmp_path / "cache").glob("flow-*.npz"))) == 1
    again = video_flow(folder, flow, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(first, again)


def test_flow_rejects_bad_settings():
    with pytest.raises(ValueError, match="flow method"):
        OpticalFlow(method="nope").compute(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        OpticalFlow().compute(np.zeros((8, 8)), np.zeros((8, 8)))
