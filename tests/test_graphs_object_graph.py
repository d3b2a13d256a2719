"""ObjectGraphBuilder: Ano-Graph G_st (Eq. 1-2) on hand-computed frames, options and bad input."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch_geometric.utils import to_dense_adj
from torchvision.ops import box_iou

from detectors.base import Detections
from stgraph.graphs import GraphBuildError, ObjectGraphBuilder
from stgraph.graphs.object_graph import pairwise_iou

E = math.e
R2 = 1 / math.sqrt(2)


def make_frame(frame_index: int, boxes, features, scores=None) -> Detections:
    n = len(boxes)
    return Detections(np.asarray(boxes, np.float32).reshape(n, 4),
                      scores if scores is not None else np.linspace(0.5, 0.9, n), np.arange(n) % 2,
                      frame_index=frame_index, features=np.asarray(features, np.float32))


@pytest.fixture
def two_frames() -> list[Detections]:
    """Frame 0: A, B; frame 1: C, D, E (node ids 0..4).

    IoU(A, B) = 2/4 = 0.5 (B is the lower half of A); IoU(C, D) = 4/16 = 0.25 (D is a quarter of
    C); E is disjoint from C and D. Features A = [1, 0], B = [0, 2], C = [3, 0], D = [1, 1],
    E = [0, -1], so with r = 1/sqrt(2): cos(A, C) = 1, cos(A, D) = r, cos(A, E) = 0,
    cos(B, C) = 0, cos(B, D) = r, cos(B, E) = -1.
    """
    return [
        make_frame(0, [[0, 0, 2, 2], [0, 0, 2, 1]], [[1, 0], [0, 2]]),
        make_frame(1, [[0, 0, 4, 4], [0, 0, 2, 2], [10, 10, 12, 12]], [[3, 0], [1, 1], [0, -1]]),
    ]


def softmax_row(*values: float) -> torch.Tensor:
    """The paper's normalisation written out: exp(v_j) / sum_k exp(v_k), float64 [len(values)]."""
    exps = [math.exp(v) for v in values]
    return torch.tensor([e / sum(exps) for e in exps], dtype=torch.float64)


def dense(graph, edge_type: int | None = None) -> torch.Tensor:
    """[N, N] adjacency A[i, j] from the sparse graph (optionally one edge type only).

    The graph's edges are in PyG order (source j, target i) with weight A[i, j], so the dense
    matrix is built from the flipped edge index."""
    keep = graph.edge_type >= 0 if edge_type is None else graph.edge_type == edge_type
    return to_dense_adj(graph.edge_index[:, keep].flip(0), edge_attr=graph.edge_weight[keep],
                        max_num_nodes=graph.num_nodes)[0]


def random_frames(rng: np.random.Generator, counts, dim: int = 6) -> list[Detections]:
    frames = []
    for t, n in enumerate(counts):
        xy = rng.uniform(0, 80, (n, 2))
        wh = rng.uniform(5, 40, (n, 2))
        frames.append(Detections(np.hstack([xy, xy + wh]), rng.uniform(size=n),
                                 rng.integers(0, 3, n), frame_index=2 * t, image_size=(120, 160),
                                 features=rng.normal(size=(n, dim))))
    return frames


