"""Tests of the Ano-Graph model: network, DGI training loop and estimator."""
from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from torch_geometric.data import Data

from detectors.base import Detections
from stgraph.graphs import ObjectGraphBuilder
from stgraph.models import AnoGraph, AnoGraphDGI, NotFittedError, train_dgi
from stgraph.models.base import CONFIG_FILE, STATE_FILE
from stgraph.models.density import MahalanobisDensity, cross_fitted_scores
from stgraph.models.dgi_training import training_summary

IMAGE_SIZE = (240, 320)  # (H, W)
FEATURE_DIM = 16
BOX_WH = np.array([30.0, 50.0])


# ====================================================================== synthetic videos
def normal_features(centres: np.ndarray, projection: np.ndarray) -> np.ndarray:
    """Features of normal objects: a smooth function of the normalised box centre [M, 2] -> [M, D]."""
    angles = np.pi * centres
    basis = np.concatenate([np.sin(angles), np.cos(angles), np.ones((len(centres), 1))], axis=1)
    return np.tanh(basis @ projection.T)


def make_video(rng: np.random.Generator, projection: np.ndarray, n_frames: int = 30,
               n_normal: int = 3, n_anomalous: int = 0, noise: float = 0.05) -> list[Detections]:
    """Objects walking right at a steady speed; the last ``n_anomalous`` rows of every frame are
    anomalous objects whose features ignore their position: each frame they are drawn afresh from
    a Gaussian fitted to normal features, with a quarter of its covariance."""
    height, width = IMAGE_SIZE
    n = n_normal + n_anomalous
    span = np.array([width, height]) - BOX_WH - 10
    start = rng.uniform(0, span, size=(n, 2))
    velocity = np.array([3.0, 0.0]) + rng.normal(0, 0.3, (n, 2))
    reference = normal_features(rng.uniform(0, 1, (2000, 2)), projection)
    mean, cov = reference.mean(0), np.cov(reference.T)
    frames = []
    for t in range(n_frames):
        corner = np.mod(start + velocity * t, span)
        centre = (corner + BOX_WH / 2) / [width, height]
        features = normal_features(centre, projection) + rng.normal(0, noise, (n, FEATURE_DIM))
        if n_anomalous:
            features[n_normal:] = rng.multivariate_normal(mean, cov / 4, n_anomalous)
        frames.append(Detections(np.concatenate([corner, corner + BOX_WH], 1), np.full(n, 0.9),
                                 np.zeros(n, np.int64), frame_index=t, image_size=IMAGE_SIZE,
                                 class_names=("person",), features=features.astype(np.float32)))
    return frames


@pytest.fixture(scope="module")
def projection() -> np.ndarray:
    return np.random.default_rng(100).normal(0, 1, (FEATURE_DIM, 5))


@pytest.fixture(scope="module")
def train_videos(projection) -> list[list[Detections]]:
    rng = np.random.default_rng(0)
    return [make_video(rng, projection) for _ in range(4)]


@pytest.fixture(scope="module")
def test_video(projection) -> list[Detections]:
    """A test video with an anomalous object, a frame without objects and a one-object frame."""
    frames = make_video(np.random.default_rng(1), projection, n_frames=16, n_anomalous=1)
    frames[5] = Detections.empty(frame_index=5, image_size=IMAGE_SIZE, class_names=("person",))
    frames[9] = frames[9][[2]]
    return frames


def tiny_model(**overrides) -> AnoGraph:
    settings = dict(hidden=8, epochs=3, train_window=5, batch_size=8, progress=False)
    return AnoGraph(**{**settings, **overrides})


@pytest.fixture(scope="module")
def fitted(train_videos) -> AnoGraph:
    return tiny_model().fit(train_videos)


# ====================================================================== network
def identity_network(symmetric: bool) -> AnoGraphDGI:
    """2-d network whose encoder is the bare normalised aggregation (identity weights, no bias)."""
    net = AnoGraphDGI(2, hidden=2, symmetric=symmetric)
    with torch.no_grad():
        net.conv.lin.weight.copy_(torch.eye(2))
        net.conv.bias.zero_()
    return net


# PyG order (source, target): (0, 0) spatial self loop of weight 0.5, (1, 0) temporal of weight 1
# = node 0 aggregates from node 1, (1, 1) spatial self loop of weight 0.5.
TWO_NODES = dict(x=torch.tensor([[1.0, 0.0], [0.0, 1.0]]),
                 edge_index=torch.tensor([[0, 1, 1], [0, 0, 1]]),
                 edge_weight=torch.tensor([0.5, 1.0, 0.5]), edge_type=torch.tensor([0, 1, 0]))


