"""Object spatio-temporal graph of Ano-Graph (Sec. 3, Eq. 1-2 and the block matrix G_st).

Every detected object of every frame is a node. The adjacency ``A = G_st`` is block-bidiagonal::

    G_st = [[S_1, T_1, 0,   ...],      S_t [N_t, N_t]    spatial block of frame t (Eq. 1)
            [0,   S_2, T_2, ...],      T_t [N_t, N_t+1]  temporal block, frame t -> t+1 (Eq. 2)
            [...            S_T]]

    S_t[i, j] = exp(IoU(b_i, b_j)) / sum_k exp(IoU(b_i, b_k))     k over the objects of frame t
    T_t[i, j] = exp(cos(x_i, x_j)) / sum_k exp(cos(x_i, x_k))     k over the objects of frame t+1

so every row of every block sums to 1. Row i of ``A`` says how node i aggregates: ``(A·X)_i =
sum_j A[i, j] x_j``. The graph is returned sparse, as a PyG ``Data`` in PyG's message-passing
order: ``edge_index[:, e] = (j, i)`` (source j, target i) carries ``edge_weight[e] = A[i, j]``, so
any PyG layer applied to the ``Data`` computes the paper's ``A·X`` (e.g. ``SimpleConv(aggr="sum")``
gives ``sum_j A[i, j] x_j`` at node i). A temporal edge therefore points from a node of frame t+1
to a node of frame t (frame t aggregates from frame t+1, the block ``T_t``). Edges are listed
sorted by ``(target, source)``: for each target node its spatial edges, then its temporal ones.

All blocks are computed at once, densely, on frames padded to ``[frames, max objects, ...]``
(``ObjectGraphBuilder._spatial_weights`` / ``_temporal_weights``, memory O(T * M^2) for M the
largest object count); ``build`` reads its edges from them directly in ``(target, source)`` order.
:class:`~stgraph.graphs.window.SlidingWindowGraph` computes only the newest blocks with the same
functions, gets them as :class:`EdgeBlock` through :meth:`ObjectGraphBuilder.spatial_blocks` /
:meth:`ObjectGraphBuilder.temporal_blocks`, and joins them with :func:`merge_blocks` and
:func:`offset_blocks`. Weights are computed in float64 and rounded once to float32, so they do
not depend on how many frames were batched together: a window built incrementally equals the
same frames built at once, bit for bit.
"""
from __future__ import annotations

import math
from numbers import Real
from typing import NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
import stgraph._pyg  # noqa: F401  (imports torch_geometric without torch's jit.script notice)
from torch_geometric.data import Data

from detectors.base import Detections

__all__ = ["GraphBuildError", "EdgeBlock", "ObjectGraphBuilder", "check_frames", "stack_features",
           "node_tensors", "pairwise_iou", "first_node_ids", "offset_blocks", "merge_blocks",
           "graph_data", "SPATIAL", "TEMPORAL"]

SPATIAL = 0
"""``edge_type`` of an edge inside one frame (IoU softmax, Eq. 1)."""
TEMPORAL = 1
"""``edge_type`` of an edge between frame t and the next frame of the list (cosine softmax, Eq. 2):
the node of frame t aggregates from the node of frame t + 1, so the PyG edge points t + 1 -> t."""


class GraphBuildError(ValueError):
    """Frames cannot become a graph (missing or mismatched features, bad order, bad option)."""


class EdgeBlock(NamedTuple):
    """Entries ``A[row, col]`` of the rows of one frame, with ids counted from its first node.

    ``row`` int64 [E] is the aggregating object (the PyG *target*) in its frame; ``col`` int64 [E]
    is the object it aggregates from (the PyG *source*), counted from the same origin (a spatial
    neighbour j of frame t is ``j``, a temporal neighbour j of frame t + 1 is ``N_t + j``), so
    adding the frame's first node id to both gives global ids. ``weight`` float32 [E] is
    ``A[row, col]``; ``edge_type`` int64 [E] is 0 (spatial) or 1 (temporal). Entries are sorted
    by ``(row, col)``. :func:`graph_data` turns them into PyG edges ``(col, row)``.
    """

    row: Tensor
    col: Tensor
    weight: Tensor
    edge_type: Tensor

    @classmethod
    def empty(cls) -> "EdgeBlock":
        """A block without edges (frame without objects, or a relation switched off)."""
        index = torch.zeros(0, dtype=torch.long)
        return cls(index, index, torch.zeros(0, dtype=torch.float32), index)