def reference_dense(frames, self_loops=True, iou_threshold=0.0, spatial_knn=None,
                    temporal_knn=None):
    """G_st as a dense matrix, frame by frame, with torchvision's box_iou and torch.softmax."""
    counts = [len(d) for d in frames]
    starts = np.cumsum([0, *counts[:-1]])
    out = torch.zeros(sum(counts), sum(counts), dtype=torch.float64)

    def top_k(rank_scores, keep, k):
        """Per row, the k best candidates by (score descending, column ascending)."""
        if k is None:
            return keep
        chosen = torch.zeros_like(keep)
        for i in range(keep.shape[0]):
            columns = sorted(keep[i].nonzero().flatten().tolist(),
                             key=lambda j: (-rank_scores[i, j], j))
            chosen[i, columns[:k]] = True
        return chosen

    def softmax(scores, keep):
        return torch.softmax(scores.masked_fill(~keep, -math.inf), dim=1).nan_to_num(0.0)

    for t, det in enumerate(frames):
        n, s = len(det), starts[t]
        if n:
            boxes = torch.from_numpy(det.boxes).double()
            iou = box_iou(boxes, boxes)
            eye = torch.eye(n, dtype=torch.bool)
            keep = (iou >= iou_threshold) & ~eye
            if self_loops:
                keep |= eye
            keep = top_k(iou.masked_fill(eye, 2.0), keep, spatial_knn)  # the self pair ranks first
            out[s:s + n, s:s + n] = softmax(iou.masked_fill(eye, 1.0), keep)
        if t + 1 < len(frames) and n and len(frames[t + 1]):
            nxt = frames[t + 1]
            cos = F.cosine_similarity(torch.from_numpy(det.features).double()[:, None],
                                      torch.from_numpy(nxt.features).double()[None], dim=2)
            keep = top_k(cos, torch.ones_like(cos, dtype=torch.bool), temporal_knn)
            out[s:s + n, starts[t + 1]:starts[t + 1] + len(nxt)] = softmax(cos, keep)
    return out


# ------------------------------------------------------------------------------ hand-computed
def test_hand_computed_weights_nodes_and_edge_order(two_frames):
    graph = ObjectGraphBuilder().build(two_frames)

    expected = torch.zeros(5, 5, dtype=torch.float64)
    expected[0, 0:2] = softmax_row(1, 0.5)          # A: IoU(A, A) = 1, IoU(A, B) = 0.5
    expected[1, 0:2] = softmax_row(0.5, 1)
    expected[2, 2:5] = softmax_row(1, 0.25, 0)      # C
    expected[3, 2:5] = softmax_row(0.25, 1, 0)      # D
    expected[4, 2:5] = softmax_row(0, 0, 1)         # E
    expected[0, 2:5] = softmax_row(1, R2, 0)        # A -> C, D, E (cosines)
    expected[1, 2:5] = softmax_row(0, R2, -1)       # B -> C, D, E
    weights = dense(graph).double()
    torch.testing.assert_close(weights, expected, rtol=0, atol=1e-6)
    assert weights[0, 0] == pytest.approx(E / (E + math.exp(0.5)), abs=1e-6)              # A -> A
    assert weights[2, 3] == pytest.approx(math.exp(0.25) / (E + math.exp(0.25) + 1), abs=1e-6)
    b_to_e = math.exp(-1) / (1 + math.exp(R2) + math.exp(-1))                               # B -> E
    assert weights[1, 4] == pytest.approx(b_to_e, abs=1e-6)

    spatial = [[0, 0], [0, 1], [1, 0], [1, 1]] + [[i, j] for i in (2, 3, 4) for j in (2, 3, 4)]
    temporal = [[i, j] for i in (0, 1) for j in (2, 3, 4)]
    # PyG order: edge (source j, target i) for A[i, j]; listed sorted by (target, source)
    assert graph.edge_index.t().tolist() == [[j, i] for i, j in sorted(spatial + temporal)]
    kinds = dict(zip(map(tuple, graph.edge_index.flip(0).t().tolist()), graph.edge_type.tolist()))
    assert {pair for pair, kind in kinds.items() if kind == 1} == set(map(tuple, temporal))
    assert graph.edge_index.dtype == torch.int64 and graph.edge_type.dtype == torch.int64
    assert graph.edge_weight.dtype == torch.float32

    assert graph.num_nodes == 5
    assert graph.x.dtype == torch.float32
    assert graph.x.tolist() == [[1, 0], [0, 2], [3, 0], [1, 1], [0, -1]]
    assert graph.box[3].tolist() == [0, 0, 2, 2] and graph.box.dtype == torch.float32
    assert graph.frame.tolist() == [0, 0, 1, 1, 1] and graph.object_id.tolist() == [0, 1, 0, 1, 2]
    assert graph.label.tolist() == [0, 1, 0, 1, 0] and graph.label.dtype == torch.int64
    torch.testing.assert_close(graph.det_score[2:], torch.tensor([0.5, 0.7, 0.9]))