def test_encoder_aggregates_in_the_builder_direction():
    # the builder's self weights are kept (no extra loop): in-degrees d0 = 0.5 + 1, d1 = 0.5;
    # h0 = 0.5 x0 / d0 + 1 x1 / sqrt(d0 d1), h1 = 0.5 x1 / d1 = x1 (node 1 does not hear node 0)
    h = identity_network(symmetric=False).encode(**TWO_NODES)
    torch.testing.assert_close(h, torch.tensor([[1 / 3, 1 / math.sqrt(0.75)], [0.0, 1.0]]))


def test_symmetric_adds_the_reverse_temporal_edges():
    # reverse edge: node 1 aggregates from node 0 with weight 1, so d0 = d1 = 1.5
    h = identity_network(symmetric=True).encode(**TWO_NODES)
    torch.testing.assert_close(h, torch.tensor([[1 / 3, 2 / 3], [2 / 3, 1 / 3]]))
    with pytest.raises(ValueError, match="needs edge_type"):
        identity_network(symmetric=True).encode(TWO_NODES["x"], TWO_NODES["edge_index"])


def test_readout_is_sigmoid_of_the_mean_per_graph():
    h = torch.tensor([[1.0, 2.0], [3.0, 4.0], [0.0, 0.0], [-3.0, 3.0], [0.0, 3.0]])
    batch = torch.tensor([0, 0, 1, 1, 1])
    expected = torch.sigmoid(torch.tensor([[2.0, 3.0], [-1.0, 2.0]]))
    torch.testing.assert_close(AnoGraphDGI.readout(h, batch), expected)
    torch.testing.assert_close(AnoGraphDGI.readout(h), torch.sigmoid(h.mean(0, keepdim=True)))


def test_corruption_permutes_rows_within_each_graph():
    x = torch.arange(90.0).reshape(30, 3)
    batch = torch.repeat_interleave(torch.arange(3), torch.tensor([12, 10, 8]))
    corrupted = AnoGraphDGI.corrupt(x, batch, torch.Generator().manual_seed(0))
    for g in range(3):
        rows, shuffled = x[batch == g], corrupted[batch == g]
        assert sorted(shuffled[:, 0].tolist()) == sorted(rows[:, 0].tolist())  # same rows, same graph
        assert not torch.equal(rows, shuffled)
    again = AnoGraphDGI.corrupt(x, batch, torch.Generator().manual_seed(0))
    assert torch.equal(corrupted, again)


def test_loss_is_the_bce_of_eq4():
    torch.manual_seed(0)
    net = AnoGraphDGI(4, hidden=6)
    pos_h, neg_h = torch.randn(5, 6), torch.randn(5, 6)
    batch = torch.tensor([0, 0, 0, 1, 1])
    summary = torch.sigmoid(torch.randn(2, 6))
    pos_logits = torch.stack([pos_h[i] @ net.weight @ summary[batch[i]] for i in range(5)])
    neg_logits = torch.stack([neg_h[i] @ net.weight @ summary[batch[i]] for i in range(5)])
    expected = F.binary_cross_entropy(torch.sigmoid(torch.cat([pos_logits, neg_logits])),
                                      torch.cat([torch.ones(5), torch.zeros(5)]))
    torch.testing.assert_close(net.loss(pos_h, neg_h, summary, batch), expected)


def test_score_is_one_minus_discriminator_against_s_train():
    net = identity_network(symmetric=False)
    h = net.encode(**TWO_NODES)
    with pytest.raises(RuntimeError, match="needs s_train"):
        net.discriminator_score(h)
    net.train_summary.copy_(torch.tensor([0.3, 0.8]))
    expected = 1 - torch.sigmoid(h @ net.weight @ torch.tensor([0.3, 0.8]))
    torch.testing.assert_close(net.discriminator_score(h), expected)
    assert repr(net) == "AnoGraphDGI(in_dim=2, hidden=2, symmetric=False)"


