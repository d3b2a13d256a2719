"""Drawings: object graphs (edge counts per type, positions), score curves, box overlays."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.image import AxesImage
from matplotlib.patches import FancyArrowPatch, Rectangle
from torch_geometric.data import Data

from stgraph.viz import draw_boxes, draw_object_graph, plot_score_curve

# frame 10: nodes 0, 1, 2; frame 11: nodes 3, 4
BOXES = [[10, 10, 30, 50], [40, 10, 60, 50], [100, 60, 120, 100],
         [14, 10, 34, 50], [104, 60, 124, 100]]


def hand_made_graph() -> Data:
    """2 frames: complete spatial graphs with self-loops (3 + 1 pairs), all 3×2 temporal edges."""
    spatial = [(i, j) for group in ([0, 1, 2], [3, 4]) for i in group for j in group]  # 9 + 4 edges
    temporal = [(i, j) for i in (0, 1, 2) for j in (3, 4)]  # 6 edges
    edges = torch.tensor(spatial + temporal).T
    n_spatial = len(spatial)
    return Data(x=torch.randn(5, 4), box=torch.tensor(BOXES, dtype=torch.float32),
                det_score=torch.ones(5), label=torch.zeros(5, dtype=torch.long),
                frame=torch.tensor([10, 10, 10, 11, 11]), object_id=torch.tensor([0, 1, 2, 0, 1]),
                edge_index=edges, edge_weight=torch.full((edges.shape[1],), 0.5),
                edge_type=torch.tensor([0] * n_spatial + [1] * len(temporal)), num_nodes=5)


def drawn(fig):
    ax = fig.axes[0]
    lines = [c for c in ax.collections if isinstance(c, LineCollection)]
    arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
    nodes = [c for c in ax.collections if isinstance(c, PathCollection)]
    return ax, lines, arrows, nodes


def test_object_graph_png_and_edge_counts(tmp_path):
    path = tmp_path / "graph.png"
    image = np.full((120, 160, 3), 90, np.uint8)
    fig = draw_object_graph(hand_made_graph(), image=image, path=path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["graph.png"]  # no temp file left
    png = cv2.imread(str(path))
    assert png is not None and png.shape[0] > 100 and png.shape[1] > 100
    ax, lines, arrows, nodes = drawn(fig)
    assert len(lines) == 1 and len(lines[0].get_segments()) == 4  # 3 + 1 pairs, no self-loops
    assert len(arrows) == 6
    assert len(nodes) == 1 and len(nodes[0].get_offsets()) == 5
    assert len([im for im in ax.images if isinstance(im, AxesImage)]) == 1


def test_object_graph_positions_and_colors():
    values = np.array([0.1, 0.2, 0.3, 0.9, 1.0])
    fig = draw_object_graph(hand_made_graph(), frame_offset=(100, 5), node_color=values)
    _, _, _, nodes = drawn(fig)
    expected = np.array([[20, 30], [50, 30], [110, 80], [124, 35], [214, 85]])  # frame 11 shifted
    np.testing.assert_allclose(nodes[0].get_offsets(), expected)
    np.testing.assert_allclose(nodes[0].get_array(), values)


def test_object_graph_without_edges_or_nodes():
    graph = hand_made_graph()
    only_spatial = graph.clone()
    keep = graph.edge_type == 0
    only_spatial.edge_index, only_spatial.edge_weight, only_spatial.edge_type = (
        graph.edge_index[:, keep], graph.edge_weight[keep], graph.edge_type[keep])
    _, lines, arrows, _ = drawn(draw_object_graph(only_spatial))
    assert len(lines[0].get_segments()) == 4 and arrows == []
    empty = Data(box=torch.zeros(0, 4), frame=torch.zeros(0, dtype=torch.long),
                 edge_index=torch.zeros(2, 0, dtype=torch.long),
                 edge_type=torch.zeros(0, dtype=torch.long), num_nodes=0)
    _, lines, arrows, nodes = drawn(draw_object_graph(empty))
    assert lines == [] and arrows == [] and nodes == []


def test_object_graph_bad_input():
    graph = hand_made_graph()
    with pytest.raises(ValueError, match="node_color has 2 values"):
        draw_object_graph(graph, node_color=[1, 2])
    del graph.box
    with pytest.raises(ValueError, match="box"):
        draw_object_graph(graph)


def test_score_curve_shades_each_anomalous_span(tmp_path):
    labels = np.array([0, 1, 1, 0, 0, 1, 0, 1])
    fig = plot_score_curve(np.arange(8), np.linspace(0, 1, 8), labels, path=tmp_path / "curve.png",
                           threshold=0.5)
    spans = [p for p in fig.axes[0].patches if isinstance(p, Rectangle)]
    spans = [(round(s.get_x(), 1), round(s.get_width(), 1)) for s in spans]
    assert spans == [(0.5, 2.0), (4.5, 1.0), (6.5, 1.0)]
    assert cv2.imread(str(tmp_path / "curve.png")) is not None
    with pytest.raises(ValueError, match="3 labels"):
        plot_score_curve(np.arange(8), np.zeros(8), labels[:3])
    with pytest.raises(ValueError, match="7 scores"):
        plot_score_curve(np.arange(8), np.zeros(7))


def test_draw_boxes_changes_only_box_borders():
    image = np.full((60, 80, 3), 100, np.uint8)
    out = draw_boxes(image, [[10, 20, 40, 50], [50, 5, 70, 15]], scores=[0.0, 1.0], thickness=1)
    assert out.dtype == np.uint8 and out.shape == image.shape and np.all(image == 100)
    border = np.zeros((60, 80), bool)
    for x1, y1, x2, y2 in ([10, 20, 40, 50], [50, 5, 70, 15]):
        border[[y1, y2], x1:x2 + 1] = True
        border[y1:y2 + 1, [x1, x2]] = True
    np.testing.assert_array_equal((out != image).any(axis=2), border)
    low, high = out[20, 25], out[5, 60]  # BGR on each box's top edge
    assert low[1] > low[2] and high[2] > high[1]  # RdYlGn_r: lowest score green, highest red


def test_draw_boxes_bad_input():
    image = np.zeros((10, 10, 3), np.uint8)
    assert np.array_equal(draw_boxes(image, np.zeros((0, 4)), scores=[]), image)
    with pytest.raises(ValueError, match="2 boxes but 1 scores"):
        draw_boxes(image, [[0, 0, 5, 5], [1, 1, 4, 4]], scores=[0.5])
    with pytest.raises(ValueError, match="NaN"):
        draw_boxes(image, [[0, 0, 5, 5]], scores=[float("nan")])