def test_rows_of_every_block_sum_to_one():
    graph = ObjectGraphBuilder().build(random_frames(np.random.default_rng(0), [3, 5, 0, 4, 1]))
    sums = torch.zeros(graph.num_nodes, 2).index_put_((graph.edge_index[1], graph.edge_type),
                                                      graph.edge_weight, accumulate=True)
    has = torch.zeros(graph.num_nodes, 2, dtype=torch.bool)
    has[graph.edge_index[1], graph.edge_type] = True
    torch.testing.assert_close(sums[has], torch.ones(int(has.sum())))
    # temporal rows: frames 0 -> 1 only (frame 2 is empty, frame 3 -> 4 has objects on both sides)
    assert has[:, 1].nonzero().flatten().tolist() == [0, 1, 2, 8, 9, 10, 11]


@pytest.mark.parametrize("options", [
    {}, {"self_loops": False}, {"iou_threshold": 0.05}, {"spatial_knn": 2, "temporal_knn": 3},
    {"self_loops": False, "spatial_knn": 1, "iou_threshold": 0.01},
])
def test_matches_dense_per_frame_reference(options):
    frames = random_frames(np.random.default_rng(1), [4, 6, 5, 0, 3, 6])
    graph = ObjectGraphBuilder(**options).build(frames)
    reference = reference_dense(frames, **options)
    torch.testing.assert_close(dense(graph).double(), reference, rtol=0, atol=1e-6)
    assert graph.edge_index.shape[1] == int((reference > 0).sum())  # softmax weights are positive


def test_pairwise_iou_agrees_with_torchvision():
    boxes = torch.from_numpy(random_frames(np.random.default_rng(2), [7])[0].boxes).double()
    torch.testing.assert_close(pairwise_iou(boxes[None])[0], box_iou(boxes, boxes))


# ---------------------------------------------------------------------------------- options
def test_spatial_or_temporal_switched_off(two_frames):
    full_graph = ObjectGraphBuilder().build(two_frames)
    full = dense(full_graph)
    spatial_only = ObjectGraphBuilder(temporal=False).build(two_frames)
    temporal_only = ObjectGraphBuilder(spatial=False).build(two_frames)
    assert set(spatial_only.edge_type.tolist()) == {0}
    assert set(temporal_only.edge_type.tolist()) == {1}
    torch.testing.assert_close(dense(spatial_only), dense(full_graph, 0))
    torch.testing.assert_close(dense(spatial_only) + dense(temporal_only), full)
    none = ObjectGraphBuilder(spatial=False, temporal=False).build(two_frames)
    assert none.edge_index.shape == (2, 0) and none.num_nodes == 5


def test_without_self_loops(two_frames):
    graph = ObjectGraphBuilder(self_loops=False).build(two_frames)
    a = dense(graph, 0).double()
    assert not bool(graph.edge_index[0].eq(graph.edge_index[1]).any())
    expected = torch.zeros(5, 5, dtype=torch.float64)
    expected[0, 1] = expected[1, 0] = 1.0                          # one candidate each
    expected[2, 3:5] = softmax_row(0.25, 0)          # C: D, E
    expected[3, [2, 4]] = softmax_row(0.25, 0)       # D: C, E
    expected[4, 2:4] = softmax_row(0, 0)             # E: C, D
    torch.testing.assert_close(a, expected, rtol=0, atol=1e-6)