# ====================================================================== training loop
def two_community_graphs(n_graphs: int = 12, seed: int = 0) -> list[Data]:
    """Graphs of two 5-node cliques; nodes of a clique share a feature prototype (+ noise)."""
    rng = np.random.default_rng(seed)
    prototypes = rng.normal(0, 1, (4, 6))
    clique = np.array([(i, j) for i in range(5) for j in range(5)]).T
    edge_index = torch.from_numpy(np.concatenate([clique, clique + 5], axis=1))
    graphs = []
    for _ in range(n_graphs):
        a, b = rng.choice(4, size=2, replace=False)
        x = np.repeat(prototypes[[a, b]], 5, axis=0) + rng.normal(0, 0.1, (10, 6))
        graphs.append(Data(x=torch.tensor(x, dtype=torch.float32), edge_index=edge_index,
                           edge_weight=torch.full((50,), 0.2), num_nodes=10))
    return graphs


def test_train_dgi_decreases_the_loss_and_sets_s_train():
    graphs = two_community_graphs()
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = AnoGraphDGI(6, hidden=16)
    logged = []
    history = train_dgi(net, graphs, epochs=40, lr=0.01, batch_size=4, patience=40, seed=0,
                        progress=False, log=lambda epoch, loss: logged.append((epoch, loss)))
    assert logged == list(enumerate(history))
    assert min(history) < 0.7 * history[0]
    s_train = net.train_summary
    assert s_train.shape == (16,) and bool(((s_train > 0) & (s_train < 1)).all())
    torch.testing.assert_close(s_train, training_summary(net, graphs))
    assert not net.training


def test_train_dgi_early_stopping_restores_the_best_epoch():
    graphs = two_community_graphs(4)
    with torch.random.fork_rng():
        torch.manual_seed(1)
        net = AnoGraphDGI(6, hidden=8)
    history = train_dgi(net, graphs, epochs=200, lr=0.5, batch_size=2, patience=3, seed=0,
                        progress=False)
    best = int(np.argmin(history))
    assert len(history) == best + 4  # stopped 3 epochs after the best one


def test_train_dgi_rejects_bad_graphs():
    net = AnoGraphDGI(6, hidden=4)
    good = two_community_graphs(1)[0]
    with pytest.raises(ValueError, match="at least one graph"):
        train_dgi(net, [], progress=False)
    with pytest.raises(ValueError, match=r"training graph 1: node features x have shape \(3, 2\); expected \[N, 6\]"):
        train_dgi(net, [good, Data(x=torch.zeros(3, 2), edge_index=torch.zeros(2, 0, dtype=torch.long))],
                  progress=False)
    with pytest.raises(ValueError, match="NaN or inf"):
        train_dgi(net, [Data(x=torch.full((2, 6), math.nan), edge_index=torch.zeros(2, 0, dtype=torch.long))],
                  progress=False)
    with pytest.raises(ValueError, match="all training graphs are empty"):
        train_dgi(net, [Data(x=torch.zeros(0, 6), edge_index=torch.zeros(2, 0, dtype=torch.long))],
                  progress=False)
    with pytest.raises(ValueError, match="epochs must be an int >= 1"):
        train_dgi(net, [good], epochs=0, progress=False)


# ====================================================================== estimator: learning
@pytest.mark.parametrize("scoring", ["discriminator", "mahalanobis"])
def test_anograph_flags_anomalous_objects(projection, train_videos, scoring):
    """Objects whose features ignore their place and trajectory score higher than normal ones.

    DGI's discriminator learns to tell a node's real neighbourhood aggregate (itself, the boxes it
    overlaps, its match in the next frame: coherent features) from a corrupted one (a mix of
    unrelated features), and the anomalous objects look like the latter. A sparse graph (edges
    only between overlapping boxes, temporal edge to the best match) gives that signal at this
    tiny scale; the complete graph averages it over the whole frame.
    """
    builder = ObjectGraphBuilder(iou_threshold=0.01, temporal_knn=1)
    model = AnoGraph(hidden=32, epochs=60, lr=0.01, train_window=5, batch_size=8, patience=20,
                     builder=builder, scoring=scoring, progress=False).fit(train_videos)
    rng = np.random.default_rng(7)
    tables = [model.score(make_video(rng, projection, n_anomalous=1), video=f"v{k}") for k in range(3)]
    scores = np.concatenate([t["score"] for t in tables])
    is_anomalous = np.concatenate([t["object_id"] >= 3 for t in tables])  # rows 3+ are anomalous
    assert roc_auc_score(is_anomalous, scores) > 0.8


