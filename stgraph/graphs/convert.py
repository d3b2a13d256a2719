"""Conversion between object graphs (PyG ``Data``) and ``networkx.DiGraph``, for drawing and study.

Node ``i`` of the ``Data`` becomes networkx node ``i``; every node-level attribute becomes a node
attribute (0-d values as Python numbers, vector values such as ``x`` [D] and ``box`` [4] as numpy
arrays), every edge-level attribute an edge attribute (``edge_weight`` is renamed ``weight``, the
networkx convention), every other attribute a graph attribute. Dtypes and per-item shapes are kept
in ``g.graph["pyg_schema"]``, so :func:`from_networkx` restores the same tensors, also for an
empty graph. networkx is imported inside the functions, so it stays an optional dependency.
"""
from __future__ import annotations

from numbers import Number
from typing import TYPE_CHECKING, Any, Hashable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor
import stgraph._pyg  # noqa: F401  (imports torch_geometric without torch's jit.script notice)
from torch_geometric.data import Data

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["to_networkx", "from_networkx", "SCHEMA_KEY"]

SCHEMA_KEY = "pyg_schema"
"""Graph attribute holding ``{"node"|"edge"|"graph": {name: {"dtype": str, "shape": [...]}}}`` for
tensor attributes; ``shape`` is the shape of one item for node/edge attributes, the full shape for
graph attributes."""
_EDGE_ALIASES = {"edge_weight": "weight"}  # Data key -> networkx key
_IMAGE_ID = "image_id"


def to_networkx(data: Data, image_ids: Mapping[int, Hashable] | Sequence[Hashable] | None = None
                ) -> "nx.DiGraph":
    """Directed networkx graph with all attributes of ``data`` (see module docstring).

    Args:
        data: a graph, e.g. from :class:`~stgraph.graphs.ObjectGraphBuilder`.
        image_ids: optional image identifier (e.g. file name) per frame index, as a mapping or a
            sequence indexed by ``data.frame``; each node then gets an ``image_id`` attribute.

    Raises:
        ValueError: ``data`` lists an edge twice (a DiGraph holds one edge per pair), an attribute
            name clashes with a renamed one, or ``image_ids`` lacks a frame of ``data``.
    """
    import networkx as nx

    num_nodes = int(data.num_nodes or 0)
    edge_index = data.edge_index if "edge_index" in data else torch.zeros(2, 0, dtype=torch.long)
    _check_unique_edges(edge_index, num_nodes)
    keys = [k for k in data.keys() if k not in ("edge_index", "num_nodes")]
    node_keys = [k for k in keys if data.is_node_attr(k)]
    edge_keys = [k for k in keys if k not in node_keys and data.is_edge_attr(k)]
    graph_keys = [k for k in keys if k not in node_keys and k not in edge_keys]

    node_values = {k: _split_items(data[k]) for k in node_keys}
    if image_ids is not None:
        if _IMAGE_ID in node_values:
            raise ValueError(f"data already has a node attribute {_IMAGE_ID!r}; "
                             "drop it or leave image_ids out")
        node_values[_IMAGE_ID] = _image_ids_per_node(data, image_ids)
    edge_values = {_EDGE_ALIASES.get(k, k): _split_items(data[k]) for k in edge_keys}
    clashes = {_EDGE_ALIASES[k] for k in edge_keys if k in _EDGE_ALIASES} & set(edge_keys)
    if clashes:
        raise ValueError(
            f"edge attributes {sorted(clashes)} clash with the renamed ones {_EDGE_ALIASES}")

    g = nx.DiGraph()
    g.graph.update({k: _graph_value(data[k]) for k in graph_keys})
    tensors = {k for k in keys if isinstance(data[k], Tensor)}
    g.graph[SCHEMA_KEY] = {
        "node": {k: _spec(data[k], per_item=True) for k in node_keys if k in tensors},
        "edge": {_EDGE_ALIASES.get(k, k): _spec(data[k], per_item=True)
                 for k in edge_keys if k in tensors},
        "graph": {k: _spec(data[k], per_item=False) for k in graph_keys if k in tensors},
    }
    g.add_nodes_from((i, {k: v[i] for k, v in node_values.items()}) for i in range(num_nodes))
    g.add_edges_from(
        (u, v, {k: values[e] for k, values in edge_values.items()})
        for e, (u, v) in enumerate(zip(edge_index[0].tolist(), edge_index[1].tolist())))
    return g


