"""STRL's knowledge-graph view: (object, relation, scene cell) triples of one frame.

STRL treats the scene embedding as the head entity, each moving object as a tail entity, and
learns a relation embedding per scene cell (the relation map ``R`` [d, h, w]); ψ(cell, object) in
(0, 1) says how plausible the object is in that cell (Eq. 8). This module turns one frame's ψ maps
(:meth:`stgraph.models.strl.STRL.relation_maps`) into a graph and pictures:

* :func:`scene_graph` -> ``torch_geometric.data.HeteroData`` with node types ``object`` (``box``
  [N, 4], ``psi`` [N] mean ψ in the object's region, ``class_name``) and ``scene_cell`` (``x``
  [h*w, d] the relation embedding of the cell, ``box`` [h*w, 4] its pixel box, ``pos`` [h*w, 2]
  its centre, ``row``/``col``), and edges ``("object", "relation", "scene_cell")`` from every
  object to every cell (``edge_attr`` = ψ [E, 1], ``psi`` [E], ``in_region`` [E] bool: the cell is
  inside the object's box, the cells Eq. 11 scores);
* :func:`frame_triples` -> the triples as ``(object, "plausible_in" | "implausible_in", cell, ψ)``;
* :func:`to_networkx` -> ``networkx.DiGraph`` (nodes ``("object", i)``, ``("scene_cell", j)``);
* :func:`plot_triples` -> the triples drawn with networkx over the frame (cells at their centres,
  objects at their box centres, edges coloured by ψ, red = implausible);
* :func:`plot_relation_map` -> the learned relation map ``R``, its cells clustered by K-means
  (the paper's Fig. 5) next to a frame.

Example:
    >>> maps = model.relation_maps("testing/frames/02", frame=120)             # doctest: +SKIP
    >>> data = scene_graph(maps)
    >>> frame_triples(data)[:2]
    [('object 0 (moving)', 'implausible_in', 'cell (9, 6)', 0.08), ...]
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

import stgraph._pyg  # noqa: F401  (before torch_geometric)
from torch_geometric.data import HeteroData  # noqa: E402

__all__ = ["scene_graph", "frame_triples", "to_networkx", "plot_triples", "plot_relation_map",
           "RELATION", "PLAUSIBLE", "IMPLAUSIBLE"]

#: Edge type of the object -> scene cell relations.
RELATION = ("object", "relation", "scene_cell")
PLAUSIBLE, IMPLAUSIBLE = "plausible_in", "implausible_in"


def _cell_boxes(grid_hw: tuple[int, int], image_hw: tuple[int, int]) -> np.ndarray:
    """Pixel boxes float32 [h*w, 4] of the encoder grid cells, row-major."""
    h, w = grid_hw
    ch, cw = image_hw[0] / h, image_hw[1] / w
    rows, cols = np.divmod(np.arange(h * w), w)
    return np.stack([cols * cw, rows * ch, (cols + 1) * cw, (rows + 1) * ch], 1).astype(np.float32)


def scene_graph(maps: Mapping[str, Any]) -> HeteroData:
    """HeteroData of one frame's object-scene relations (see the module docstring).

    Args:
        maps: ``STRL.relation_maps(...)``: ``boxes`` [N, 4], ``class_names`` [N], ``psi``
            [N, h, w], ``image`` [H, W, 3], ``grid_hw``, ``relation`` [d, h, w].

    Raises:
        ValueError: the ψ maps do not match the boxes or the grid.
    """
    boxes = np.asarray(maps["boxes"], np.float32).reshape(-1, 4)
    psi = np.asarray(maps["psi"], np.float32)
    h, w = (int(v) for v in maps["grid_hw"])
    relation = np.asarray(maps["relation"], np.float32)
    if psi.shape != (len(boxes), h, w) or relation.shape[1:] != (h, w):
        raise ValueError(f"psi must be [N={len(boxes)}, {h}, {w}] and relation [d, {h}, {w}], "
                         f"got {psi.shape} and {relation.shape}")
    image_hw = tuple(int(v) for v in np.asarray(maps["image"]).shape[:2])
    cells = _cell_boxes((h, w), image_hw)
    n, m = len(boxes), h * w
    centres = (cells[:, :2] + cells[:, 2:]) / 2
    # a cell is in an object's region when their boxes overlap
    inside = ((cells[None, :, 0] < boxes[:, None, 2]) & (cells[None, :, 2] > boxes[:, None, 0])
              & (cells[None, :, 1] < boxes[:, None, 3]) & (cells[None, :, 3] > boxes[:, None, 1]))
    flat = psi.reshape(n, m)
    region_psi = np.array([flat[i][inside[i]].mean() if inside[i].any() else flat[i].mean()
                           for i in range(n)], np.float32)
    data = HeteroData()
    data["object"].box = torch.from_numpy(boxes)
    data["object"].psi = torch.from_numpy(region_psi)
    data["object"].class_name = list(maps["class_names"])
    data["object"].num_nodes = n
    data["scene_cell"].x = torch.from_numpy(relation.reshape(relation.shape[0], m).T.copy())
    data["scene_cell"].box = torch.from_numpy(cells)
    data["scene_cell"].pos = torch.from_numpy(centres)
    rows, cols = np.divmod(np.arange(m), w)
    data["scene_cell"].row = torch.from_numpy(rows.astype(np.int64))
    data["scene_cell"].col = torch.from_numpy(cols.astype(np.int64))
    src, dst = np.repeat(np.arange(n), m), np.tile(np.arange(m), n)
    data[RELATION].edge_index = torch.from_numpy(np.stack([src, dst]).astype(np.int64))
    data[RELATION].psi = torch.from_numpy(flat.reshape(-1).copy())
    data[RELATION].edge_attr = data[RELATION].psi[:, None]
    data[RELATION].in_region = torch.from_numpy(inside.reshape(-1))
    data.image_hw = image_hw
    data.grid_hw = (h, w)
    return data


def frame_triples(data: HeteroData, threshold: float = 0.5, region_only: bool = True
                  ) -> list[tuple[str, str, str, float]]:
    """The frame's (object, relation, scene cell, ψ) triples, most implausible first.

    Args:
        data: from :func:`scene_graph`.
        threshold: ψ >= threshold is ``"plausible_in"``, below ``"implausible_in"``.
        region_only: only the cells inside each object's box (those Eq. 11 scores).
    """
    edges = data[RELATION]
    src, dst = edges.edge_index.numpy()
    psi = edges.psi.numpy()
    keep = edges.in_region.numpy() if region_only else np.ones(len(psi), bool)
    names = data["object"].class_name
    rows, cols = data["scene_cell"].row.numpy(), data["scene_cell"].col.numpy()
    out = [(f"object {int(i)} ({names[int(i)]})", PLAUSIBLE if p >= threshold else IMPLAUSIBLE,
            f"cell ({int(rows[j])}, {int(cols[j])})", float(f"{p:.3g}"))
           for i, j, p in zip(src[keep], dst[keep], psi[keep])]
    return sorted(out, key=lambda t: t[3])


def to_networkx(data: HeteroData, region_only: bool = False):
    """``networkx.DiGraph``: nodes ``("object", i)`` (``box``, ``psi``, ``class_name``) and
    ``("scene_cell", j)`` (``pos``, ``row``, ``col``), edges object -> cell with ``psi`` and
    ``in_region`` (only the in-region ones with ``region_only``)."""
    import networkx as nx

    g = nx.DiGraph(image_hw=data.image_hw, grid_hw=data.grid_hw)
    obj = data["object"]
    for i in range(obj.num_nodes):
        g.add_node(("object", i), type="object", box=obj.box[i].tolist(),
                   psi=float(obj.psi[i]), class_name=obj.class_name[i])
    cells = data["scene_cell"]
    for j in range(cells.pos.shape[0]):
        g.add_node(("scene_cell", j), type="scene_cell", pos=cells.pos[j].tolist(),
                   row=int(cells.row[j]), col=int(cells.col[j]))
    edges = data[RELATION]
    for (i, j), p, inside in zip(edges.edge_index.T.tolist(), edges.psi.tolist(),
                                 edges.in_region.tolist()):
        if inside or not region_only:
            g.add_edge(("object", i), ("scene_cell", j), relation="relation", psi=p,
                       in_region=bool(inside))
    return g


def plot_triples(data: HeteroData, image: np.ndarray, path: str | Path | None = None,
                 threshold: float = 0.5, title: str | None = None):
    """Draw the in-region triples over the frame with networkx; returns the Figure.

    Objects are drawn at their box centres (boxes outlined, labelled with mean ψ), scene cells
    at their centres; each edge object -> cell is coloured by log10 ψ scaled to the frame's range
    (red = the frame's least plausible, green = its most plausible; a trained model's ψ spans
    decades, see :mod:`stgraph.models.strl`). ``threshold`` is unused in the colours.
    """
    import networkx as nx
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    from stgraph.viz import save_figure

    g = to_networkx(data, region_only=True)
    pos = {}
    for node, attrs in g.nodes(data=True):
        if attrs["type"] == "object":
            x1, y1, x2, y2 = attrs["box"]
            pos[node] = ((x1 + x2) / 2, (y1 + y2) / 2)
        else:
            pos[node] = tuple(attrs["pos"])
    fig = Figure(figsize=(8, 8 * image.shape[0] / image.shape[1] + 0.6))
    ax = fig.add_subplot()
    ax.imshow(image[..., ::-1] if image.ndim == 3 else image, cmap="gray")
    logs = np.log10(np.maximum([d["psi"] for _, _, d in g.edges(data=True)] or [1.0], 1e-30))
    lo, hi = float(logs.min()), float(max(logs.max(), logs.min() + 1e-6))

    def norm(p: float) -> float:  # log10 ψ scaled to the frame's range
        return float(np.clip((np.log10(max(p, 1e-30)) - lo) / (hi - lo), 0.0, 1.0))

    cells = [n for n in g.nodes if n[0] == "scene_cell" and g.in_degree(n)]
    objects = [n for n in g.nodes if n[0] == "object"]
    edges = list(g.edges(data=True))
    nx.draw_networkx_edges(g, pos, ax=ax, edgelist=[(u, v) for u, v, _ in edges],
                           edge_color=[norm(d["psi"]) for _, _, d in edges], edge_cmap=_cmap(),
                           edge_vmin=0.0, edge_vmax=1.0, width=1.2, arrows=False, alpha=0.8)
    nx.draw_networkx_nodes(g, pos, ax=ax, nodelist=cells, node_size=14, node_color="white",
                           edgecolors="black", linewidths=0.5)
    nx.draw_networkx_nodes(g, pos, ax=ax, nodelist=objects, node_size=90,
                           node_color=[norm(g.nodes[n]["psi"]) for n in objects], cmap=_cmap(),
                           vmin=0.0, vmax=1.0, edgecolors="black")
    for n in objects:
        x1, y1, x2, y2 = g.nodes[n]["box"]
        p = g.nodes[n]["psi"]
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, lw=1.5,
                               color=_cmap()(norm(p))))
        ax.text(x1, y1 - 2, f"{n[1]}: ψ={p:.1g}", color="yellow", fontsize=8,
                va="bottom", bbox={"facecolor": "black", "alpha": 0.5, "pad": 1, "lw": 0})
    ax.set_xlim(0, image.shape[1])
    ax.set_ylim(image.shape[0], 0)
    ax.set_axis_off()
    ax.set_title((title or "object -> scene cell relations") + f"\nedge colour: log10 ψ from "
                 f"{lo:.1f} (red) to {hi:.1f} (green)")
    if path is not None:
        save_figure(fig, path)
    return fig


def _cmap():
    from matplotlib import colormaps

    return colormaps["RdYlGn"]


def plot_relation_map(relation: np.ndarray, image: np.ndarray | None = None,
                      path: str | Path | None = None, clusters: int = 3, seed: int = 0):
    """The learned relation map ``R`` [d, h, w]: cells clustered by K-means into ``clusters``
    (the paper's Fig. 5), drawn over ``image`` when given; returns the Figure."""
    from matplotlib.figure import Figure
    from sklearn.cluster import KMeans

    from stgraph.viz import save_figure

    d, h, w = relation.shape
    cells = relation.reshape(d, h * w).T
    labels = KMeans(clusters, n_init=10, random_state=seed).fit_predict(cells).reshape(h, w)
    fig = Figure(figsize=(10 if image is not None else 5, 4))
    axes = fig.subplots(1, 2 if image is not None else 1)
    axes = np.atleast_1d(axes)
    if image is not None:
        axes[0].imshow(image[..., ::-1])
        axes[0].imshow(labels, cmap="tab10", alpha=0.45, vmin=0, vmax=9,
                       extent=(0, image.shape[1], image.shape[0], 0), interpolation="nearest")
        axes[0].set_title(f"relation map R: K-means, c = {clusters}, over a frame")
        axes[0].set_axis_off()
    axes[-1].imshow(labels, cmap="tab10", vmin=0, vmax=9, interpolation="nearest")
    axes[-1].set_title(f"R clusters ({h}x{w} cells, d = {d})")
    axes[-1].set_axis_off()
    if path is not None:
        save_figure(fig, path)
    return fig
