"""FrameScores, PixelMaps and smoothing (stgraph/scores/frames.py)."""
from __future__ import annotations

import numpy as np
import pytest

from stgraph.scores import FrameScores, PixelMaps, ScoreTableError, smooth_and_normalize


def test_frame_scores_as_dense_nearest_and_fill():
    fs = FrameScores(np.array([0, 4, 8]), np.array([1.0, 2.0, 3.0]))
    # frames 2 and 6 are equally far from two scored frames: the earlier one wins
    np.testing.assert_array_equal(fs.as_dense(10), [1, 1, 1, 2, 2, 2, 2, 3, 3, 3])
    np.testing.assert_array_equal(fs.as_dense(10, fill=0.0), [1, 0, 0, 0, 2, 0, 0, 0, 3, 0])
    with pytest.raises(ScoreTableError, match="frame 8, beyond n_frames=5"):
        fs.as_dense(5)
    with pytest.raises(ScoreTableError, match="strictly increasing"):
        FrameScores(np.array([2, 1]), np.array([0.0, 0.0]))
    with pytest.raises(ScoreTableError, match="frame 4"):
        FrameScores(np.array([0, 4]), np.array([0.0, np.inf]))


def test_smooth_and_normalize_by_hand():
    np.testing.assert_allclose(smooth_and_normalize([3, 3, 4, 6, 3], smooth=3),
                               [3, 10 / 3, 13 / 3, 13 / 3, 4])
    np.testing.assert_allclose(smooth_and_normalize([1, 3, 2], normalize=True), [0, 1, 0.5])
    with pytest.raises(ScoreTableError, match="odd int"):
        smooth_and_normalize([1.0], smooth=4)


def test_pixel_maps_store_float16_and_find_frames():
    maps = PixelMaps([2, 5], np.array([[[0.5, 1.0]], [[2.0, 3.0]]], np.float64))
    assert maps.maps.dtype == np.float16 and maps.frames.dtype == np.int64
    assert maps.shape == (1, 2) and len(maps) == 2 and repr(maps) == "PixelMaps(frames=2, size=1x2)"
    np.testing.assert_array_equal(maps.map_of(5), [[2.0, 3.0]])
    assert maps.map_of(3) is None and maps.select([3]) is None
    np.testing.assert_array_equal(maps.select([5, 9]).frames, [5])
    with pytest.raises(ValueError, match="read-only"):
        maps.maps[0, 0, 0] = 1


@pytest.mark.parametrize("frames, maps, match", [
    ([0, 1], np.zeros((1, 2, 2)), r"maps of shape \(1, 2, 2\) for 2 frames"),
    ([0], np.zeros((1, 4)), "maps \\[T', h, w\\]"),
    ([1, 0], np.zeros((2, 2, 2)), "strictly increasing"),
    ([0, 3], np.stack([np.zeros((2, 2)), np.full((2, 2), np.nan)]), "map of frame 3 contains NaN"),
    ([4], np.full((1, 2, 2), 1e6), "frame 4 holds values beyond the float16 range"),
    ([0], np.full((1, 2, 2), "a"), "must hold numbers"),
])
def test_pixel_maps_bad_input(frames, maps, match):
    with pytest.raises(ScoreTableError, match=match):
        PixelMaps(frames, maps)
