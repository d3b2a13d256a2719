"""Exact leave-one-edge-out explanations of object scores."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from _live_helpers import fitted_pipeline, small_video
from torch_geometric.data import Data

from stgraph.explain import (draw_explanation, explain_node, explain_nodes, explain_video,
                             explanation_columns)
from stgraph.graphs import ObjectGraphBuilder


@pytest.fixture(scope="module", params=["discriminator", "mahalanobis"])
def model_and_frames(request):
    options = {} if request.param == "discriminator" else {"scoring": "mahalanobis",
                                                           "standardize": True}
    pipe = fitted_pipeline(window_radius=3, **options)
    video = small_video(5, n_frames=24, anomalies=("fast",))
    return pipe.model, pipe.extract(video), video


@pytest.fixture(scope="module")
def graph(model_and_frames):
    model, frames, _ = model_and_frames
    busiest = int(np.argmax([len(f) for f in frames[2:-2]])) + 2
    return ObjectGraphBuilder().build(frames[busiest - 2:busiest + 3])


def without_edge(graph: Data, edge: int) -> Data:
    keep = torch.ones(graph.edge_index.size(1), dtype=torch.bool)
    keep[edge] = False
    out = graph.clone()
    out.edge_index, out.edge_weight = graph.edge_index[:, keep], graph.edge_weight[keep]
    out.edge_type = graph.edge_type[keep]
    return out


def edge_id(graph: Data, target: int, source: int) -> int:
    match = (graph.edge_index[1] == target) & (graph.edge_index[0] == source)
    return int(match.nonzero()[0, 0])


def centre_nodes(graph):
    frames = graph.frame.unique()
    return (graph.frame == frames[len(frames) // 2]).nonzero().reshape(-1).tolist()


def test_deltas_are_exact_and_top_edge_matters_more_than_a_random_one(model_and_frames, graph):
    model = model_and_frames[0]
    full = model.score_graph(graph).double()
    rng = np.random.default_rng(0)
    for node in centre_nodes(graph):
        explanation = explain_node(model, graph, node)
        assert explanation.score == pytest.approx(float(full[node]), abs=1e-6)
        assert len(explanation) > 1
        assert np.all(np.diff(np.abs(explanation.delta)) <= 0)  # sorted by |delta|
        # Re-score the whole graph without each listed edge: the deltas are exact.
        rescored = [float(full[node] - model.score_graph(
            without_edge(graph, edge_id(graph, t, s)))[node])
            for t, s in zip(explanation.target, explanation.source)]
        np.testing.assert_allclose(explanation.delta, rescored, atol=1e-5)
        random_edge = int(rng.integers(1, len(explanation)))
        assert abs(rescored[0]) >= abs(rescored[random_edge])
        assert abs(rescored[0]) > 0
        # Any edge not listed leaves the score unchanged.
        listed = {(int(t), int(s)) for t, s in zip(explanation.target, explanation.source)}
        others = [e for e, (s, t) in enumerate(graph.edge_index.T.tolist()) if (t, s) not in listed]
        for edge in rng.choice(others, size=min(5, len(others)), replace=False):
            changed = model.score_graph(without_edge(graph, int(edge)))[node]
            assert float(changed) == pytest.approx(float(full[node]), abs=1e-6)


def test_explanation_fields_and_top_k(model_and_frames, graph):
    model = model_and_frames[0]
    node = centre_nodes(graph)[0]
    explanation = explain_nodes(model, graph, [node])[0]
    top = explanation.top(2)
    assert len(top) == 2 and top.node == node
    assert top.frame == int(graph.frame[node]) and top.object_id == int(graph.object_id[node])
    into = top.target == node
    np.testing.assert_array_equal(top.neighbour[into], top.source[into])
    np.testing.assert_array_equal(top.neighbour_frame, graph.frame.numpy()[top.neighbour])
    assert {r["type"] for r in explanation.records()} <= {"spatial", "temporal"}
    with pytest.raises(ValueError, match="not in the graph"):
        explain_nodes(model, graph, [graph.num_nodes])


def test_explain_video_adds_columns_with_batch_scores(model_and_frames):
    model, frames, _ = model_and_frames
    table = explain_video(model, frames, video="v", top_k=2)
    batch = model.score(frames, video="v")
    np.testing.assert_allclose(table.column("score"), batch.column("score"), atol=1e-6)
    assert {"why1_frame", "why1_object", "why1_type", "why1_delta", "why2_delta"} <= set(
        table.extra_columns)
    assert np.all(np.abs(table.column("why1_delta")) >= np.abs(table.column("why2_delta")))
    assert set(table.column("why1_type")) <= {"spatial", "temporal"}
    with pytest.raises(ValueError, match="explanations for a frame"):
        explanation_columns([[]], [2], 1)


def test_draw_explanation_writes_a_picture(model_and_frames, graph, tmp_path):
    model, _, video = model_and_frames
    node = centre_nodes(graph)[0]
    explanation = explain_node(model, graph, node)
    image = video.frames[explanation.frame]
    fig = draw_explanation(graph, explanation, image=image, path=tmp_path / "why.png", top_k=3)
    assert (tmp_path / "why.png").stat().st_size > 1000
    assert str(explanation.object_id) in fig.axes[0].get_title()
