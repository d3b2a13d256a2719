"""STRL's knowledge-graph view: HeteroData export, triples, networkx conversion, plots."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from stgraph.graphs.knowledge import (IMPLAUSIBLE, PLAUSIBLE, RELATION, frame_triples,
                                      plot_relation_map, plot_triples, scene_graph, to_networkx)


def _maps() -> dict:
    """Two objects on a 4x6 grid over a 40x60 frame; object 1 is implausible everywhere."""
    rng = np.random.default_rng(0)
    psi = np.full((2, 4, 6), 0.9, np.float32)
    psi[1] = 0.1
    return {"boxes": np.array([[0, 0, 20, 10], [45, 30, 60, 40]], np.float32),
            "class_names": ["moving", "bicycle"], "psi": psi,
            "image": rng.integers(0, 255, (40, 60, 3), dtype=np.uint8), "grid_hw": (4, 6),
            "relation": rng.normal(size=(5, 4, 6)).astype(np.float32)}


def test_scene_graph_is_a_heterodata_with_relation_edges():
    data = scene_graph(_maps())
    assert set(data.node_types) == {"object", "scene_cell"}
    assert data.edge_types == [RELATION]
    assert data["object"].num_nodes == 2 and data["scene_cell"].x.shape == (24, 5)
    edges = data[RELATION]
    assert edges.edge_index.shape == (2, 48) and edges.edge_attr.shape == (48, 1)
    # object 0's box [0, 0, 20, 10] covers 2 x 1 cells of 10 x 10 pixels
    assert int(edges.in_region[:24].sum()) == 2
    torch.testing.assert_close(data["object"].psi, torch.tensor([0.9, 0.1]))
    torch.testing.assert_close(data["scene_cell"].pos[0], torch.tensor([5.0, 5.0]))
    with pytest.raises(ValueError, match="psi"):
        scene_graph({**_maps(), "psi": np.zeros((1, 4, 6))})


def test_frame_triples_most_implausible_first():
    triples = frame_triples(scene_graph(_maps()))
    assert triples[0][0] == "object 1 (bicycle)" and triples[0][1] == IMPLAUSIBLE
    assert triples[-1][1] == PLAUSIBLE and triples[-1][3] == pytest.approx(0.9)
    assert len(triples) == 2 + 2  # cells inside each box
    assert len(frame_triples(scene_graph(_maps()), region_only=False)) == 48


def test_networkx_conversion():
    g = to_networkx(scene_graph(_maps()))
    assert g.number_of_nodes() == 26 and g.number_of_edges() == 48
    assert g.nodes["object", 1]["class_name"] == "bicycle"
    assert g.edges[("object", 1), ("scene_cell", 23)]["psi"] == pytest.approx(0.1)
    assert to_networkx(scene_graph(_maps()), region_only=True).number_of_edges() == 4


def test_triples_plot_is_written(tmp_path):
    maps = _maps()
    path = tmp_path / "triples.png"
    plot_triples(scene_graph(maps), maps["image"], path)
    assert path.stat().st_size > 1000


def test_relation_map_plot_is_written(tmp_path):
    maps = _maps()
    path = tmp_path / "relation.png"
    plot_relation_map(maps["relation"], maps["image"], path, clusters=2)
    assert path.stat().st_size > 1000
