"""Pictures of the data flow: object graphs (networkx), score curves with ground truth, overlays.

* :func:`draw_object_graph` — nodes at box centres (successive frames optionally shifted to show
  time), spatial edges as grey lines, temporal edges as dashed arrows, optional frame underneath;
* :func:`plot_score_curve` — per-frame scores with the ground-truth anomalous spans shaded;
* :func:`draw_boxes` — boxes coloured by score on a BGR frame (returns a new BGR image);
* :func:`blend_heatmap` — a pixel score map coloured and blended over a BGR frame.

Figures are plain ``matplotlib.figure.Figure`` objects (no pyplot state, nothing to close); with
``path`` they are also saved, atomically (temp file, then ``os.replace``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from stgraph.fileio import atomic_path

__all__ = ["draw_object_graph", "plot_score_curve", "draw_boxes", "save_figure", "score_colors",
           "heatmap_colors", "blend_heatmap", "HEATMAP_CMAP"]

SPATIAL_COLOR = "0.45"
HEATMAP_CMAP = "inferno"  # pixel score maps: dark = low, yellow = high
TEMPORAL_COLOR = "tab:orange"


def save_figure(fig: Figure, path: str | Path, dpi: int = 120) -> Path:
    """Write ``fig`` to ``path`` (format from its suffix, e.g. ``.png``) atomically; returns it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    return Path(path)


def _figure_and_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    fig = Figure(figsize=figsize)
    return fig, fig.add_subplot()


# ------------------------------------------------------------------------------------ graphs
def _spatial_pairs(edge_index: np.ndarray, edge_type: np.ndarray) -> np.ndarray:
    """int64 [P, 2]: spatial edges as unordered pairs, each once, self-loops dropped."""
    spatial = edge_index[:, (edge_type == 0) & (edge_index[0] != edge_index[1])]
    return np.unique(np.sort(spatial, axis=0), axis=1).T


def _node_positions(boxes: np.ndarray, frames: np.ndarray,
                    frame_offset: tuple[float, float]) -> np.ndarray:
    """float [N, 2] drawing positions: box centres, shifted by ``frame_offset`` per frame step."""
    steps = frames - frames.min() if len(frames) else frames
    return (boxes[:, :2] + boxes[:, 2:]) / 2 + steps[:, None] * np.asarray(frame_offset, float)


