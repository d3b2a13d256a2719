"""Plot friction of issue 10: boxes and colour-bar label in graph drawings, overlay labels that do
not overlap, headers that fit narrow frames, a legend under report crops."""
from __future__ import annotations

import numpy as np
import torch
from matplotlib.patches import Rectangle
from torch_geometric.data import Data

from stgraph.viz import draw_boxes, fit_text_scale


def _graph() -> Data:
    boxes = torch.tensor([[10, 10, 30, 50], [60, 10, 80, 50], [12, 10, 32, 50]], dtype=torch.float)
    return Data(box=boxes, frame=torch.tensor([0, 0, 1]), x=torch.zeros(3, 2),
                edge_index=torch.tensor([[0, 1], [2, 2]]), edge_type=torch.tensor([1, 1]))


def test_graph_drawing_draws_boxes_and_names_the_colour_bar():
    from stgraph.viz import draw_object_graph

    fig = draw_object_graph(_graph(), node_color=np.array([0.1, 0.5, 0.9]),
                            color_label="anomaly score")
    ax = fig.axes[0]
    assert sum(isinstance(p, Rectangle) for p in ax.patches) == 3
    assert fig.axes[1].get_ylabel() == "anomaly score"
    plain = draw_object_graph(_graph(), boxes=False)
    assert not any(isinstance(p, Rectangle) for p in plain.axes[0].patches)
    assert plain.axes[1].get_ylabel() == "frame"


def test_box_labels_never_overlap_and_the_highest_score_keeps_its_label():
    from stgraph.viz import _draw_labels

    boxes = np.array([[10, 20, 30, 50], [12, 20, 32, 50], [14, 20, 34, 50], [16, 22, 36, 52],
                      [80, 20, 100, 50]])
    image = np.zeros((60, 120, 3), np.uint8)
    tags = _draw_labels(image, boxes, ["9.00", "3.00", "2.00", "1.00", "0.50"],
                        np.full((5, 3), 255, np.uint8))
    assert tags[0][3] <= 20  # the first (highest-scored) label sits above its box
    for k, a in enumerate(tags):
        for b in tags[k + 1:]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)
    assert 2 <= len(tags) < 5  # crowded labels are left out rather than drawn over each other
    out = draw_boxes(np.zeros((60, 120, 3), np.uint8), boxes, np.array([1.0, 3, 2, 0.5, 0.1]),
                     labels=["a", "b", "c", "d", "e"])
    assert out.any()


def test_headers_shrink_to_fit_narrow_frames():
    text = "test-03-wrong_direction frame 1234  score 123.456"
    assert fit_text_scale(text, 2000) == 0.45
    import cv2
    scale = fit_text_scale(text, 360)
    assert scale < 0.45
    assert cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] <= 360


def test_report_crops_carry_a_legend():
    from stgraph.report import _crop_legend

    strip = _crop_legend(240)
    assert strip.shape == (34, 240, 3)
    magenta = (strip == (255, 0, 255)).all(axis=2)
    assert magenta.any()