def test_fit_sets_the_learned_attributes(fitted, train_videos):
    n_objects = sum(len(frame) for video in train_videos for frame in video)
    assert fitted.n_features_in_ == FEATURE_DIM
    assert 1 <= len(fitted.history_) <= 3
    assert fitted.s_train_.shape == (8,)
    assert bool(((fitted.s_train_ > 0) & (fitted.s_train_ < 1)).all())
    assert fitted.train_scores_.count == n_objects
    values = fitted.train_scores_.values
    assert values.shape == (101,) and np.all(np.diff(values) >= 0) and 0 <= values[0] < values[-1]
    # with the paper's score, the training scores are the scores of the training videos, summarised
    paper = tiny_model(scoring="discriminator").fit(train_videos)
    train_scores = np.concatenate([paper.score(video)["score"] for video in train_videos])
    np.testing.assert_allclose(paper.train_scores_.values,
                               np.quantile(train_scores, np.linspace(0, 1, 101)), rtol=1e-6)


def test_mahalanobis_training_quantiles_are_out_of_sample(projection, train_videos):
    """Cross-fitted training distances exceed in-sample ones, and their 95% quantile flags about 5%
    of the objects of a new normal video, where in-sample distances would flag far more."""
    model = tiny_model(hidden=32, epochs=5).fit(train_videos)
    in_sample = np.concatenate([model.score(video)["score"] for video in train_videos])
    assert model.train_scores_.quantile(0.5) > np.median(in_sample)
    new_normal = make_video(np.random.default_rng(11), projection, n_frames=60)
    scores = model.score(new_normal)["score"]
    assert np.mean(scores > model.train_scores_.quantile(0.95)) < 0.2
    assert np.mean(scores > np.quantile(in_sample, 0.95)) > np.mean(
        scores > model.train_scores_.quantile(0.95))


def test_cross_fitted_scores_hand_cases():
    rng = np.random.default_rng(0)
    a, b = (torch.from_numpy(rng.normal(0, 1, shape)) for shape in ((50, 3), (40, 3)))
    got = cross_fitted_scores([a, b])  # fold 0 = video a, scored with b's density
    assert got.shape == (90,) and got.dtype == torch.float64
    torch.testing.assert_close(got[:50], MahalanobisDensity().fit(b).score(a))
    both = torch.cat([a, b])
    single = cross_fitted_scores([both])  # one video: its two halves
    torch.testing.assert_close(single[:45], MahalanobisDensity().fit(both[45:]).score(both[:45]))
    assert cross_fitted_scores([a[:3]]).shape == (3,)  # too few to hold out: in-sample


def test_fit_accepts_a_single_video(train_videos):
    model = tiny_model(epochs=1).fit(train_videos[0])
    assert model.train_scores_.count == sum(len(frame) for frame in train_videos[0])


def test_same_seed_same_model_other_seed_other_model(train_videos, test_video):
    first = tiny_model(seed=3).fit(train_videos[:2])
    second = tiny_model(seed=3).fit(train_videos[:2])
    other = tiny_model(seed=4).fit(train_videos[:2])
    assert first.history_ == second.history_
    np.testing.assert_array_equal(first.score(test_video)["score"], second.score(test_video)["score"])
    assert not np.allclose(first.score(test_video)["score"], other.score(test_video)["score"])


# ====================================================================== estimator: windows
@pytest.mark.parametrize("symmetric", [False, True])
def test_window_scores_equal_whole_video_scores_from_radius_2(train_videos, test_video, symmetric):
    rng = np.random.default_rng(5)
    video = [frame.with_features(rng.normal(0, 1, (len(frame), FEATURE_DIM))) for frame in test_video]
    model = tiny_model(symmetric=symmetric).fit(train_videos[:2])
    whole = model.score(video)["score"]
    for radius in (2, 3, 7):
        model.window_radius = radius
        windows = model.score(video, exact_windows=True)["score"]
        np.testing.assert_allclose(windows, whole, rtol=0, atol=1e-6)
    for chunk_frames in (1, 4):
        np.testing.assert_allclose(model.score(video, chunk_frames=chunk_frames)["score"], whole,
                                   rtol=0, atol=1e-6)
    # radius 1 cuts the temporal edges of frame t+1, which changes the degrees: not exact
    model.window_radius = 1
    assert np.abs(model.score(video)["score"] - whole).max() > 1e-4


