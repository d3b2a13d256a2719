"""Ano-Graph: Deep Graph Infomax on the object spatio-temporal graph (paper Sec. 3, 3.1, 4.1).

The estimator :class:`AnoGraph` (``consumes = "detections"``): ``fit(videos)`` on per-frame
:class:`~detectors.base.Detections` with features, ``score(detections) -> ScoreTable`` with one
row per object, ``stream_scorer()`` for live use, ``save``/``load``. Its parts live along the data
flow, one job per file:

- the network, :class:`stgraph.nn.dgi.AnoGraphDGI` (GCN encoder, readout, discriminator, Eq. 3-5);
- its training loop, :func:`stgraph.models.dgi_training.train_dgi`;
- the scores of embeddings, :mod:`stgraph.models.density` (the Mahalanobis distance, the
  default, fitted outside the network);
- the graph, :class:`stgraph.graphs.ObjectGraphBuilder` (sparse by default, see
  :data:`SPARSE_GRAPH`).

Test-time windows, and why one pass over the whole video is exact
-----------------------------------------------------------------
The paper scores frame ``t`` on the graph of frames ``t-i .. t+i`` (Sec. 4.1). With a 1-layer GCN
and the training summary ``s_train`` fixed, the score of node ``v`` depends on ``h_v`` only::

    h_v = PReLU( sum_{u in N(v)}  a_vu / sqrt(d_v d_u) · x_u Θ + b ),    d_v = sum_u a_vu

(``a_vu``: builder weight of "v aggregates from u", self loop included; ``d``: weighted in-degree;
this is PyG's ``gcn_norm``). So ``h_v`` depends on its neighbours' features, the weights of the
edges into ``v``, and the *degrees of its neighbours*. The builder links a frame only to itself and
to the next frame, and the edges out of frame ``t`` depend only on frames ``t`` and ``t+1``. For
``v`` in frame ``t``:

- its neighbours lie in frames ``t, t+1`` (and ``t-1`` when ``symmetric``);
- a neighbour in frame ``t+1`` has a degree that depends on frame ``t+2`` (and one in ``t-1`` on
  frame ``t-2`` when ``symmetric``).

So everything that enters ``h_v`` lies in frames ``t-2 .. t+2``. A window that holds them (radius
``i >= 2``; near the ends of the video, window and video stop at the same frame) gives frame
``t``'s nodes exactly the embeddings they have in the graph of the whole video, and ``i`` does not
change the scores at all (the paper observes that the method "is not sensitive to a specific
value of i"; here that holds exactly). A radius of 1 is not enough: the window cuts the
temporal edges of frame ``t+1``, which changes that frame's degrees.

For ``i >= EXACT_RADIUS = 2``, :meth:`AnoGraph.score` therefore scores every frame in one pass over
the whole-video graph. It builds the graph in chunks of frames with a 2-frame halo on each side, to
bound memory. For ``i < 2``, or with ``exact_windows=True``, it builds every window with
:class:`~stgraph.graphs.window.CentredWindows`, the loop a live stream uses.
"""
from __future__ import annotations

import logging
import math
from typing import Any, Callable, ClassVar, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor
import stgraph._pyg  # noqa: F401  (imports torch_geometric without torch's jit.script notice)
from torch_geometric.data import Data
from tqdm.auto import tqdm

from detectors.base import Detections
from stgraph.graphs.object_graph import ObjectGraphBuilder
from stgraph.distributed import Distributed
from stgraph.graphs.window import CentredWindows
from stgraph.models.base import (
    BaseEstimator, ModelFileError, ScoreQuantiles, check_int, check_labels, check_seed,
    resolve_device, seeded,
)
from stgraph.models.density import DENSITIES, cross_fitted_scores, make_density
from stgraph.models.dgi_training import check_graph_features, graph_inputs, train_dgi
from stgraph.nn.dgi import AnoGraphDGI
from stgraph.registry import register
from stgraph.scores import ScoreTable