# ---------------------------------------------------------------------------------------- inputs
def check_frames(frames: Sequence[Detections]) -> list[Detections]:
    """Validate frames for graph building and return them as a list.

    Checks that every item is a ``Detections``, every frame with objects carries ``features``,
    all frames that carry features have the same width D, and ``frame_index`` strictly increases.
    Raises :class:`GraphBuildError` naming the bad frame.
    """
    if isinstance(frames, Detections):
        raise GraphBuildError("expected a sequence of Detections (one per frame), got a single "
                              "Detections; wrap it in a list")
    try:
        frames = list(frames)
    except TypeError:
        raise GraphBuildError("expected a sequence of Detections (one per frame), got "
                              f"{type(frames).__name__}") from None
    width, width_frame, last_index = None, None, None
    for position, det in enumerate(frames):
        if not isinstance(det, Detections):
            raise GraphBuildError(
                f"item {position} of the frames is a {type(det).__name__}, expected Detections")
        if det.features is None and len(det):
            raise GraphBuildError(
                f"frame {det.frame_index} has {len(det)} objects but no features; attach node "
                "features first (stgraph.features.annotate_features or Detections.with_features)")
        if det.features is not None:
            if width is None:
                width, width_frame = det.features.shape[1], det.frame_index
            elif det.features.shape[1] != width:
                raise GraphBuildError(
                    f"feature widths differ: frame {width_frame} has {width}-d features, "
                    f"frame {det.frame_index} has {det.features.shape[1]}-d")
        if last_index is not None and det.frame_index <= last_index:
            raise GraphBuildError(
                f"frames must be in time order (strictly increasing frame_index): frame "
                f"{det.frame_index} comes after frame {last_index}")
        last_index = det.frame_index
    return frames


def stack_features(frames: Sequence[Detections]) -> Tensor:
    """Features of all objects, frame after frame: float32 [N, D] (D = 0 when no frame has any).

    Frames must be valid (:func:`check_frames`); frames without objects may lack features.
    """
    width = next((d.features.shape[1] for d in frames if d.features is not None), 0)
    parts = [d.features if d.features is not None else np.zeros((0, width), np.float32)
             for d in frames]
    return torch.from_numpy(np.concatenate(parts) if parts else np.zeros((0, width), np.float32))


def node_tensors(frames: Sequence[Detections]) -> dict[str, Tensor]:
    """Per-node tensors of valid frames, nodes ordered by frame then row (N = total objects).

    Returns ``x`` float32 [N, D], ``box`` float32 [N, 4] (xyxy pixels), ``det_score`` float32 [N],
    ``label`` int64 [N], ``frame`` int64 [N] (``frame_index``), ``object_id`` int64 [N] (row of
    the node inside its frame's ``Detections``). Arrays are copied, never shared with ``frames``.
    """
    counts = torch.tensor([len(d) for d in frames], dtype=torch.long)
    frame_pos = torch.repeat_interleave(torch.arange(len(frames)), counts)
    first_ids = torch.cumsum(counts, 0) - counts

    def cat(arrays: list[np.ndarray], empty: np.ndarray) -> Tensor:
        return torch.from_numpy(np.concatenate(arrays) if arrays else empty)

    return {
        "x": stack_features(frames),
        "box": cat([d.boxes for d in frames], np.zeros((0, 4), np.float32)),
        "det_score": cat([d.scores for d in frames], np.zeros(0, np.float32)),
        "label": cat([d.labels for d in frames], np.zeros(0, np.int64)),
        "frame": torch.tensor([d.frame_index for d in frames], dtype=torch.long)[frame_pos],
        "object_id": torch.arange(int(counts.sum())) - first_ids[frame_pos],
    }


def first_node_ids(counts: Sequence[int]) -> list[int]:
    """Global id of each frame's first node (nodes numbered frame after frame): [T]."""
    return np.cumsum([0, *counts[:-1]]).tolist() if len(counts) else []