def test_iou_threshold_drops_pairs_but_keeps_self(two_frames):
    a = dense(ObjectGraphBuilder(iou_threshold=0.25, temporal=False).build(two_frames)).double()
    expected = torch.zeros(5, 5, dtype=torch.float64)
    expected[0, 0:2] = softmax_row(1, 0.5)
    expected[1, 0:2] = softmax_row(0.5, 1)
    expected[2, 2:4] = softmax_row(1, 0.25)          # C-D kept at exactly 0.25
    expected[3, 2:4] = softmax_row(0.25, 1)
    expected[4, 4] = 1.0                                           # E overlaps nobody
    torch.testing.assert_close(a, expected, rtol=0, atol=1e-6)
    # without self loops, a row whose pairs all fall below the threshold has no edges at all
    builder = ObjectGraphBuilder(iou_threshold=0.3, self_loops=False, temporal=False)
    graph = builder.build(two_frames)
    assert graph.edge_index.t().tolist() == [[1, 0], [0, 1]]


def test_knn_keeps_largest_scores(two_frames):
    a = dense(ObjectGraphBuilder(spatial_knn=2, temporal_knn=1).build(two_frames)).double()
    expected = torch.zeros(5, 5, dtype=torch.float64)
    expected[0, 0:2] = softmax_row(1, 0.5)           # 2 candidates: nothing dropped
    expected[1, 0:2] = softmax_row(0.5, 1)
    expected[2, 2:4] = softmax_row(1, 0.25)          # C keeps itself and D
    expected[3, 2:4] = softmax_row(0.25, 1)
    expected[4, [2, 4]] = softmax_row(0, 1)          # E: self + tie C/D -> lower id C
    expected[0, 2] = 1.0                                           # A -> C (cos 1)
    expected[1, 3] = 1.0                                           # B -> D (cos r)
    torch.testing.assert_close(a, expected, rtol=0, atol=1e-6)


def test_knn_one_keeps_only_self_loop(two_frames):
    graph = ObjectGraphBuilder(spatial_knn=1, temporal=False).build(two_frames)
    assert graph.edge_index.t().tolist() == [[i, i] for i in range(5)]
    assert graph.edge_weight.tolist() == [1.0] * 5


def test_knn_ranks_the_self_pair_first_among_equal_ious():
    twins = make_frame(0, [[0, 0, 2, 2], [0, 0, 2, 2]], [[1, 0], [0, 1]])  # IoU(0, 1) = 1 = self
    graph = ObjectGraphBuilder(spatial_knn=1).build([twins])
    assert graph.edge_index.t().tolist() == [[0, 0], [1, 1]]


def test_zero_area_boxes_give_finite_weights():
    frame = make_frame(4, [[5, 5, 5, 5], [5, 5, 5, 5]], [[1, 0], [1, 0]])
    graph = ObjectGraphBuilder().build([frame])
    assert torch.isfinite(graph.edge_weight).all()
    torch.testing.assert_close(dense(graph).double(),
                               torch.stack([softmax_row(1, 0), softmax_row(0, 1)]))


# ------------------------------------------------------------------------------ empty frames
def test_empty_frame_in_the_middle_breaks_temporal_chain(two_frames):
    frames = [two_frames[0], Detections.empty(frame_index=1), make_frame(
        2, two_frames[1].boxes, two_frames[1].features)]
    graph = ObjectGraphBuilder().build(frames)
    assert graph.num_nodes == 5 and graph.frame.tolist() == [0, 0, 2, 2, 2]
    assert graph.object_id.tolist() == [0, 1, 0, 1, 2]
    assert set(graph.edge_type.tolist()) == {0}
    torch.testing.assert_close(dense(graph), dense(ObjectGraphBuilder().build(two_frames), 0))


@pytest.mark.parametrize("frames, dim", [
    ([], 0),
    ([Detections.empty(0), Detections.empty(1)], 0),
    ([Detections.empty(0, feature_dim=8), Detections.empty(3)], 8),
])
def test_all_empty_input_gives_empty_graph(frames, dim):
    graph = ObjectGraphBuilder().build(frames)
    assert graph.num_nodes == 0
    assert graph.x.shape == (0, dim) and graph.box.shape == (0, 4)
    assert graph.edge_index.shape == (2, 0) and graph.edge_weight.shape == (0,)
    for key in ("frame", "object_id", "label"):
        assert graph[key].shape == (0,) and graph[key].dtype == torch.int64