def draw_object_graph(data, image: np.ndarray | None = None, path: str | Path | None = None,
                      frame_offset: tuple[float, float] = (0.0, 0.0),
                      node_color: np.ndarray | None = None, ax: Axes | None = None,
                      edge_alpha: float = 0.6, node_size: float = 60.0, cmap: str = "viridis",
                      title: str | None = None, color_label: str | None = None,
                      boxes: bool = True) -> Figure:
    """Draw an object spatio-temporal graph (the ``Data`` of ``ObjectGraphBuilder.build``).

    Args:
        data: a ``torch_geometric.data.Data`` with ``box`` float [N, 4] xyxy pixels, ``frame``
            int [N], ``edge_index`` int64 [2, E] and ``edge_type`` int64 [E] (0 spatial,
            1 temporal); ``edge_weight`` [E], when present, sets the temporal arrows' widths.
        image: H×W×3 uint8 BGR frame drawn underneath, in pixel coordinates (under the earliest
            frame's nodes when ``frame_offset`` shifts later frames).
        path: also save the figure there (PNG by suffix), atomically.
        frame_offset: (dx, dy) pixels added per frame after the first, to pull frames apart.
        node_color: float [N] values (e.g. anomaly scores) to colour nodes by; default: frame.
        ax: draw into these axes instead of a new figure.
        edge_alpha: opacity of edges.
        node_size: marker area in points².
        cmap: matplotlib colour map of the nodes.
        title: axes title; default states node, frame and edge counts.
        color_label: colour-bar label (default "frame", or "node value" with ``node_color``;
            say what the values are, e.g. "anomaly score").
        boxes: draw each node's box (thin, in the node's colour) under the graph.

    Spatial edges are drawn once per unordered pair as grey lines (self-loops are not drawn),
    temporal edges as dashed arrows from frame t to frame t+1; the legend counts them so.

    Returns:
        The matplotlib ``Figure``.
    """
    import networkx as nx

    from stgraph.graphs.convert import to_networkx

    missing = [k for k in ("box", "frame", "edge_index", "edge_type") if k not in data]
    if missing:
        raise ValueError(f"draw_object_graph needs Data fields {missing} "
                         "(as ObjectGraphBuilder.build returns)")
    draw_box_outlines = boxes
    boxes = np.asarray(data.box, np.float64).reshape(-1, 4)
    frames = np.asarray(data.frame, np.int64).reshape(-1)
    edge_index = np.asarray(data.edge_index, np.int64).reshape(2, -1)
    edge_type = np.asarray(data.edge_type, np.int64).reshape(-1)
    colors = frames if node_color is None else np.asarray(node_color, np.float64).reshape(-1)
    if len(colors) != len(boxes):
        raise ValueError(
            f"node_color has {len(colors)} values but the graph has {len(boxes)} nodes")
    if image is not None and (image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8):
        raise ValueError(f"image must be H×W×3 uint8 BGR, got {image.shape} {image.dtype}")

    fig, ax = _figure_and_axes(ax, (8.0, 6.0))
    graph = to_networkx(data)
    centres = _node_positions(boxes, frames, frame_offset)
    pos = dict(enumerate(map(tuple, centres)))
    if image is not None:
        ax.imshow(image[:, :, ::-1], extent=(0, image.shape[1], image.shape[0], 0), zorder=0)
    pairs = _spatial_pairs(edge_index, edge_type)
    temporal = edge_type == 1
    if len(pairs):
        nx.draw_networkx_edges(graph, pos, edgelist=[tuple(p) for p in pairs.tolist()], ax=ax,
                               arrows=False, edge_color=SPATIAL_COLOR, alpha=edge_alpha, width=1.5)
    if temporal.any():
        weights = np.asarray(data.edge_weight, np.float64) if "edge_weight" in data else 0.5
        widths = 0.5 + 2.0 * np.broadcast_to(weights, edge_type.shape)[temporal]
        arrows = [tuple(e) for e in edge_index[:, temporal].T.tolist()]
        nx.draw_networkx_edges(graph, pos, edgelist=arrows, ax=ax, arrows=True, arrowstyle="-|>",
                               arrowsize=10, style="dashed", edge_color=TEMPORAL_COLOR,
                               alpha=edge_alpha, width=widths, node_size=node_size)
    if len(boxes):
        nodes = nx.draw_networkx_nodes(graph, pos, ax=ax, node_size=node_size, node_color=colors,
                                       cmap=cmap, edgecolors="black", linewidths=0.5)
        if draw_box_outlines:
            shifted = boxes + np.tile(centres - (boxes[:, :2] + boxes[:, 2:]) / 2, 2)
            for (x1, y1, x2, y2), colour in zip(shifted, nodes.to_rgba(colors)):
                ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, lw=1.0,
                                       edgecolor=colour, alpha=0.9, zorder=0.5))
        if color_label is None:
            color_label = "frame" if node_color is None else "node value"
        bar = fig.colorbar(nodes, ax=ax, shrink=0.8, label=color_label)
        if node_color is None:
            bar.locator = MaxNLocator(integer=True)
            bar.update_ticks()
    ax.legend(handles=[
        Line2D([], [], color=SPATIAL_COLOR, lw=1.5, label=f"spatial (IoU): {len(pairs)} pairs"),
        Line2D([], [], color=TEMPORAL_COLOR, lw=1.5, ls="--",
               label=f"temporal (cosine): {int(temporal.sum())}"),
    ], loc="upper right", fontsize=8)
    _set_image_limits(ax, centres, image)
    ax.set_title(title if title is not None else f"object graph: {len(boxes)} nodes, "
                 f"{len(np.unique(frames))} frames, {edge_index.shape[1]} edges")
    if path is not None:
        save_figure(fig, path)
    return fig


def _set_image_limits(ax: Axes, points: np.ndarray, image: np.ndarray | None,
                      margin: float = 20.0) -> None:
    """Axis limits covering ``points`` [N, 2] and the image, in image orientation (y down)."""
    corners = [points] if len(points) else []
    if image is not None:
        corners.append(np.array([[0.0, 0.0], [image.shape[1], image.shape[0]]]))
    if not corners:
        return
    stacked = np.concatenate(corners)
    (x0, y0), (x1, y1) = stacked.min(axis=0) - margin, stacked.max(axis=0) + margin
    ax.set_xlim(x0, x1)
    ax.set_ylim(y1, y0)
    ax.set_aspect("equal")