# ---------------------------------------------------------------------------------- dense blocks
def pairwise_iou(boxes: Tensor) -> Tensor:
    """IoU of every pair of boxes in each batch item: [B, M, 4] xyxy -> [B, M, M].

    Same formula as ``torchvision.ops.box_iou``, batched; pairs whose union is empty (two
    zero-area boxes) get 0 instead of NaN.
    """
    top_left = torch.maximum(boxes[:, :, None, :2], boxes[:, None, :, :2])
    bottom_right = torch.minimum(boxes[:, :, None, 2:], boxes[:, None, :, 2:])
    wh = (bottom_right - top_left).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    area = (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
    union = area[:, :, None] + area[:, None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=torch.finfo(boxes.dtype).tiny), 0.0)


def _valid_rows(counts: Sequence[int]) -> Tensor:
    """bool [T, M] (M = max N_t): which padded rows of each frame hold an object."""
    return torch.arange(max(counts, default=0)) < torch.tensor(counts, dtype=torch.long)[:, None]


def _pad_by_frame(values: Tensor, counts: Sequence[int]) -> Tensor:
    """Rows of consecutive frames -> zero-padded batch: [N, F] -> [T, M, F] (M = max N_t)."""
    padded = values.new_zeros(len(counts), max(counts, default=0), values.shape[1])
    padded[_valid_rows(counts)] = values
    return padded


def _keep_top_k(scores: Tensor, candidates: Tensor, k: int | None,
                pinned: Tensor | None = None) -> Tensor:
    """Candidates restricted to the ``k`` highest scores of each row (ties: lower column first).

    ``scores`` float64 [B, M, K], ``candidates`` bool [B, M, K]; ``pinned`` bool [M, K] marks
    pairs ranked above all others (the self pair). Returns bool [B, M, K].
    """
    if k is None or k >= scores.shape[-1]:
        return candidates
    rank_key = scores.masked_fill(~candidates, -math.inf)
    if pinned is not None:
        rank_key = rank_key.masked_fill(pinned, math.inf)
    top = torch.argsort(rank_key, dim=-1, descending=True, stable=True)[..., :k]
    return candidates & torch.zeros_like(candidates).scatter_(-1, top, True)


def _row_softmax(scores: Tensor, candidates: Tensor) -> Tensor:
    """Dense block of A: softmax of ``scores`` over each row's candidates, 0 elsewhere.

    ``scores`` float64 [B, M, K] (IoU or cosine, in [-1, 1], so ``exp`` needs no max shift),
    ``candidates`` bool [B, M, K]. Returns float64 [B, M, K]; rows without candidates are all 0.
    """
    exp = torch.where(candidates, scores.exp(), 0.0)
    return exp / exp.sum(-1, keepdim=True).clamp(min=torch.finfo(exp.dtype).tiny)


# ---------------------------------------------------------------------------------- sparse edges
def _sparse_blocks(weight: Tensor, candidates: Tensor, edge_type: int,
                   col_start: Tensor | None = None) -> list[EdgeBlock]:
    """Dense blocks (weight float64, candidates bool) [B, M, K] -> B :class:`EdgeBlock`.

    ``col_start`` int64 [B] is added to the columns of block b (``N_t`` for temporal blocks).
    """
    batch, row, col = candidates.nonzero(as_tuple=True)
    values = weight[batch, row, col].float()
    if col_start is not None:
        col = col + col_start[batch]
    sizes = torch.bincount(batch, minlength=weight.shape[0]).tolist()
    parts = (row, col, values, torch.full_like(row, edge_type))
    return [EdgeBlock(*block) for block in zip(*(t.split(sizes) for t in parts))]


def _graph_edges(spatial: tuple[Tensor, Tensor], temporal: tuple[Tensor, Tensor],
                 counts: Sequence[int]) -> EdgeBlock:
    """All entries of G_st with global ids, in ``(row, col)`` order, from the dense blocks.

    ``spatial`` = (weight float64 [T, M, M], candidates bool [T, M, M]); ``temporal`` the same
    with T - 1 blocks. With each frame's temporal block placed right of its spatial block,
    [T, M, 2M], the row-major order of the candidates is the ``(row, col)`` order.
    """
    (s_weight, s_keep), (t_weight, t_keep) = spatial, temporal
    num_frames, width = s_weight.shape[:2]
    last = torch.zeros(1, width, width, dtype=torch.bool)  # no temporal block after the last frame
    keep = torch.cat([s_keep, torch.cat([t_keep, last])[:num_frames]], dim=-1)
    weight = torch.cat([s_weight, torch.cat([t_weight, last.double()])[:num_frames]], dim=-1)
    frame, row, col = keep.nonzero(as_tuple=True)
    starts = torch.tensor(first_node_ids(counts), dtype=torch.long)
    next_starts = starts + torch.tensor(counts, dtype=torch.long)
    is_temporal = col >= width
    col_start = torch.where(is_temporal, next_starts[frame] - width, starts[frame])
    return EdgeBlock(starts[frame] + row, col_start + col, weight[frame, row, col].float(),
                     is_temporal.long())