def from_networkx(g: "nx.Graph") -> Data:
    """``Data`` from a networkx graph; the inverse of :func:`to_networkx`.

    Nodes are renumbered 0..N-1 in ``g``'s node order; edges come grouped by target node in that
    order, each target's edges in the order they were added (for graphs from
    :class:`~stgraph.graphs.ObjectGraphBuilder`, whose edges are sorted by ``(target, source)``,
    the original order). Attributes listed in ``g.graph["pyg_schema"]`` get their
    recorded dtype and shape; others become tensors when numeric (Python floats -> float32, ints ->
    int64, numpy arrays keep their dtype) and lists otherwise. An undirected graph gets both
    directions of each edge.

    Raises:
        ValueError: ``g`` is a multigraph, or an attribute is missing on some nodes or edges.
    """
    if g.is_multigraph():
        raise ValueError("from_networkx needs a Graph or DiGraph, not a multigraph")
    if not g.is_directed():
        g = g.to_directed()
    schema = g.graph.get(SCHEMA_KEY, {})
    position = {node: i for i, node in enumerate(g.nodes)}
    edges = [edge for node in g.nodes for edge in g.in_edges(node, data=True)]
    edge_index = torch.tensor([[position[u] for u, _, _ in edges],
                               [position[v] for _, v, _ in edges]], dtype=torch.long)
    edge_index = edge_index.reshape(2, len(edges))
    data = Data(edge_index=edge_index, num_nodes=len(position))

    node_items = [attrs for _, attrs in g.nodes(data=True)]
    for key in _attribute_names(node_items, schema.get("node", {})):
        data[key] = _stack(_collect(node_items, key, "node"), schema.get("node", {}).get(key))
    edge_items = [attrs for _, _, attrs in edges]
    data_key = {v: k for k, v in _EDGE_ALIASES.items()}
    for key in _attribute_names(edge_items, schema.get("edge", {})):
        values = _collect(edge_items, key, "edge")
        data[data_key.get(key, key)] = _stack(values, schema.get("edge", {}).get(key))
    for key, value in g.graph.items():
        spec = schema.get("graph", {}).get(key)
        if key == SCHEMA_KEY:
            continue
        data[key] = value if spec is None else _as_tensor(np.reshape(value, spec["shape"]), spec)
    return data


# ------------------------------------------------------------------------------------------ helpers
def _check_unique_edges(edge_index: Tensor, num_nodes: int) -> None:
    pair_ids = edge_index[0] * max(num_nodes, 1) + edge_index[1]
    if torch.unique(pair_ids).numel() != pair_ids.numel():
        raise ValueError("data lists some (source, target) edge more than once; a networkx DiGraph "
                         "holds one edge per pair (coalesce the graph first)")


def _spec(tensor: Tensor, per_item: bool) -> dict:
    """dtype name and shape of a tensor, or of one item (``tensor[i]``) when ``per_item``."""
    shape = tensor.shape[1:] if per_item else tensor.shape
    return {"dtype": str(tensor.dtype).removeprefix("torch."), "shape": list(shape)}


def _split_items(value: Tensor | Sequence[Any]) -> list[Any]:
    """Per-node/edge items: 0-d entries as Python numbers, others as numpy arrays (copied)."""
    if not isinstance(value, Tensor):
        return list(value)
    array = value.detach().cpu().numpy()
    return array.tolist() if array.ndim == 1 else list(array.copy())


def _graph_value(value: Any) -> Any:
    """Graph attribute for networkx: tensors as numpy arrays (copied), anything else as it is."""
    return value.detach().cpu().numpy().copy() if isinstance(value, Tensor) else value


def _image_ids_per_node(data: Data,
                        image_ids: Mapping[int, Hashable] | Sequence[Hashable]) -> list:
    if "frame" not in data:
        raise ValueError("image_ids needs data.frame (the frame index of each node)")
    frames = data.frame.tolist()
    lookup = {}
    for frame in sorted(set(frames)):
        try:
            lookup[frame] = image_ids[frame]
        except (KeyError, IndexError):
            raise ValueError(f"image_ids has no entry for frame {frame}") from None
    return [lookup[f] for f in frames]


def _attribute_names(items: list[dict], spec: Mapping[str, dict]) -> list[str]:
    """Schema names first (kept even without items), then any other name found on the items."""
    names = dict.fromkeys(spec)
    for attrs in items:
        names.update(dict.fromkeys(attrs))
    return list(names)


def _collect(items: list[dict], key: str, kind: str) -> list[Any]:
    try:
        return [attrs[key] for attrs in items]
    except KeyError:
        missing = sum(key not in attrs for attrs in items)
        raise ValueError(f"{kind} attribute {key!r} is missing on {missing} of {len(items)} "
                         f"{kind}s; every {kind} needs it to form a tensor") from None


def _stack(values: list[Any], spec: Mapping[str, Any] | None) -> Tensor | list:
    """Stack per-item values into [count, *shape] (schema dtype/shape when given, else inferred)."""
    if spec is not None:
        return _as_tensor(np.asarray(values).reshape(len(values), *spec["shape"]), spec)
    if values and all(isinstance(v, np.ndarray) for v in values):
        return torch.from_numpy(np.stack(values))
    if values and all(isinstance(v, (Number, np.number)) for v in values):
        return torch.tensor(values)
    return values


def _as_tensor(array: np.ndarray, spec: Mapping[str, Any]) -> Tensor:
    """Tensor of the schema's dtype from an array of the schema's shape (copied)."""
    return torch.from_numpy(np.array(array)).to(getattr(torch, spec["dtype"]))