# -------------------------------------------------------------------------------- bad input
def test_missing_features_name_the_frame(two_frames):
    second = two_frames[1]
    bare = Detections(second.boxes, second.scores, second.labels, frame_index=7)
    with pytest.raises(GraphBuildError, match="frame 7 has 3 objects but no features"):
        ObjectGraphBuilder().build([two_frames[0], bare])


def test_feature_widths_must_agree(two_frames):
    wide = two_frames[1].with_features(np.ones((3, 3), np.float32))
    with pytest.raises(GraphBuildError, match="frame 0 has 2-d features, frame 1 has 3-d"):
        ObjectGraphBuilder().build([two_frames[0], wide])


def test_frames_must_be_in_time_order(two_frames):
    with pytest.raises(GraphBuildError, match="time order.*frame 0 comes after frame 1"):
        ObjectGraphBuilder().build(two_frames[::-1])
    with pytest.raises(GraphBuildError, match="frame 0 comes after frame 0"):
        ObjectGraphBuilder().build([two_frames[0], two_frames[0]])


def test_wrong_container_types(two_frames):
    with pytest.raises(GraphBuildError, match="single Detections"):
        ObjectGraphBuilder().build(two_frames[0])
    with pytest.raises(GraphBuildError, match="item 1 of the frames is a dict"):
        ObjectGraphBuilder().build([two_frames[0], {"boxes": []}])
    with pytest.raises(GraphBuildError, match="got NoneType"):
        ObjectGraphBuilder().build(None)


@pytest.mark.parametrize("options, message", [
    ({"iou_threshold": 1.5}, "iou_threshold must be a number in \\[0, 1\\]"),
    ({"iou_threshold": float("nan")}, "iou_threshold"),
    ({"spatial_knn": 0}, "spatial_knn must be None or an integer >= 1"),
    ({"temporal_knn": 2.5}, "temporal_knn"),
    ({"self_loops": "yes"}, "self_loops must be True or False"),
])
def test_bad_parameters_raise_at_build(two_frames, options, message):
    builder = ObjectGraphBuilder(**options)  # construction only stores
    with pytest.raises(GraphBuildError, match=message):
        builder.build(two_frames)


# ----------------------------------------------------------------------------- params, repr
def test_get_params_round_trip_and_repr():
    builder = ObjectGraphBuilder(temporal=False, iou_threshold=0.2, spatial_knn=4)
    params = builder.get_params()
    assert json.loads(json.dumps(params)) == params
    assert ObjectGraphBuilder(**params).get_params() == params
    assert repr(builder) == ("ObjectGraphBuilder(spatial=True, temporal=False, self_loops=True, "
                             "iou_threshold=0.2, spatial_knn=4, temporal_knn=None)")


def test_build_does_not_share_memory_with_detections(two_frames):
    graph = ObjectGraphBuilder().build(two_frames)
    two_frames[0].boxes[0, 0] = 99.0
    two_frames[0].features[0, 0] = 99.0
    assert graph.box[0, 0] == 0.0 and graph.x[0, 0] == 1.0


def test_pyg_layer_on_builder_graph_computes_a_times_x():
    """Any PyG layer on the builder's Data computes the paper's A·X (issue 9, part 5)."""
    from torch_geometric.nn import SimpleConv

    frames = [Detections(np.array([[0, 0, 10, 10]], np.float32), np.ones(1, np.float32),
                         np.zeros(1, np.int64), frame_index=t, image_size=(20, 20),
                         features=np.ones((1, 2), np.float32)) for t in range(2)]
    graph = ObjectGraphBuilder().build(frames)
    # one object per frame: S_t = [1] (self loop), T_0 = [1]; A = [[1, 1], [0, 1]]
    x = torch.tensor([[1.0], [10.0]])
    out = SimpleConv(aggr="sum")(x, graph.edge_index, graph.edge_weight)
    assert out.reshape(-1).tolist() == [11.0, 10.0]
    assert torch.equal(dense(graph), torch.tensor([[1.0, 1.0], [0.0, 1.0]]))