def offset_blocks(blocks: Sequence[EdgeBlock], starts: Sequence[int]) -> EdgeBlock:
    """One block with global ids: block k is shifted by ``starts[k]`` (its frame's first node id).

    Sorted by ``(row, col)`` when the blocks are (one block per frame, frames in order).
    """
    if not blocks:
        return EdgeBlock.empty()
    return EdgeBlock(torch.cat([b.row + s for b, s in zip(blocks, starts)]),
                     torch.cat([b.col + s for b, s in zip(blocks, starts)]),
                     torch.cat([b.weight for b in blocks]),
                     torch.cat([b.edge_type for b in blocks]))


def merge_blocks(spatial: EdgeBlock, temporal: EdgeBlock) -> EdgeBlock:
    """Spatial and temporal entries with the same id origin, merged into ``(row, col)`` order.

    Both inputs are sorted by ``(row, col)`` and a row's spatial columns (its own frame) come
    before its temporal ones (the next frame), so a stable sort by ``row`` suffices.
    """
    merged = [torch.cat(pair) for pair in zip(spatial, temporal)]
    order = torch.argsort(merged[0], stable=True)
    return EdgeBlock(*(t[order] for t in merged))


def graph_data(nodes: dict[str, Tensor], edges: EdgeBlock) -> Data:
    """``Data`` from per-node tensors (:func:`node_tensors`) and entries of A with global ids.

    Entry ``A[row, col]`` becomes the PyG edge ``(col, row)``: source ``col``, target ``row``.
    """
    return Data(edge_index=torch.stack([edges.col, edges.row]), edge_weight=edges.weight,
                edge_type=edges.edge_type, num_nodes=nodes["box"].shape[0], **nodes)


