"""Late fusion of several methods' frame scores, batch and streaming (stgraph/scores/fusion.py)."""
from __future__ import annotations

import numpy as np
import pytest

from _score_helpers import HAND, object_table
from stgraph.models.base import ScoreQuantiles
from stgraph.scores import FrameFuser, ScoreTable, ScoreTableError, fuse

T = 5
# method A scores frames from their history: frames 0, 1 have no row
FRAME_TABLE = ScoreTable.from_frames("v", [2, 3, 4], [150.0, 50.0, 99.0], n_frames=T)
# method B: object rows, max per frame [3, -, 4, 6, -] (frames 1 and 4 without objects)
OBJECT_TABLE = object_table("v", HAND)
Q_A = ScoreQuantiles.from_scores(np.arange(101.0))          # median 50, q99 99: spread 49
Q_B = ScoreQuantiles.from_scores(np.linspace(2.0, 4.0, 101))  # median 3, q99 3.98: spread 0.98


def test_fuse_train_scale_by_hand():
    fused = fuse([FRAME_TABLE, OBJECT_TABLE], train_scores=[Q_A, Q_B])
    assert fused.kinds == ("frame",) and fused.videos == ["v"] and len(fused) == T
    z_a = np.array([0, 0, 100 / 49, 0, 49 / 49])           # frames without a row: 0
    z_b = np.array([0, 0, 1 / 0.98, 3 / 0.98, 0])          # frames without objects: 0
    np.testing.assert_allclose(fused.frame_scores()["v"].scores, (z_a + z_b) / 2, rtol=1e-12)
    weighted = fuse([FRAME_TABLE, OBJECT_TABLE], weights=[2.0, 0.0], train_scores=[Q_A, Q_B])
    np.testing.assert_allclose(weighted["score"], 2 * z_a, rtol=1e-12)


def test_fuse_video_scale_by_hand():
    fused = fuse([FRAME_TABLE, OBJECT_TABLE], weights=[1.0, 3.0], scale="video")
    a = np.array([0, 0, 100, 0, 49]) / 100           # [50, 50, 150, 50, 99] min-max
    b = np.array([0, 0, 1, 3, 0]) / 3                # [3, 3, 4, 6, 3] min-max
    np.testing.assert_allclose(fused.frame_scores()["v"].scores, a + 3 * b, rtol=1e-12)


@pytest.mark.parametrize("tables, kwargs, match", [
    ([], {}, "at least one table"),
    ([FRAME_TABLE, OBJECT_TABLE], dict(scale="zscore"), "scale must be one of"),
    ([FRAME_TABLE, OBJECT_TABLE], dict(train_scores=[Q_A]), "2 tables, 1 given"),
    ([FRAME_TABLE, OBJECT_TABLE], {}, "2 tables, none given"),
    ([FRAME_TABLE, OBJECT_TABLE], dict(train_scores=[Q_A, [1, 2]]),
     "table 1: train scores must be a ScoreQuantiles"),
    ([FRAME_TABLE, OBJECT_TABLE],
     dict(train_scores=[Q_A, ScoreQuantiles.from_scores(np.ones(5))]),
     "table 1: training scores have q0.99 - median = 0.0"),
    ([FRAME_TABLE, OBJECT_TABLE], dict(scale="video", weights=[1.0]), "1 weights for 2 tables"),
    ([FRAME_TABLE, OBJECT_TABLE], dict(scale="video", weights=[1.0, -1.0]), ">= 0"),
    ([FRAME_TABLE, OBJECT_TABLE], dict(scale="video", weights=[0.0, 0.0]), "not all 0"),
    ([FRAME_TABLE, object_table("w", HAND)], dict(scale="video"),
     r"tables 0 and 1 cover different videos \(only in table 0: \['v'\]; only in table 1: \['w'\]"),
    ([FRAME_TABLE, object_table("v", {0: [1.0], 1: [2.0]})], dict(scale="video"),
     r"video 'v' has frames 0..4 \(5 frames\) in table 0 but 0..1 \(2 frames\) in table 1"),
])
def test_fuse_bad_input(tables, kwargs, match):
    with pytest.raises(ScoreTableError, match=match):
        fuse(tables, **kwargs)


def test_streaming_fusion_equals_batch_fusion():
    """Method A reports each frame at once (none for its first two frames), method B three
    frames late (NaN where nothing was detected): the fused stream equals the batch fusion."""
    rng = np.random.default_rng(0)
    n = 40
    a_scores = rng.normal(50, 20, n)
    a_table = ScoreTable.from_frames("v", np.arange(2, n), a_scores[2:], n_frames=n)
    b_objects = {t: list(rng.normal(3, 1, rng.integers(0, 3))) for t in range(n)}
    b_table = object_table("v", b_objects)
    weights = [0.3, 0.7]
    batch = fuse([a_table, b_table], weights=weights, train_scores=[Q_A, Q_B])
    expected = batch.frame_scores()["v"]

    fuser = FrameFuser([Q_A, Q_B], weights=weights)
    streamed: list[tuple[int, float]] = []
    for t in range(n + 3):
        if 2 <= t < n:
            streamed += fuser.push(0, t, a_scores[t])
        if t >= 3:
            frame = t - 3
            objects = b_objects[frame]
            streamed += fuser.push(1, frame, max(objects) if objects else float("nan"))
    streamed += fuser.flush()
    assert [f for f, _ in streamed] == list(range(n))
    np.testing.assert_array_equal([s for _, s in streamed], expected.scores)  # bit for bit


def test_frame_fuser_emits_a_frame_once_every_method_is_past_it():
    fuser = FrameFuser([Q_A, Q_B])
    assert fuser.push(0, 0, 99.0) == []                       # method 1 has not reported yet
    assert fuser.push(0, 1, 50.0) == []
    assert fuser.push(1, 0, None) == [(0, 0.5)]               # z_A = 1, z_B = 0 -> 0.5
    assert fuser.push(1, 3, 3.0) == [(1, 0.0)]                # method 1 skipped frames 1, 2
    assert fuser.flush() == [(3, 0.0)]
    with pytest.raises(ScoreTableError, match="method 0 gave frame 0 after frame 1"):
        fuser.push(0, 1, 1.0), fuser.push(0, 0, 1.0)
    with pytest.raises(ScoreTableError, match="method must be in 0..1"):
        fuser.push(2, 5, 1.0)
    fuser.reset()
    assert fuser.push(0, 0, 1.0) == []                        # a new video starts afresh
