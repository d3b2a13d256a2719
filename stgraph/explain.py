"""Why an object got its score: the edges (and neighbours) that drove it, computed exactly.

Ano-Graph's encoder is one GCN layer, so the score of object v depends on a small neighbourhood
(see :mod:`stgraph.models.anograph`)::

    h_v = PReLU( sum_{u in N(v)} a_vu / sqrt(d_v d_u) · x_u Θ + b ),   score_v = f(h_v)

(``f``: the model's scoring of an embedding, e.g. ``1 - D(h_v, s_train)`` or the Mahalanobis
distance of ``h_v`` to the training embeddings).
Removing an edge changes ``h_v`` if it enters v (a term of the sum and ``d_v``) or enters one of
v's neighbours u (``d_u``); no other edge matters. :func:`explain_nodes` removes each of those
edges in turn and re-scores v, all removals in one batched forward pass of the model's own
encoder over v's 2-hop in-neighbourhood, so the result is exact (leave-one-edge-out, with the
feature scaling, GCNConv's normalisation and added self loops exactly as in scoring)::

    delta_e = score_v(graph) - score_v(graph without e)   > 0: e made v look more abnormal

Outputs: :class:`Explanation` per object (edges sorted by ``|delta|``), optional ScoreTable
columns (:func:`explain_video`, :func:`explanation_columns`) and a picture of the strongest edges
over the frame crop (:func:`draw_explanation`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from torch import Tensor
import stgraph._pyg  # noqa: F401  (imports torch_geometric without torch's jit.script notice)
from torch_geometric.data import Data

from detectors.base import Detections
from stgraph.graphs.object_graph import SPATIAL, TEMPORAL

__all__ = ["Explanation", "explain_nodes", "explain_node", "explanation_columns",
           "explain_video", "draw_explanation", "EDGE_TYPE_NAMES", "MAX_BATCH_EDGES"]

EDGE_TYPE_NAMES = {SPATIAL: "spatial", TEMPORAL: "temporal"}


@dataclass(frozen=True)
class Explanation:
    """Exact leave-one-edge-out explanation of one object's score.

    Attributes:
        node: the object's node id in the graph.
        frame: its frame index; ``object_id``: its row in that frame's detections.
        score: its score on the graph.
        target: int64 [E], the PyG target of each edge: it aggregates from ``source``
            (graph edge ``(source, target)``, weight ``A[target, source]``).
        source: int64 [E].
        edge_type: int64 [E], 0 spatial, 1 temporal.
        weight: float32 [E], the edge weight ``A[target, source]``.
        delta: float64 [E], ``score - score without the edge`` (> 0: the edge raised the score).
        neighbour: int64 [E], the node the edge links the object to: ``source`` for an edge into
            the object, else ``target`` (a neighbour whose degree the edge changes).
        neighbour_frame, neighbour_object: int64 [E], that node's frame index and row.

    Edges are sorted by decreasing ``|delta|``.
    """

    node: int
    frame: int
    object_id: int
    score: float
    target: np.ndarray
    source: np.ndarray
    edge_type: np.ndarray
    weight: np.ndarray
    delta: np.ndarray
    neighbour: np.ndarray
    neighbour_frame: np.ndarray
    neighbour_object: np.ndarray

    _EDGE_FIELDS = ("target", "source", "edge_type", "weight", "delta", "neighbour",
                    "neighbour_frame", "neighbour_object")

    def __len__(self) -> int:
        return int(self.delta.shape[0])

    def top(self, k: int) -> "Explanation":
        """The ``k`` edges with the largest ``|delta|`` (all when fewer)."""
        return Explanation(self.node, self.frame, self.object_id, self.score,
                           *(getattr(self, name)[:k] for name in self._EDGE_FIELDS))

    def records(self) -> list[dict]:
        """One JSON-ready dict per edge."""
        return [{"neighbour_frame": int(f), "neighbour_object": int(o),
                 "type": EDGE_TYPE_NAMES.get(int(t), str(int(t))), "weight": float(w),
                 "delta": float(d), "into_object": bool(tg == self.node)}
                for f, o, t, w, d, tg in zip(self.neighbour_frame, self.neighbour_object,
                                             self.edge_type, self.weight, self.delta,
                                             self.target)]


def _message_targets(model: Any, edge_index: Tensor, edge_type: Tensor) -> tuple[Tensor, Tensor]:
    """For each builder edge, the nodes whose aggregation it enters: ``(edge ids, nodes)``.

    The PyG edge (j, i) enters its target i; with ``symmetric`` a temporal edge also enters j
    (its reverse copy).
    """
    ids = torch.arange(edge_index.size(1))
    if not model.model_.symmetric:
        return ids, edge_index[1]
    temporal = edge_type == TEMPORAL
    return torch.cat([ids, ids[temporal]]), torch.cat([edge_index[1], edge_index[0, temporal]])


def _edge_inputs(graph: Data) -> tuple[Tensor, Tensor, Tensor]:
    e = graph.edge_index.size(1)
    weight = getattr(graph, "edge_weight", None)
    edge_type = getattr(graph, "edge_type", None)
    return (graph.edge_index, torch.ones(e) if weight is None else weight,
            torch.full((e,), SPATIAL, dtype=torch.long) if edge_type is None else edge_type)


#: Most edges in one batched forward pass of :func:`explain_nodes` (bounds memory).
MAX_BATCH_EDGES = 200_000


def _neighbourhood(node: int, edge_index: Tensor, edge_ids: Tensor,
                   enters: Tensor) -> tuple[Tensor, Tensor, Tensor, int]:
    """The edges that can change ``node``'s score and their subgraph.

    Returns ``(edges [C] builder edge ids, local_nodes [n] graph ids, sub_index [2, C] local
    ids, centre)``: S = the node and the nodes it aggregates from; an edge matters iff it enters
    a node of S (its aggregation or its degree).
    """
    into_node = edge_ids[enters == node]
    sources = torch.where(edge_index[1, into_node] == node, edge_index[0, into_node],
                          edge_index[1, into_node])
    region = torch.unique(torch.cat([torch.tensor([node]), sources]))
    edges = torch.unique(edge_ids[torch.isin(enters, region)])
    local_nodes, local_index = torch.unique(
        torch.cat([torch.tensor([node]), edge_index[:, edges].reshape(-1)]), return_inverse=True)
    return edges, local_nodes, local_index[1:].reshape(2, -1), int(local_index[0])


def _leave_one_out_batch(c: int, n: int, sub_index: Tensor) -> tuple[Tensor, Tensor]:
    """``C + 1`` copies of a subgraph of n nodes and C edges; copy k >= 1 lacks edge k - 1.

    Returns ``(edge_index [2, C * C] with node ids offset by copy * n, kept [C * C] edge ids)``.
    """
    copies = torch.arange(c + 1)
    keep = copies[:, None] != (torch.arange(c)[None, :] + 1)
    copy_of_edge = copies[:, None].expand(-1, c)[keep]
    kept = torch.arange(c)[None, :].expand(c + 1, -1)[keep]
    return sub_index[:, kept] + copy_of_edge * n, kept


@torch.no_grad()
def explain_nodes(model: Any, graph: Data, nodes: Iterable[int]) -> list[Explanation]:
    """Exact leave-one-edge-out explanation of the score of each node in ``nodes``.

    Args:
        model: a fitted :class:`~stgraph.models.AnoGraph`.
        graph: the graph the nodes are scored on (``ObjectGraphBuilder.build`` or a
            ``SlidingWindowGraph`` window: ``x`` [N, D], ``edge_index`` [2, E], ``edge_weight``,
            ``edge_type``, ``frame``/``object_id`` [N] when present).
        nodes: node ids.

    A node with C edges that can change its score needs ``C + 1`` copies of its 2-hop
    in-neighbourhood (C * C edges); copies of several nodes share one forward pass of the
    model's encoder, up to :data:`MAX_BATCH_EDGES` edges.
    """
    model.check_is_fitted("explain")
    net = model.model_.eval()  # left on its device: a stream scores and explains on the same one
    edge_index, weight, edge_type = _edge_inputs(graph)
    n_nodes = int(graph.num_nodes)
    frame = getattr(graph, "frame", None)
    object_id = getattr(graph, "object_id", None)
    frame = (torch.zeros(n_nodes, dtype=torch.long) if frame is None else frame).numpy()
    object_id = (torch.arange(n_nodes) if object_id is None else object_id).numpy()
    edge_ids, enters = _message_targets(model, edge_index, edge_type)
    nodes = [int(v) for v in nodes]
    bad = [v for v in nodes if not 0 <= v < n_nodes]
    if bad:
        raise ValueError(f"nodes {bad} are not in the graph ({n_nodes} nodes)")
    out: list[Explanation] = []
    group: list[tuple[int, Tensor, Tensor, Tensor, int]] = []
    group_edges = 0
    for position, node in enumerate(nodes):
        edges, local_nodes, sub_index, centre = _neighbourhood(node, edge_index, edge_ids, enters)
        group.append((node, edges, local_nodes, sub_index, centre))
        group_edges += edges.numel() ** 2
        if group_edges >= MAX_BATCH_EDGES or position == len(nodes) - 1:
            out += _explain_group(model, net, graph.x, edge_index, weight, edge_type, frame,
                                  object_id, group)
            group, group_edges = [], 0
    return out


def _explain_group(model: Any, net: Any, x: Tensor, edge_index: Tensor, weight: Tensor,
                   edge_type: Tensor, frame: np.ndarray, object_id: np.ndarray,
                   group: list[tuple[int, Tensor, Tensor, Tensor, int]]) -> list[Explanation]:
    """One batched encode of every leave-one-out copy of the nodes of ``group``."""
    xs, indices, weights, types, readout = [], [], [], [], []
    offset = 0
    for node, edges, local_nodes, sub_index, centre in group:
        c, n = edges.numel(), local_nodes.numel()
        index, kept = _leave_one_out_batch(c, n, sub_index)
        xs.append(x[local_nodes].repeat(c + 1, 1))
        indices.append(index + offset)
        weights.append(weight[edges][kept])
        types.append(edge_type[edges][kept])
        readout.append(offset + torch.arange(c + 1) * n + centre)
        offset += (c + 1) * n
    device = net.feature_mean.device
    h = net.encode(torch.cat(xs).to(device), torch.cat(indices, dim=1).to(device),
                   torch.cat(weights).to(device), torch.cat(types).to(device))
    out = []
    for (node, edges, *_), rows in zip(group, readout):
        scores = model.score_embeddings(h[rows.to(device)]).double().cpu()
        delta = (scores[0] - scores[1:]).numpy()
        order = np.argsort(-np.abs(delta), kind="stable")
        targets, srcs = edge_index[1, edges].numpy()[order], edge_index[0, edges].numpy()[order]
        neighbour = np.where(targets == node, srcs, targets)
        out.append(Explanation(
            node, int(frame[node]), int(object_id[node]), float(scores[0]), targets, srcs,
            edge_type[edges].numpy()[order], weight[edges].numpy()[order], delta[order],
            neighbour, frame[neighbour], object_id[neighbour]))
    return out


def explain_node(model: Any, graph: Data, node: int) -> Explanation:
    """:func:`explain_nodes` for one node."""
    return explain_nodes(model, graph, [node])[0]


def explanation_columns(explanations: Sequence[Sequence[Explanation] | None],
                        counts: Sequence[int], top_k: int) -> dict[str, list[np.ndarray]]:
    """Extra ScoreTable columns (one array [N_t] per frame) of the ``top_k`` strongest edges.

    For rank r = 1..top_k: ``why{r}_frame``, ``why{r}_object`` (the neighbour; -1 when the
    object has fewer edges), ``why{r}_type`` ("spatial" / "temporal" / ""), ``why{r}_delta``
    (score change when that edge is removed; 0 when absent).

    Args:
        explanations: per frame, the explanations of its objects in row order (None: no objects).
        counts: objects per frame.
        top_k: ranks to export.
    """
    columns: dict[str, list[np.ndarray]] = {}
    for rank in range(top_k):
        frames, objects, types, deltas = [], [], [], []
        for per_frame, count in zip(explanations, counts):
            per_frame = per_frame or []
            if len(per_frame) != count:
                raise ValueError(f"{len(per_frame)} explanations for a frame of {count} objects")
            has = [len(e) > rank for e in per_frame]
            frames.append(np.array([e.neighbour_frame[rank] if ok else -1
                                    for e, ok in zip(per_frame, has)], np.int64))
            objects.append(np.array([e.neighbour_object[rank] if ok else -1
                                     for e, ok in zip(per_frame, has)], np.int64))
            types.append(np.array([EDGE_TYPE_NAMES.get(int(e.edge_type[rank]), "") if ok else ""
                                   for e, ok in zip(per_frame, has)], np.str_))
            deltas.append(np.array([e.delta[rank] if ok else 0.0
                                    for e, ok in zip(per_frame, has)], np.float64))
        r = rank + 1
        columns.update({f"why{r}_frame": frames, f"why{r}_object": objects,
                        f"why{r}_type": types, f"why{r}_delta": deltas})
    return columns


def explain_video(model: Any, detections: Sequence[Detections], video: str = "video",
                  top_k: int = 3, radius: int | None = None, fps: float | None = None):
    """ScoreTable of one video (scores as :meth:`AnoGraph.score`) with explanation columns.

    Every object is scored on its own window (``radius``, default: the model's) and explained
    there, with :class:`~stgraph.graphs.window.CentredWindows` (the loop batch scoring and
    streaming use); see :func:`explanation_columns` for the ``why*`` columns.
    """
    from stgraph.graphs.window import CentredWindows
    from stgraph.models.anograph import with_features
    from stgraph.scores import ScoreTable

    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be an int >= 1, got {top_k!r}")
    model.check_is_fitted("explain")
    frames = with_features(detections, model.n_features_in_, f"video {video!r}")
    windows = CentredWindows(model.graph_builder(),
                             model.window_radius_for(fps) if radius is None else radius,
                             model.n_features_in_)
    released = [item for frame in frames for item in windows.push(frame)] + windows.flush()
    scores, explanations = [], []
    for item in released:
        scores.append(model.score_graph(item.graph)[item.rows].numpy().astype(np.float64))
        explanations.append([e.top(top_k) for e in explain_nodes(model, item.graph,
                                                                  item.rows.tolist())]
                            if len(item.rows) else None)
    centres = [item.detections for item in released]
    extra = explanation_columns(explanations, [len(f) for f in centres], top_k)
    return ScoreTable.from_detections(video, centres, scores, extra=extra)


def draw_explanation(graph: Data, explanation: Explanation, image: np.ndarray | None = None,
                     path: str | Path | None = None, top_k: int = 5, margin: int = 40,
                     frame_offset: float = 12.0):
    """Picture "why this object": its ``top_k`` strongest edges over the crop of the frame.

    Draws, with :func:`stgraph.viz.draw_object_graph`, the subgraph of the object and the nodes
    its strongest edges touch, over the crop of ``image`` (the object's frame, BGR [H, W, 3])
    around them, each edge labelled with its ``delta``; the explained object is circled. Nodes
    of later frames are shifted by ``frame_offset`` pixels per frame (right and up).
    Returns the matplotlib Figure (also saved to ``path`` when given).
    """
    from stgraph.viz import draw_object_graph, save_figure

    top = explanation.top(top_k)
    nodes = np.unique(np.concatenate([[explanation.node], top.target, top.source]))
    local = {int(v): k for k, v in enumerate(nodes)}
    boxes = np.asarray(graph.box, np.float64)[nodes]
    x0, y0 = 0, 0
    if image is not None:
        h, w = image.shape[:2]
        x0 = int(max(0, np.floor(boxes[:, 0].min()) - margin))
        y0 = int(max(0, np.floor(boxes[:, 1].min()) - margin))
        x1 = int(min(w, np.ceil(boxes[:, 2].max()) + margin))
        y1 = int(min(h, np.ceil(boxes[:, 3].max()) + margin))
        image = np.ascontiguousarray(image[y0:y1, x0:x1])
    shifted = boxes - np.array([x0, y0, x0, y0], np.float64)
    pairs = [(local[int(t)], local[int(s)]) for t, s in zip(top.target, top.source)]
    sub = Data(box=torch.from_numpy(shifted).float(),
               frame=torch.as_tensor(np.asarray(graph.frame)[nodes]),
               edge_index=torch.tensor([(s, t) for t, s in pairs],
                                       dtype=torch.long).reshape(-1, 2).T,
               edge_type=torch.as_tensor(top.edge_type), edge_weight=torch.as_tensor(top.weight),
               num_nodes=len(nodes))
    title = (f"why object {explanation.object_id} of frame {explanation.frame}: "
             f"score {explanation.score:.3f}")
    # Pull frames apart a little (same shift as draw_object_graph) so that an object and its
    # temporal neighbour in the next frame do not hide each other.
    offset = (frame_offset, -frame_offset)
    fig = draw_object_graph(sub, image=image, title=title, frame_offset=offset)
    ax = fig.axes[0]
    steps = (sub.frame - sub.frame.min()).numpy()[:, None]
    centres = (shifted[:, :2] + shifted[:, 2:]) / 2 + steps * np.asarray(offset, np.float64)
    for (t, s), d in zip(pairs, top.delta):
        # Label 35% of the way from the aggregating node, so (a, b) and (b, a) do not collide.
        at = centres[t] + 0.35 * (centres[s] - centres[t])
        ax.annotate(f"{d:+.3f}", tuple(at), fontsize=7, color="tab:red", ha="center",
                    va="bottom")
    cx, cy = centres[local[explanation.node]]
    ax.plot([cx], [cy], marker="o", markersize=16, markerfacecolor="none",
            markeredgecolor="tab:red", markeredgewidth=2)
    if path is not None:
        save_figure(fig, path)
    return fig