__all__ = ["AnoGraph", "AnoGraphDGI", "train_dgi", "EXACT_RADIUS", "SCORINGS", "SPARSE_GRAPH",
           "frame_with_features", "with_features", "DEFAULT_WINDOW_RADIUS"]

logger = logging.getLogger(__name__)

#: Smallest window radius (frames) for which a window gives its centre frame the same scores as
#: the whole-video graph (see the module docstring).
EXACT_RADIUS = 2
#: Window radius (frames) used when neither ``window_radius`` nor ``fps`` is given.
DEFAULT_WINDOW_RADIUS = 10
#: Frames per graph in the whole-video scoring pass (bounds memory, does not change scores).
DEFAULT_CHUNK_FRAMES = 1000
#: Builder settings of :class:`AnoGraph`'s default graph (see its ``builder`` argument).
SPARSE_GRAPH = {"iou_threshold": 0.01, "temporal_knn": 3}
#: Object scores an :class:`AnoGraph` can give. ``"discriminator"``: the paper's Eq. 5,
#: ``1 - D(h, s_train)``. The others are densities of :mod:`stgraph.models.density` fitted on the
#: training objects' embeddings; ``"mahalanobis"`` (mean and Ledoit-Wolf covariance) flags
#: embeddings that are unusual in any direction, not only along the discriminator's ``W s_train``.
SCORINGS: tuple[str, ...] = ("discriminator", *DENSITIES)


# ====================================================================== inputs
def _as_videos(videos: Sequence[Sequence[Detections]] | Sequence[Detections]
               ) -> list[list[Detections]]:
    """Normalise ``fit``'s input (one video or several) to a list of videos (lists of frames)."""
    if isinstance(videos, Detections):
        raise TypeError("fit expects a video (a sequence of Detections, one per frame) or a list "
                        "of videos, got a single Detections")
    videos = list(videos)
    if not videos:
        raise ValueError("fit needs at least one video")
    if all(isinstance(frame, Detections) for frame in videos):
        return [videos]
    out = []
    for k, video in enumerate(videos):
        frames = list(video) if isinstance(video, Sequence) else []
        if not frames or not all(isinstance(frame, Detections) for frame in frames):
            raise TypeError(f"video {k}: expected a non-empty sequence of Detections (one per "
                            f"frame), got {type(video).__name__}")
        out.append(frames)
    return out


def _feature_width(videos: Sequence[Sequence[Detections]]) -> int:
    """Width D of the node features: that of the first frame with objects."""
    for frame in (f for video in videos for f in video if len(f)):
        if frame.features is None:
            raise ValueError(f"frame {frame.frame_index} has {len(frame)} objects but no features; "
                             "attach them with stgraph.features.annotate_features")
        return int(frame.features.shape[1])
    raise ValueError("the training videos contain no objects: nothing to learn from")


def with_features(frames: Sequence[Detections], width: int, where: str) -> list[Detections]:
    """``frames`` with features of width ``width`` everywhere (frames without objects: [0, D])."""
    return [frame_with_features(frame, width,
                                f"{where}: frame {frame.frame_index} (position {position})")
            for position, frame in enumerate(frames)]


def frame_with_features(frame: Detections, width: int, name: str) -> Detections:
    """``frame`` with features [N, width] (a frame without objects and features gets [0, width]).

    Raises ValueError, naming the frame as ``name``, when it has objects but no features or
    features of another width.
    """
    if frame.features is None:
        if len(frame):
            raise ValueError(f"{name} has {len(frame)} objects but no features; attach them "
                             "with stgraph.features.annotate_features")
        return frame.with_features(np.zeros((0, width), np.float32))
    if frame.features.shape[1] != width:
        raise ValueError(f"{name} has features of width {frame.features.shape[1]}; expected "
                         f"{width} (the width the model was fitted with)")
    return frame