def test_fps_sets_the_default_radius(fitted, test_video):
    radius_one = copy.deepcopy(fitted)
    radius_one.window_radius = 1
    by_fps = fitted.score(test_video, fps=1.0)["score"]  # window_radius None: 1 s = 1 frame
    np.testing.assert_array_equal(by_fps, radius_one.score(test_video)["score"])
    np.testing.assert_array_equal(fitted.score(test_video, fps=25)["score"],
                                  fitted.score(test_video)["score"])
    with pytest.raises(ValueError, match="fps must be a positive number"):
        fitted.score(test_video, fps=0)


def test_score_table_rows_and_frames_without_objects(fitted, test_video):
    table = fitted.score(test_video, video="cam1")
    assert len(table) == sum(len(frame) for frame in test_video)
    assert 5 not in table["frame"]  # the empty frame has no rows...
    np.testing.assert_array_equal(table.video_frames["cam1"], np.arange(16))  # ...but is registered
    assert table["object_id"][table["frame"] == 9].tolist() == [0]
    np.testing.assert_allclose(table["x1"][table["frame"] == 0], test_video[0].boxes[:, 0])
    assert bool((table["score"] >= 0).all()) and np.isfinite(table["score"]).all()
    paper = copy.deepcopy(fitted)
    paper.scoring = "discriminator"  # Eq. 5 scores are probabilities
    assert bool(((paper.score(test_video)["score"] > 0) & (paper.score(test_video)["score"] < 1)).all())


def test_score_graph_matches_score(fitted, test_video):
    graph = fitted.graph_builder().build(test_video)
    assert fitted.graph_builder().temporal_knn == 3  # the default sparse graph
    scores = fitted.score_graph(graph)
    assert scores.shape == (graph.num_nodes,) and scores.dtype == torch.float32
    np.testing.assert_allclose(scores.numpy(), fitted.score(test_video)["score"], atol=1e-6)


# ====================================================================== estimator: persistence
def test_save_load_gives_identical_scores(fitted, test_video, tmp_path: Path):
    fitted = copy.deepcopy(fitted)
    fitted.builder = ObjectGraphBuilder(temporal_knn=2)
    expected = fitted.score(test_video)["score"]
    directory = fitted.save(tmp_path / "anograph")
    config = json.loads((directory / CONFIG_FILE).read_text())
    assert config["params"]["hidden"] == 8
    assert config["params"]["builder"]["params"]["temporal_knn"] == 2
    assert config["fitted"]["n_features_in"] == FEATURE_DIM
    assert (directory / STATE_FILE).is_file()
    loaded = AnoGraph.load(directory)
    assert loaded.builder.temporal_knn == 2
    np.testing.assert_array_equal(loaded.score(test_video)["score"], expected)
    np.testing.assert_array_equal(loaded.train_scores_.values, fitted.train_scores_.values)
    assert loaded.history_ == fitted.history_
    torch.testing.assert_close(loaded.s_train_, fitted.s_train_)


def test_load_without_config_is_a_clear_error(fitted, tmp_path: Path):
    directory = fitted.save(tmp_path / "m")
    (directory / CONFIG_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="not a saved AnoGraph: config.json is missing"):
        AnoGraph.load(directory)


# ====================================================================== estimator: errors
def test_use_before_fit_raises_not_fitted(test_video, tmp_path: Path):
    model = AnoGraph()
    with pytest.raises(NotFittedError, match=r"call AnoGraph.fit\(...\) or AnoGraph.load"):
        model.score(test_video)
    with pytest.raises(NotFittedError):
        model.save(tmp_path)
    with pytest.raises(NotFittedError):
        model.s_train_


def test_feature_errors_name_expected_and_got(fitted, test_video):
    narrow = [frame.with_features(frame.features[:, :5]) if len(frame) else frame for frame in test_video]
    with pytest.raises(ValueError, match="frame 0 .* features of width 5; expected 16"):
        fitted.score(narrow)
    bare = list(test_video)
    bare[3] = Detections(test_video[3].boxes, test_video[3].scores, test_video[3].labels, frame_index=3)
    with pytest.raises(ValueError, match=r"frame 3 \(position 3\) has 4 objects but no features"):
        fitted.score(bare)
    with pytest.raises(ValueError, match=r"shape \(2, 3\); expected \[N, 16\]"):
        fitted.score_graph(Data(x=torch.zeros(2, 3), edge_index=torch.zeros(2, 0, dtype=torch.long)))
    with pytest.raises(ValueError, match="non-empty sequence of Detections"):
        fitted.score([])


