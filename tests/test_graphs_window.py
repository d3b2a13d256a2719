"""SlidingWindowGraph: incremental window == builder.build(last frames), bit for bit."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from detectors.base import Detections
from stgraph.graphs import GraphBuildError, ObjectGraphBuilder, SlidingWindowGraph


def stream(seed: int, counts, dim: int = 5, first_index: int = 10) -> list[Detections]:
    """Synthetic frames with the given object counts (0 = empty) and a gap in frame indices."""
    rng = np.random.default_rng(seed)
    frames = []
    for t, n in enumerate(counts):
        xy = rng.uniform(0, 100, (n, 2))
        wh = rng.uniform(5, 50, (n, 2))
        index = first_index + t + (3 if t >= len(counts) // 2 else 0)
        features = rng.normal(size=(n, dim)) if n or t % 2 else None  # some empty ones lack them
        frames.append(Detections(np.hstack([xy, xy + wh]), rng.uniform(size=n),
                                 rng.integers(0, 4, n), frame_index=index, image_size=(160, 160),
                                 features=features))
    return frames


def assert_same_graph(actual, expected) -> None:
    assert sorted(actual.keys()) == sorted(expected.keys())
    assert actual.num_nodes == expected.num_nodes
    for key in expected.keys():
        if isinstance(expected[key], torch.Tensor):
            assert actual[key].dtype == expected[key].dtype, key
            assert torch.equal(actual[key], expected[key]), key


COUNTS = [3, 4, 0, 0, 5, 1, 6, 2, 0, 7, 3, 4]


@pytest.mark.parametrize("options", [
    {}, {"self_loops": False, "iou_threshold": 0.05}, {"spatial_knn": 2, "temporal_knn": 2},
    {"temporal": False}, {"spatial": False},
])
@pytest.mark.parametrize("size", [1, 3, 5])
def test_every_push_equals_build_of_last_frames(options, size):
    builder = ObjectGraphBuilder(**options)
    window = SlidingWindowGraph(builder, size=size)
    frames = stream(0, COUNTS)
    for t, det in enumerate(frames):
        graph = window.push(det)
        held = frames[max(0, t + 1 - size):t + 1]
        assert window.frames == [d.frame_index for d in held]
        assert len(window) == len(held) <= size
        assert len(window._rows) == len(held)  # cached blocks leave with their frame
        assert_same_graph(graph, builder.build(held))


def test_push_computes_only_the_new_blocks(monkeypatch):
    builder = ObjectGraphBuilder()
    calls = []
    for name in ("spatial_blocks", "temporal_blocks"):
        original = getattr(builder, name)
        monkeypatch.setattr(builder, name, lambda x, counts, _f=original, _n=name:
                            calls.append((_n, list(counts))) or _f(x, counts))
    window = SlidingWindowGraph(builder, size=4)
    frames = stream(1, [2, 3, 4, 5, 6, 7])
    for det in frames:
        window.push(det)
    spatial = [c for name, c in calls if name == "spatial_blocks"]
    temporal = [c for name, c in calls if name == "temporal_blocks"]
    assert spatial == [[n] for n in (2, 3, 4, 5, 6, 7)]
    assert temporal == [[2, 3], [3, 4], [4, 5], [5, 6], [6, 7]]


def test_reset_forgets_frames_and_time_order():
    window = SlidingWindowGraph(ObjectGraphBuilder(), size=3)
    frames = stream(2, [2, 3, 1])
    for det in frames:
        window.push(det)
    window.reset()
    assert len(window) == 0 and window.frames == []
    graph = window.push(frames[0])  # an earlier frame index is fine after reset
    assert_same_graph(graph, ObjectGraphBuilder().build(frames[:1]))


def test_rejected_frame_leaves_the_window_unchanged():
    builder = ObjectGraphBuilder()
    window = SlidingWindowGraph(builder, size=3)
    frames = stream(3, [2, 3, 2])
    for det in frames:
        window.push(det)
    with pytest.raises(GraphBuildError, match="time order.*frame 14 comes after frame 15"):
        window.push(frames[1])
    wide = stream(4, [2], dim=7, first_index=99)[0]
    with pytest.raises(GraphBuildError, match="feature widths differ"):
        window.push(wide)
    bare = Detections(wide.boxes, wide.scores, wide.labels, frame_index=100)
    with pytest.raises(GraphBuildError, match="frame 100 has 2 objects but no features"):
        window.push(bare)
    with pytest.raises(GraphBuildError, match="push expects the Detections of one frame, got list"):
        window.push(frames)
    assert window.frames == [d.frame_index for d in frames]
    nxt = stream(5, [3], first_index=50)[0]
    assert_same_graph(window.push(nxt), builder.build([*frames[1:], nxt]))


def test_size_one_holds_single_frames_without_temporal_work(monkeypatch):
    builder = ObjectGraphBuilder()
    monkeypatch.setattr(builder, "temporal_blocks", lambda *args: pytest.fail("temporal block"))
    window = SlidingWindowGraph(builder, size=1)
    frames = stream(6, [2, 3])
    window.push(frames[0])
    graph = window.push(frames[1])
    assert window.frames == [frames[1].frame_index]
    assert graph.num_nodes == 3 and set(graph.edge_type.tolist()) == {0}


@pytest.mark.parametrize("size", [0, -2, 2.5, True])
def test_bad_size(size):
    with pytest.raises(GraphBuildError, match="size must be an integer >= 1"):
        SlidingWindowGraph(ObjectGraphBuilder(), size=size).push(stream(8, [1])[0])


def test_bad_builder():
    with pytest.raises(GraphBuildError, match="needs a builder with spatial_blocks"):
        SlidingWindowGraph("builder", size=3).push(stream(9, [1])[0])


def test_get_params_and_repr():
    window = SlidingWindowGraph(ObjectGraphBuilder(spatial_knn=3), size=25)
    params = window.get_params()
    assert json.loads(json.dumps(params)) == params
    assert params == {"builder": ObjectGraphBuilder(spatial_knn=3).get_params(), "size": 25}
    window.push(stream(10, [2])[0])
    assert repr(window) == f"SlidingWindowGraph(size=25, held=1, builder={window.builder!r})"