# ------------------------------------------------------------------------------------ scores
def _label_spans(labels: np.ndarray) -> np.ndarray:
    """int64 [S, 2]: (first, last + 1) positions of each run of ``labels > 0``."""
    change = np.diff(np.concatenate([[0], (labels > 0).astype(np.int8), [0]]))
    return np.stack([np.flatnonzero(change == 1), np.flatnonzero(change == -1)], axis=1)


def plot_score_curve(frames: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray,
                     labels: Sequence[int] | np.ndarray | None = None,
                     path: str | Path | None = None,
                     title: str = "anomaly score", threshold: float | None = None,
                     ax: Axes | None = None) -> Figure:
    """Score per frame as a line, ground-truth anomalous frames shaded.

    Args:
        frames: int [T] frame indices (x axis).
        scores: float [T] scores, higher = more abnormal.
        labels: optional [T] ground truth aligned with ``frames`` (1 = anomalous frame).
        path: also save the figure there, atomically.
        title: axes title.
        threshold: draw a horizontal line at this score.
        ax: draw into these axes instead of a new figure.

    Returns:
        The matplotlib ``Figure``.
    """
    frames = np.asarray(frames).reshape(-1)
    scores = np.asarray(scores, np.float64).reshape(-1)
    if len(frames) != len(scores):
        raise ValueError(f"plot_score_curve: {len(frames)} frames but {len(scores)} scores")
    fig, ax = _figure_and_axes(ax, (9.0, 3.0))
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
        if len(labels) != len(frames):
            raise ValueError(f"plot_score_curve: {len(frames)} frames but {len(labels)} labels")
        for i, (start, stop) in enumerate(_label_spans(labels)):
            ax.axvspan(frames[start] - 0.5, frames[stop - 1] + 0.5, color="tab:red", alpha=0.15,
                       lw=0, label="ground-truth anomaly" if i == 0 else None)
    ax.plot(frames, scores, color="tab:blue", lw=1.2, label="score")
    if threshold is not None:
        ax.axhline(threshold, color="0.3", ls=":", lw=1, label=f"threshold {threshold:.3g}")
    ax.set_xlabel("frame")
    ax.set_ylabel("score")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    if len(frames):
        ax.set_xlim(frames.min() - 0.5, frames.max() + 0.5)
    if path is not None:
        save_figure(fig, path)
    return fig


# ------------------------------------------------------------------------------------ overlays
def score_colors(scores: np.ndarray, cmap: str = "RdYlGn_r", vmin: float | None = None,
                 vmax: float | None = None) -> np.ndarray:
    """uint8 [K, 3] BGR colours of ``scores`` [K] on ``cmap`` over [vmin, vmax] (default: their
    range)."""
    from matplotlib import colormaps

    scores = np.asarray(scores, np.float64).reshape(-1)
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores contain NaN or inf")
    if len(scores) == 0:
        return np.zeros((0, 3), np.uint8)
    low = scores.min() if vmin is None else vmin
    high = scores.max() if vmax is None else vmax
    unit = np.clip((scores - low) / (high - low), 0, 1) if high > low else np.zeros_like(scores)
    rgb = colormaps[cmap](unit)[:, :3]
    return np.round(rgb[:, ::-1] * 255).astype(np.uint8)


def draw_boxes(image: np.ndarray, boxes: np.ndarray, scores: np.ndarray | None = None,
               labels: Sequence[str] | None = None, cmap: str = "RdYlGn_r", thickness: int = 2,
               vmin: float | None = None, vmax: float | None = None) -> np.ndarray:
    """A copy of ``image`` with ``boxes`` drawn, coloured by ``scores``.

    Args:
        image: H×W×3 uint8 BGR.
        boxes: float [K, 4] xyxy pixels.
        scores: float [K]; colours follow ``cmap`` over [vmin, vmax] (default: the scores' range,
            so with ``RdYlGn_r`` the highest score is red). ``None``: all boxes green.
        labels: optional text per box, written above it.
        thickness: line width in pixels.

    Returns:
        uint8 [H, W, 3] BGR; ``image`` is left unchanged.
    """
    from detectors.base import check_image

    out = check_image(image, "draw_boxes").copy()
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if not np.all(np.isfinite(boxes)):
        raise ValueError("draw_boxes: boxes contain NaN or inf")
    if scores is None:
        colors = np.tile(np.array([[0, 200, 0]], np.uint8), (len(boxes), 1))
    else:
        if len(scores) != len(boxes):
            raise ValueError(f"draw_boxes: {len(boxes)} boxes but {len(scores)} scores")
        colors = score_colors(np.asarray(scores), cmap, vmin, vmax)
    if labels is not None and len(labels) != len(boxes):
        raise ValueError(f"draw_boxes: {len(boxes)} boxes but {len(labels)} labels")
    corners = np.round(boxes).astype(np.int64)
    for (x1, y1, x2, y2), color in zip(corners.tolist(), colors.tolist()):
        cv2.rectangle(out, (x1, y1), (x2, y2), color, thickness)
    if labels is not None:
        order = np.argsort(-np.asarray(scores, np.float64), kind="stable") \
            if scores is not None else np.arange(len(boxes))
        _draw_labels(out, corners[order], [str(labels[k]) for k in order], colors[order])
    return out