def _feature_moments(graphs: Sequence[Data], width: int,
                     world: Distributed | None = None) -> tuple[Tensor, Tensor]:
    """Mean [D] and standard deviation [D] of the node features of ``graphs`` (float64 sums,
    all-reduced over the processes of ``world``)."""
    total = torch.zeros(width, dtype=torch.float64)
    squares = torch.zeros(width, dtype=torch.float64)
    count = 0
    for graph in graphs:
        x = graph.x.to(torch.float64)
        total += x.sum(dim=0)
        squares += (x * x).sum(dim=0)
        count += x.size(0)
    if world is not None:
        total, squares, count = world.sum_tensor(total), world.sum_tensor(squares), \
            world.sum_int(count)
    mean = total / max(count, 1)
    variance = (squares / max(count, 1) - mean * mean).clamp_min(0)
    return mean.float(), variance.sqrt().float()


def _gathered(per_video: list[Tensor], world: Distributed | None) -> list[Tensor]:
    """``per_video`` tensors of every process, in rank order (this process's alone without
    ``world``)."""
    if world is None:
        return per_video
    return [torch.from_numpy(array) for part in world.gather_objects(
        [t.cpu().numpy() for t in per_video]) for array in part]


def _on_device(tensor: Tensor, device: torch.device) -> bool:
    """Whether ``tensor`` lives on ``device`` (``"cuda"`` without an index: any CUDA device)."""
    return tensor.device.type == device.type and device.index in (None, tensor.device.index)


def _split_by_frame(values: np.ndarray, counts: Sequence[int]) -> list[np.ndarray]:
    """Split node values [N] (nodes ordered by frame) into one array [N_t] per frame."""
    return np.split(values, np.cumsum(counts)[:-1])



