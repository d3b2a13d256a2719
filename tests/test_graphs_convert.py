"""to_networkx / from_networkx: attributes, dtypes and shapes survive the round trip."""
from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from detectors.base import Detections
from stgraph.graphs import ObjectGraphBuilder, from_networkx, to_networkx


def frames(counts, dim: int = 4) -> list[Detections]:
    rng = np.random.default_rng(0)
    out = []
    for t, n in enumerate(counts):
        xy = rng.uniform(0, 50, (n, 2))
        out.append(Detections(np.hstack([xy, xy + 10]), rng.uniform(size=n), rng.integers(0, 3, n),
                              frame_index=5 + t, features=rng.normal(size=(n, dim))))
    return out


def assert_same_data(actual: Data, expected: Data) -> None:
    assert sorted(actual.keys()) == sorted(expected.keys())
    assert actual.num_nodes == expected.num_nodes
    for key in expected.keys():
        if isinstance(expected[key], torch.Tensor):
            assert actual[key].dtype == expected[key].dtype, key
            assert actual[key].shape == expected[key].shape, key
            assert torch.equal(actual[key], expected[key]), key
        else:
            assert actual[key] == expected[key], key


@pytest.fixture
def graph() -> Data:
    return ObjectGraphBuilder().build(frames([2, 3, 0, 2]))


def test_round_trip_keeps_every_tensor_and_graph_attribute(graph):
    graph.video = "Test001"                       # graph attributes: a string and a 0-d tensor
    graph.center_frame = torch.tensor(7)
    graph.is_hard = torch.tensor([True, False])   # neither node- nor edge-sized
    back = from_networkx(to_networkx(graph))
    assert_same_data(back, graph)


def test_networkx_view_of_nodes_and_edges(graph):
    g = to_networkx(graph)
    assert isinstance(g, nx.DiGraph)
    assert g.number_of_nodes() == graph.num_nodes
    assert g.number_of_edges() == graph.edge_index.shape[1]
    node = g.nodes[3]
    assert node["frame"] == 6 and node["object_id"] == 1 and isinstance(node["label"], int)
    assert isinstance(node["x"], np.ndarray)
    assert node["x"].dtype == np.float32 and node["x"].shape == (4,)
    np.testing.assert_array_equal(node["box"], graph.box[3].numpy())
    assert node["det_score"] == pytest.approx(float(graph.det_score[3]))
    # a temporal edge keeps its weight under networkx's usual name
    e = int((graph.edge_type == 1).nonzero()[0])
    src, dst = graph.edge_index[:, e].tolist()
    weight = pytest.approx(float(graph.edge_weight[e]))
    assert g.edges[src, dst] == {"weight": weight, "edge_type": 1}
    # the weighted in-degree of every node (it aggregates over its in-edges, a row of A) is 1
    # per block it has rows in
    in_weight = dict(g.in_degree(weight="weight"))
    blocks = {(t, k) for t, k in zip(graph.edge_index[1].tolist(), graph.edge_type.tolist())}
    for n in g.nodes:
        assert in_weight[n] == pytest.approx(sum(1 for t, _ in blocks if t == n), abs=1e-5)


def test_empty_graph_round_trip_keeps_shapes():
    empty = ObjectGraphBuilder().build([Detections.empty(0, feature_dim=8), Detections.empty(1)])
    g = to_networkx(empty)
    assert g.number_of_nodes() == 0 and g.number_of_edges() == 0
    back = from_networkx(g)
    assert back.x.shape == (0, 8) and back.box.shape == (0, 4)
    assert_same_data(back, empty)


@pytest.mark.parametrize("image_ids", [
    {5: "a.jpg", 6: "b.jpg", 8: "d.jpg"},
    [f"{i:03d}.jpg" for i in range(10)],
])
def test_image_ids_per_node(graph, image_ids):
    g = to_networkx(graph, image_ids=image_ids)
    assert [g.nodes[n]["image_id"] for n in g.nodes] == [image_ids[f] for f in graph.frame.tolist()]
    back = from_networkx(g)
    assert back.image_id == [image_ids[f] for f in graph.frame.tolist()]
    assert torch.equal(back.x, graph.x)


def test_image_ids_missing_frame(graph):
    with pytest.raises(ValueError, match="image_ids has no entry for frame 8"):
        to_networkx(graph, image_ids={5: "a", 6: "b"})
    with pytest.raises(ValueError, match="image_ids has no entry for frame 6"):
        to_networkx(graph, image_ids=["a"] * 6)


def test_duplicate_edges_are_refused():
    data = Data(edge_index=torch.tensor([[0, 0], [1, 1]]), edge_weight=torch.tensor([0.5, 0.25]),
                num_nodes=2)
    with pytest.raises(ValueError, match="more than once"):
        to_networkx(data)


def test_from_hand_made_networkx_graph():
    g = nx.DiGraph()
    g.add_node("a", frame=3, score=0.5, x=np.array([1.0, 2.0], np.float32), name="car")
    g.add_node("b", frame=4, score=0.25, x=np.array([0.0, 1.0], np.float32), name="person")
    g.add_edge("b", "a", weight=0.75)
    data = from_networkx(g)
    assert data.num_nodes == 2 and data.edge_index.tolist() == [[1], [0]]
    assert data.frame.dtype == torch.int64 and data.frame.tolist() == [3, 4]
    assert data.score.dtype == torch.float32
    assert data.x.dtype == torch.float32 and data.x.shape == (2, 2)
    assert data.edge_weight.tolist() == [0.75]
    assert data.name == ["car", "person"]


def test_undirected_graph_gets_both_directions():
    g = nx.Graph()
    g.add_edge(0, 1, weight=0.5)
    data = from_networkx(g)
    assert sorted(data.edge_index.t().tolist()) == [[0, 1], [1, 0]]
    assert data.edge_weight.tolist() == [0.5, 0.5]


def test_missing_attribute_and_multigraph_are_refused():
    g = nx.DiGraph()
    g.add_node(0, frame=1)
    g.add_node(1)
    with pytest.raises(ValueError, match="node attribute 'frame' is missing on 1 of 2 nodes"):
        from_networkx(g)
    with pytest.raises(ValueError, match="multigraph"):
        from_networkx(nx.MultiDiGraph())