LABEL_SCALE = 0.35


def _draw_labels(image: np.ndarray, corners: np.ndarray, labels: Sequence[str],
                 colors: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Write ``labels`` on dark tags next to their boxes (in place), first come first placed:
    above the box, else below it, else inside its top; a label that would overlap one already
    written in every place is left out (its box stays). Returns the tags (x1, y1, x2, y2)."""
    h, w = image.shape[:2]
    placed: list[tuple[int, int, int, int]] = []
    for (x1, y1, x2, y2), text, color in zip(corners.tolist(), labels, colors.tolist()):
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, LABEL_SCALE, 1)
        tag_h = th + base + 2
        left = int(np.clip(x1, 0, max(w - tw - 2, 0)))
        for top in (y1 - tag_h - 1, y2 + 1, y1 + 1):
            top = int(np.clip(top, 0, max(h - tag_h, 0)))
            rect = (left, top, left + tw + 2, top + tag_h)
            if not any(rect[0] < r[2] and r[0] < rect[2] and rect[1] < r[3] and r[1] < rect[3]
                       for r in placed):
                break
        else:
            continue
        placed.append(rect)
        cv2.rectangle(image, rect[:2], (rect[2] - 1, rect[3] - 1), (0, 0, 0), -1)
        cv2.putText(image, text, (left + 1, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, LABEL_SCALE,
                    color, 1, cv2.LINE_AA)
    return placed


def fit_text_scale(text: str, width: int, scale: float = 0.45, thickness: int = 1) -> float:
    """The largest font scale <= ``scale`` at which ``text`` (FONT_HERSHEY_SIMPLEX) fits in
    ``width`` pixels (at least 0.25): headers stay whole on narrow frames (Ped2: 360 px)."""
    size = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)[0][0]
    return scale if size <= width else max(0.25, scale * width / size)


def heatmap_colors(score_map: np.ndarray, vmin: float, vmax: float,
                   cmap: str = HEATMAP_CMAP) -> np.ndarray:
    """float32 [H, W, 3] RGB in [0, 1]: ``score_map`` [H, W] on ``cmap`` over [vmin, vmax]."""
    from matplotlib import colormaps

    score_map = np.asarray(score_map, np.float64)
    unit = (np.clip((score_map - vmin) / (vmax - vmin), 0, 1) if vmax > vmin
            else np.zeros_like(score_map))
    return colormaps[cmap](unit)[..., :3].astype(np.float32)


def blend_heatmap(image: np.ndarray, score_map: np.ndarray, vmin: float, vmax: float,
                  alpha: float = 0.5, cmap: str = HEATMAP_CMAP) -> np.ndarray:
    """uint8 [H, W, 3] BGR: ``image`` with ``score_map`` [h, w] (resized to the image bilinearly,
    as pixel AUC resizes it: :func:`stgraph.region_metrics.resize_score_map`) coloured on
    ``cmap`` over [vmin, vmax] and blended in with weight ``alpha``."""
    from detectors.base import check_image
    from stgraph.region_metrics import resize_score_map

    image = check_image(image, "blend_heatmap")
    heat = heatmap_colors(resize_score_map(score_map, image.shape[:2]), vmin, vmax, cmap)
    blended = (1 - alpha) * image.astype(np.float32) + alpha * 255 * heat[..., ::-1]
    return np.clip(np.round(blended), 0, 255).astype(np.uint8)