# --------------------------------------------------------------------------------------- builder
class ObjectGraphBuilder:
    """Build the Ano-Graph object spatio-temporal graph G_st of a list of frames.

    Args:
        spatial: add the spatial blocks (IoU softmax inside each frame, Eq. 1).
        temporal: add the temporal blocks (cosine softmax from each frame to the next, Eq. 2).
            Switch either off for the paper's Table 4 ablation.
        self_loops: include the pair (i, i) in spatial softmaxes (IoU(i, i) = 1, as in the paper).
        iou_threshold: spatial pairs with IoU below it are dropped before the softmax (self pairs
            are kept when ``self_loops``); 0 keeps the complete graph of the paper.
        spatial_knn: keep only the k largest-IoU candidates per row (the self pair counts and is
            always kept); None keeps all.
        temporal_knn: keep only the k most cosine-similar objects of the next frame per row.

    Example:
        >>> graph = ObjectGraphBuilder(iou_threshold=0.1, temporal_knn=5).build(detections)
        >>> graph.edge_index, graph.edge_weight, graph.edge_type  # [2, E], [E], [E]
    """

    def __init__(self, spatial: bool = True, temporal: bool = True, self_loops: bool = True,
                 iou_threshold: float = 0.0, spatial_knn: int | None = None,
                 temporal_knn: int | None = None) -> None:
        self.spatial = spatial
        self.temporal = temporal
        self.self_loops = self_loops
        self.iou_threshold = iou_threshold
        self.spatial_knn = spatial_knn
        self.temporal_knn = temporal_knn

    def build(self, frames: Sequence[Detections]) -> Data:
        """Graph of ``frames``: one ``Detections`` with ``features`` [N_t, D] per frame, in order.

        Returns a ``Data`` with ``x`` float32 [N, D], ``box`` float32 [N, 4], ``det_score``
        float32 [N], ``label`` / ``frame`` / ``object_id`` int64 [N], ``edge_index`` int64 [2, E]
        in PyG order (source j, target i), ``edge_weight`` float32 [E] (``A[i, j]``) and
        ``edge_type`` int64 [E] (0 spatial, 1 temporal). Frames without objects add no nodes and break the temporal chain; no frames
        give an empty graph (N = 0).
        """
        frames = check_frames(frames)
        nodes = node_tensors(frames)
        counts = [len(d) for d in frames]
        edges = _graph_edges(self._spatial_weights(nodes["box"], counts),
                             self._temporal_weights(nodes["x"], counts), counts)
        return graph_data(nodes, edges)

    def spatial_blocks(self, boxes: Tensor, counts: Sequence[int]) -> list[EdgeBlock]:
        """Spatial block S_t of each frame (Eq. 1): boxes float32 [N, 4] of T frames -> T blocks."""
        return _sparse_blocks(*self._spatial_weights(boxes, counts), SPATIAL)

    def temporal_blocks(self, x: Tensor, counts: Sequence[int]) -> list[EdgeBlock]:
        """Temporal block T_t of each consecutive pair (Eq. 2): x float32 [N, D] -> T - 1 blocks.

        Block t holds the entries ``T_t[i, j]`` (i in frame t aggregates from j in frame t + 1),
        columns counted from frame t's first node (see :class:`EdgeBlock`).
        """
        return _sparse_blocks(*self._temporal_weights(x, counts), TEMPORAL,
                              col_start=torch.tensor(counts[:-1], dtype=torch.long))

    def _spatial_weights(self, boxes: Tensor, counts: Sequence[int]) -> tuple[Tensor, Tensor]:
        """Dense spatial blocks: weight float64 [T, M, M] and candidates bool [T, M, M]."""
        self._check_params()
        valid = _valid_rows(counts)
        pairs = valid[:, :, None] & valid[:, None, :]
        if not self.spatial:
            return torch.zeros(pairs.shape, dtype=torch.float64), torch.zeros_like(pairs)
        iou = pairwise_iou(_pad_by_frame(boxes.double(), counts))
        diagonal = torch.eye(iou.shape[-1], dtype=torch.bool)
        candidates = pairs & (iou >= self.iou_threshold) & ~diagonal
        if self.self_loops:
            candidates |= pairs & diagonal
        iou = iou.masked_fill(diagonal, 1.0)  # a box overlaps itself fully, even with zero area
        candidates = _keep_top_k(iou, candidates, self.spatial_knn,
                                 pinned=diagonal if self.self_loops else None)
        return _row_softmax(iou, candidates), candidates

    def _temporal_weights(self, x: Tensor, counts: Sequence[int]) -> tuple[Tensor, Tensor]:
        """Dense temporal blocks: weight float64 [T-1, M, M] and candidates bool [T-1, M, M].

        Cosines of zero feature vectors are 0.
        """
        self._check_params()
        valid = _valid_rows(counts)
        pairs = valid[:-1, :, None] & valid[1:, None, :]
        if not self.temporal:
            return torch.zeros(pairs.shape, dtype=torch.float64), torch.zeros_like(pairs)
        unit = _pad_by_frame(F.normalize(x.double(), dim=1), counts)
        cosine = unit[:-1] @ unit[1:].transpose(1, 2)
        candidates = _keep_top_k(cosine, pairs, self.temporal_knn)
        return _row_softmax(cosine, candidates), candidates

    def _check_params(self) -> None:
        for name in ("spatial", "temporal", "self_loops"):
            if not isinstance(getattr(self, name), bool):
                raise GraphBuildError(f"{name} must be True or False, got {getattr(self, name)!r}")
        thr = self.iou_threshold
        if isinstance(thr, bool) or not isinstance(thr, Real) or not 0.0 <= thr <= 1.0:
            raise GraphBuildError(f"iou_threshold must be a number in [0, 1], got {thr!r}")
        for name in ("spatial_knn", "temporal_knn"):
            k = getattr(self, name)
            if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
                raise GraphBuildError(f"{name} must be None or an integer >= 1, got {k!r}")

    def get_params(self) -> dict:
        """Constructor arguments (JSON-serialisable)."""
        return {"spatial": self.spatial, "temporal": self.temporal, "self_loops": self.self_loops,
                "iou_threshold": self.iou_threshold, "spatial_knn": self.spatial_knn,
                "temporal_knn": self.temporal_knn}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"