def test_fit_input_errors(train_videos):
    with pytest.raises(TypeError, match="got a single Detections"):
        tiny_model().fit(train_videos[0][0])
    with pytest.raises(ValueError, match="at least one video"):
        tiny_model().fit([])
    empty_video = [Detections.empty(frame_index=t) for t in range(3)]
    with pytest.raises(ValueError, match="contain no objects"):
        tiny_model().fit([empty_video])
    with pytest.raises(ValueError, match="hidden must be an int >= 1"):
        tiny_model(hidden=0).fit(train_videos)
    with pytest.raises(TypeError, match="builder must be a graph builder"):
        tiny_model(builder="complete").fit(train_videos)


def test_params_are_json_and_repr_is_one_line():
    model = AnoGraph(hidden=64, builder=ObjectGraphBuilder(temporal_knn=3))
    params = model.get_params()
    assert json.loads(json.dumps(params)) == params
    assert params["builder"] == {"kind": "builder", "class": "ObjectGraphBuilder",
                                 "params": ObjectGraphBuilder(temporal_knn=3).get_params()}
    assert AnoGraph._from_params(params).get_params() == params
    assert repr(AnoGraph(hidden=64)) == "AnoGraph(hidden=64)"
    assert "\n" not in repr(model)


# ====================================================================== scoring options
def test_feature_scaling_standardises_inside_the_encoder():
    net = AnoGraphDGI(2, hidden=3)
    x = torch.tensor([[1.0, 10.0], [3.0, 30.0]])
    edge_index = torch.tensor([[0, 1], [1, 0]])
    mean, scale = torch.tensor([2.0, 20.0]), torch.tensor([1.0, 10.0])
    expected = net.encode((x - mean) / scale, edge_index)
    net.set_feature_scaling(mean, scale)
    torch.testing.assert_close(net.encode(x, edge_index), expected)
    net.set_feature_scaling(mean, torch.tensor([0.0, float("nan")]))  # constant features: scale 1
    torch.testing.assert_close(net.feature_scale, torch.ones(2))
    with pytest.raises(ValueError, match="needs 2 values"):
        net.set_feature_scaling(torch.zeros(3), torch.ones(3))


def test_mahalanobis_score_is_the_distance_to_the_training_embeddings():
    with pytest.raises(ValueError, match="at least 2 embeddings"):
        MahalanobisDensity().fit(torch.zeros(1, 2))
    train = torch.from_numpy(np.random.default_rng(0).normal([1.0, -2.0], [1.0, 3.0], (500, 2)))
    density = MahalanobisDensity().fit(train)
    h = torch.tensor([[1.0, -2.0], [4.0, -2.0], [1.0, 7.0]])
    centred = h.double() - density.mean_
    expected = torch.sqrt(torch.einsum("ni,ij,nj->n", centred, density.precision_, centred))
    got = density.score(h)
    assert got.dtype == torch.float32  # computed in the input's dtype
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-6)
    # 3 standard deviations along either axis are about equally far; the centre is closest
    assert got[0] < 0.2 and abs(float(got[1] - got[2])) < 0.5 and 2.5 < float(got[1]) < 3.5
    again = MahalanobisDensity.from_state(density.state_dict())
    torch.testing.assert_close(again.score(h), got)


def test_mahalanobis_and_standardize_round_trip_and_window_exactness(train_videos, test_video,
                                                                      tmp_path: Path):
    model = tiny_model(scoring="mahalanobis", standardize=True).fit(train_videos[:2])
    whole = model.score(test_video)["score"]
    assert np.all(whole >= 0) and np.isfinite(whole).all()
    model.window_radius = 3
    np.testing.assert_allclose(model.score(test_video, exact_windows=True)["score"], whole,
                               rtol=0, atol=1e-5)
    loaded = AnoGraph.load(model.save(tmp_path / "m"))
    assert loaded.scoring == "mahalanobis" and loaded.standardize
    np.testing.assert_array_equal(loaded.score(test_video)["score"], model.score(test_video)["score"])
    np.testing.assert_array_equal(loaded.train_scores_.values, model.train_scores_.values)


def test_unknown_scoring_is_rejected_before_training(train_videos):
    with pytest.raises(ValueError, match="scoring must be one of"):
        tiny_model(scoring="nope").fit(train_videos)