# ====================================================================== estimator
@register("model", "anograph")
class AnoGraph(BaseEstimator):
    """Ano-Graph video anomaly detector: DGI on the object spatio-temporal graph.

    Example::

        model = AnoGraph().fit(train_videos)     # list of videos, each list[Detections]
        table = model.score(test_detections, video="01", fps=25)
        alarm = table["score"] > model.threshold_
        model.save("anograph/");  AnoGraph.load("anograph/")

    Args:
        hidden: embedding width H (see :class:`~stgraph.nn.dgi.AnoGraphDGI`).
        window_radius: test window radius i in frames: frame t is scored on frames t-i .. t+i.
            None: ``round(fps)`` (1 s, as in the paper) when ``score`` is given ``fps``, else 10.
            Every i >= 2 gives the same scores (see the module docstring).
        train_window: frames per training window. The paper trains on the graph of all training
            frames concatenated; consecutive non-overlapping windows of each video are its
            mini-batch form. Frames of different videos are never linked.
        builder: the :class:`~stgraph.graphs.object_graph.ObjectGraphBuilder`. None: the sparse
            graph of :data:`SPARSE_GRAPH` (spatial edges between overlapping boxes, temporal edges
            to the 3 most similar objects of the next frame). ``ObjectGraphBuilder()`` is the
            paper's complete graph; on UCSD Ped2 it scored 87.4 micro AUC against 89.4 sparse and
            trained 3x slower, and on synthetic scenes it spreads one object's anomaly over every
            object of its frame.
        epochs, lr, batch_size, patience: see :func:`~stgraph.models.dgi_training.train_dgi`
            (``batch_size`` counts windows). Default 30 epochs: on UCSD Ped2, 1, 5, 30 and 100
            epochs gave micro AUC 89.45, 89.42, 89.41, 89.41 (benchmarks/ped2_anograph.py).
        symmetric: add reverse temporal edges (see :class:`~stgraph.nn.dgi.AnoGraphDGI`).
        scoring: the object score, one of :data:`SCORINGS`. Default ``"mahalanobis"``: the
            distance of the object's DGI embedding to the training objects' embeddings.
            ``"discriminator"`` is the paper's Eq. 5, ``1 - D(h, s_train)``: it reads the
            embedding along the single direction ``W s_train``, so anomalies that land on the
            "too normal" side score lowest. Measured on seeded synthetic scenes and on UCSD Ped2
            (README, benchmarks/ped2_anograph.py) it varied from below chance to good with the
            seed, while the Mahalanobis score was stable and better.
        standardize: standardise every node feature with the mean and standard deviation of the
            training objects before the GCN (the graph's edges still use the raw features).
            Features of different kinds (box geometry in image fractions, CNN activations,
            class scores) then weigh alike; without it, small-valued features such as velocities
            are nearly invisible to the encoder.
        seed: seeds the weight initialisation, the shuffling and the corruption.
        device: "cpu", "cuda", ...
        progress: show tqdm progress bars.

    Data-parallel training: launched by ``torchrun`` (``torch.distributed`` initialised, e.g. by
    :func:`stgraph.distributed.init_from_env`), each process calls ``fit`` on its own videos.
    The feature scaling and the epoch losses are all-reduced, the gradients summed
    (:func:`~stgraph.models.dgi_training.train_dgi`), ``s_train`` all-reduced, and every
    process's training embeddings (or discriminator scores) gathered, so the density and the
    training-score quantiles, hence the scores, are the same in every process.

    Learned attributes: ``model_`` (:class:`~stgraph.nn.dgi.AnoGraphDGI`), ``density_`` (the
    fitted :mod:`~stgraph.models.density` of the training embeddings; None with
    ``scoring="discriminator"``), ``s_train_`` [H] (training summary), ``n_features_in_`` (D),
    ``history_`` (loss per epoch), and ``train_scores_``: the
    :class:`~stgraph.models.base.ScoreQuantiles` of the training objects' scores, for alarm
    thresholds (``threshold_``), computed as test scores are, except that density scores are
    cross-fitted (:func:`~stgraph.models.density.cross_fitted_scores`), so that a quantile of
    them is a false-alarm rate on new normal footage, not on the objects the density was fitted
    to.
    """

    consumes: ClassVar[str] = "detections"
    supervision: ClassVar[str] = "none"
    streams_exactly: ClassVar[bool] = True
    #: ``fit`` trains data-parallel under ``torch.distributed`` (launched by torchrun): each process
    #: fits on its own videos and every process ends with the same model (stgraph.distributed).
    data_parallel: ClassVar[bool] = True
    fitted_attributes = ("model_", "density_", "n_features_in_", "history_", "train_scores_")
    #: 2: edges in PyG order and the density saved apart from the network (stgraph 0.2).
    format_version = 2

    def __init__(self, hidden: int = 256, window_radius: int | None = None,
                 train_window: int = 21, builder: ObjectGraphBuilder | None = None,
                 epochs: int = 30, lr: float = 1e-3, batch_size: int = 64, patience: int = 10,
                 symmetric: bool = False, scoring: str = "mahalanobis",
                 standardize: bool = True, seed: int = 0, device: str = "cpu",
                 progress: bool = True) -> None:
        self.hidden = hidden
        self.window_radius = window_radius
        self.train_window = train_window
        self.builder = builder
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.patience = patience
        self.symmetric = symmetric
        self.scoring = scoring
        self.standardize = standardize
        self.seed = seed
        self.device = device
        self.progress = progress

    @classmethod
    def contract_params(cls) -> dict[str, Any]:
        return {"hidden": 16, "epochs": 2, "train_window": 5, "batch_size": 8, "progress": False}

    # ------------------------------------------------------------------ helpers
    def _check_params(self) -> None:
        """Validate the settings train_dgi does not check itself."""
        check_int("hidden", self.hidden, 1)
        if self.window_radius is not None:
            check_int("window_radius", self.window_radius, 0)
        check_int("train_window", self.train_window, 1)
        if self.scoring not in SCORINGS:
            raise ValueError(f"scoring must be one of {SCORINGS}, got {self.scoring!r}")
        for name in ("symmetric", "standardize"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.builder is not None and not callable(getattr(self.builder, "build", None)):
            raise TypeError("builder must be a graph builder with build(frames), got "
                            f"{type(self.builder).__name__}")
        check_seed(self.seed)
        resolve_device(self.device)

    def graph_builder(self) -> ObjectGraphBuilder:
        """The builder of this model's graphs: ``builder``, or the default sparse one."""
        return self.builder if self.builder is not None else ObjectGraphBuilder(**SPARSE_GRAPH)

    def window_radius_for(self, fps: float | None = None) -> int:
        """Window radius in frames: ``window_radius``, else 1 s at ``fps``, else 10."""
        if self.window_radius is not None:
            return check_int("window_radius", self.window_radius, 0)
        if fps is None:
            return DEFAULT_WINDOW_RADIUS
        if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be a positive number, got {fps!r}")
        return round(fps)

    @property
    def s_train_(self) -> Tensor:
        """Training summary s_train [H] (Eq. 3 over all training nodes), used by Eq. 5."""
        self.check_is_fitted("reading s_train_")
        return self.model_.train_summary

    # ------------------------------------------------------------------ fit
    def fit(self, X: Sequence[Sequence[Detections]] | Sequence[Detections],
            y: Any = None) -> "AnoGraph":
        """Train on normal videos; returns self.

        Args:
            X: a list of videos (or one video). A video is the list of its per-frame
                ``Detections`` in time order, each with ``features`` [N_t, D] (frames without
                objects may omit them).
            y: None, or one label per video that must all be 0: Ano-Graph learns from normal
                videos only.

        The learned attributes are set together at the end: a fit that fails leaves a
        previously fitted model as it was.
        """
        self._check_params()
        videos = _as_videos(X)
        labels = check_labels(y, len(videos))
        if labels is not None and labels.any():
            raise ValueError("AnoGraph learns from normal videos only; y marks videos "
                             f"{np.flatnonzero(labels).tolist()} as abnormal")
        width = _feature_width(videos)
        videos = [with_features(video, width, f"training video {k}")
                  for k, video in enumerate(videos)]
        builder = self.graph_builder()
        windows = [builder.build(video[start:start + self.train_window])
                   for video in videos for start in range(0, len(video), self.train_window)]
        with seeded(self.seed):
            network = AnoGraphDGI(width, self.hidden, self.symmetric)
        world = Distributed.current()
        if self.standardize:
            network.set_feature_scaling(*_feature_moments(windows, width, world))
        history = train_dgi(network, windows, epochs=self.epochs, lr=self.lr,
                            batch_size=self.batch_size, patience=self.patience, seed=self.seed,
                            device=self.device, progress=self.progress)
        network.eval()
        density = None
        if self.scoring == "discriminator":
            train_scores = [torch.as_tensor(np.concatenate(self._whole_video_values(
                video, DEFAULT_CHUNK_FRAMES, builder,
                lambda g: network.discriminator_score(self._embed(network, g)))))
                for video in videos]
            train_scores = torch.cat(_gathered(train_scores, world))
        else:
            embeddings = [torch.as_tensor(np.concatenate(self._whole_video_values(
                video, DEFAULT_CHUNK_FRAMES, builder, lambda g: self._embed(network, g))))
                for video in videos]
            # Under torch.distributed every process gets every video's embeddings, so the
            # density (mean, covariance) and the cross-fitted quantiles are the same everywhere.
            embeddings = _gathered(embeddings, world)
            density = make_density(self.scoring).fit(torch.cat(embeddings))
            train_scores = cross_fitted_scores(embeddings, lambda: make_density(self.scoring))
        quantiles = ScoreQuantiles.from_scores(train_scores.numpy())
        self.model_, self.density_ = network, density
        self.n_features_in_, self.history_ = width, history
        self.train_scores_ = quantiles
        return self

    # ------------------------------------------------------------------ score
    def _embed(self, network: AnoGraphDGI, data: Data) -> Tensor:
        """Embeddings h [N, H] (CPU) of a graph, with ``network`` on the model's device."""
        if data.num_nodes == 0:
            return torch.zeros(0, network.hidden)
        device = resolve_device(self.device)
        if network.feature_mean.device.type != device.type:
            network.to(device)
        with torch.no_grad():
            inputs = tuple(t if t is None else t.to(device) for t in graph_inputs(data))
            return network.encode(*inputs).cpu()

    def embed_graph(self, data: Data) -> Tensor:
        """Embeddings h [N, H] (float32, CPU) of every node of a graph built by the builder."""
        self.check_is_fitted("embed_graph")
        check_graph_features(data, self.n_features_in_, "embed_graph")
        return self._embed(self.model_, data)

    def score_embeddings(self, h: Tensor) -> Tensor:
        """Object scores [K] of embeddings h [K, H] (on any device): the density's score, or
        Eq. 5 with ``scoring="discriminator"``. Higher = more abnormal."""
        self.check_is_fitted("score_embeddings")
        with torch.no_grad():
            if self.scoring == "discriminator":
                return self.model_.discriminator_score(h.to(self.model_.train_summary.device))
            if not isinstance(self.density_, DENSITIES.get(self.scoring, ())):
                raise ValueError(f"scoring={self.scoring!r} was set after fit (the model holds "
                                 f"{type(self.density_).__name__}); fit again to use it")
            return self.density_.score(h)

    def score_graph(self, data: Data) -> Tensor:
        """Anomaly score [N] (float32, CPU) of every node of a graph built by the builder."""
        self.check_is_fitted("score_graph")
        check_graph_features(data, self.n_features_in_, "score_graph")
        return self._node_scores(data)

    def _node_scores(self, data: Data) -> Tensor:
        if data.num_nodes == 0:
            return torch.zeros(0)
        return self.score_embeddings(self._embed(self.model_, data)).float().cpu()

    def score(self, X: Sequence[Detections], video: str = "video", *,
              fps: float | None = None, exact_windows: bool = False,
              chunk_frames: int = DEFAULT_CHUNK_FRAMES) -> ScoreTable:
        """Score every object of one video; returns a :class:`~stgraph.scores.ScoreTable`.

        Frame t's objects are scored on the graph of frames t-i .. t+i (i = the window radius,
        see ``window_radius``), with the model's score (``scoring``). Frames without objects give
        no rows but are registered in the table's ``video_frames``.

        Args:
            X: the video's per-frame ``Detections`` in time order, with ``features``.
            video: the video's name in the table.
            fps: frame rate, for the default radius (1 s) when ``window_radius`` is None.
            exact_windows: build every window as a live stream does
                (:class:`~stgraph.graphs.window.CentredWindows`) instead of one whole-video pass.
                The scores are the same when i >= 2.
            chunk_frames: frames per graph in the whole-video pass; bounds memory and does not
                change the scores.
        """
        self.check_is_fitted("score")
        if isinstance(X, Detections) or len(X) == 0:
            raise ValueError("score expects a non-empty sequence of Detections, one per frame")
        check_int("chunk_frames", chunk_frames, 1)
        frames = with_features(X, self.n_features_in_, f"video {video!r}")
        radius = self.window_radius_for(fps)
        if exact_windows or radius < EXACT_RADIUS:
            scores = self._window_scores(frames, radius)
        else:
            scores = self._whole_video_values(frames, chunk_frames, self.graph_builder(),
                                              self._node_scores)
        return ScoreTable.from_detections(video, frames, scores)

    def stream_scorer(self, fps: float | None = None, radius: int | None = None,
                      explain_top_k: int = 0) -> Any:
        """A :class:`stgraph.stream.GraphStreamScorer` for this model (scores equal :meth:`score`'s).

        Args:
            fps: frame rate, for the default radius.
            radius: window radius = latency in frames (default: :meth:`window_radius_for`).
            explain_top_k: also explain each object's score by its ``explain_top_k`` strongest
                edges (:func:`stgraph.explain.explain_nodes`); 0: off.
        """
        from stgraph.stream import GraphStreamScorer

        return GraphStreamScorer(self, radius=radius, fps=fps, explain_top_k=explain_top_k)

    def _whole_video_values(self, frames: Sequence[Detections], chunk_frames: int,
                            builder: Any, node_values: Callable[[Data], Tensor]
                            ) -> list[np.ndarray]:
        """Per-frame node values [N_t, ...] (scores or embeddings) from the whole-video graph.

        The graph is built in chunks of ``chunk_frames`` frames plus an ``EXACT_RADIUS``-frame
        halo on each side; each chunk keeps the values of its own frames only.
        """
        n_frames = len(frames)
        out: list[np.ndarray] = []
        starts = range(0, n_frames, chunk_frames)
        for start in tqdm(starts, desc="score (video graph)", unit="chunk",
                          disable=not self.progress or len(starts) < 2):
            stop = min(n_frames, start + chunk_frames)
            lo, hi = max(0, start - EXACT_RADIUS), min(n_frames, stop + EXACT_RADIUS)
            with torch.no_grad():
                values = node_values(builder.build(frames[lo:hi])).numpy()
            per_frame = _split_by_frame(values, [len(f) for f in frames[lo:hi]])
            out.extend(per_frame[start - lo:stop - lo])
        return out

    def _window_scores(self, frames: Sequence[Detections], radius: int) -> list[np.ndarray]:
        """Per-frame scores [N_t], each frame t scored on its own window t-radius .. t+radius
        (:class:`~stgraph.graphs.window.CentredWindows`, as a live stream does)."""
        windows = CentredWindows(self.graph_builder(), radius, self.n_features_in_)
        released = []
        for frame in tqdm(frames, desc="score (windows)", unit="frame",
                          disable=not self.progress):
            released += windows.push(frame)
        released += windows.flush()
        return [self._node_scores(item.graph)[item.rows].numpy() for item in released]

    # ------------------------------------------------------------------ persistence
    def _fitted_config(self) -> dict[str, Any]:
        return {"n_features_in": self.n_features_in_, "history": self.history_,
                "train_score_count": self.train_scores_.count}

    def _fitted_state(self) -> dict[str, Tensor]:
        state = {f"net.{name}": value.detach().cpu()
                 for name, value in self.model_.state_dict().items()}
        if self.density_ is not None:
            state.update({f"density.{name}": value.detach().cpu()
                          for name, value in self.density_.state_dict().items()})
        state["train_score_quantiles"] = torch.from_numpy(self.train_scores_.values)
        return state

    def _restore(self, fitted_config: Mapping[str, Any], state: Mapping[str, Tensor]) -> None:
        n_features = int(fitted_config["n_features_in"])
        history = [float(v) for v in fitted_config["history"]]
        train_scores = ScoreQuantiles(state["train_score_quantiles"].numpy(),
                                      int(fitted_config["train_score_count"]))
        network = AnoGraphDGI(n_features, self.hidden, self.symmetric)
        net_state = {name.removeprefix("net."): value for name, value in state.items()
                     if name.startswith("net.")}
        density_state = {name.removeprefix("density."): value for name, value in state.items()
                         if name.startswith("density.")}
        try:
            network.load_state_dict(net_state)
            density = (None if self.scoring == "discriminator"
                       else DENSITIES[self.scoring].from_state(density_state))
        except (RuntimeError, KeyError, ValueError) as exc:
            raise ModelFileError(f"saved AnoGraph weights do not match its config: {exc}") from exc
        self.model_ = network.to(resolve_device(self.device)).eval()
        self.density_ = density
        self.n_features_in_, self.history_, self.train_scores_ = n_features, history, train_scores
