"""Ano-Graph: Deep Graph Infomax on the object spatio-temporal graph (paper Sec. 3, 3.1, 4.1).

Three layers, each usable alone:

- :class:`AnoGraphDGI`, the network: 1-layer GCN encoder with PReLU, readout
  ``R(H) = sigmoid(mean_i h_i)`` (Eq. 3), bilinear discriminator ``D(h, s) = sigmoid(hᵀ W s)``,
  row-permutation corruption, the loss of Eq. 4 and the object score ``1 - D(h_i, s_train)``
  (Eq. 5).
- :func:`train_dgi`, a plain training loop over a list of graphs (mini-batches of windows, Adam,
  early stopping on the epoch's training loss) that ends by storing ``s_train``.
- :class:`AnoGraph`, the estimator: ``fit(videos)`` on per-frame
  :class:`~detectors.base.Detections` with features, ``score(detections) -> ScoreTable``,
  ``save``/``load``.

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
:class:`~stgraph.graphs.window.SlidingWindowGraph`, as a live stream would.
"""
from __future__ import annotations

import logging
import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader
from torch_geometric.nn import GCNConv, global_mean_pool
from tqdm.auto import tqdm

from detectors.base import Detections
from stgraph.graphs.object_graph import TEMPORAL, ObjectGraphBuilder
from stgraph.graphs.window import SlidingWindowGraph
from stgraph.models.base import (
    BaseModel, EarlyStopping, ModelFileError, ScoreQuantiles, check_seed, make_generator,
    resolve_device, seeded,
)
from stgraph.scores import ScoreTable

__all__ = ["AnoGraphDGI", "train_dgi", "training_summary", "AnoGraph", "EXACT_RADIUS", "SCORINGS",
           "embedding_moments", "mahalanobis_distances", "cross_fitted_distances",
           "frame_with_features"]

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
#: ``1 - D(h, s_train)``. ``"mahalanobis"``: the distance of ``h`` to the training objects'
#: embeddings (mean and Ledoit-Wolf covariance), which flags embeddings that are unusual in any
#: direction, not only along the discriminator's one direction ``W s_train``.
SCORINGS = ("discriminator", "mahalanobis")


# ====================================================================== network
class AnoGraphDGI(nn.Module):
    """Deep Graph Infomax on an object spatio-temporal graph (Ano-Graph, Sec. 3, Eq. 3-5).

    Shapes (N nodes, E edges, B graphs in a mini-batch, D = ``in_dim``, H = ``hidden``)::

        x            float32 [N, D]  node features
        edge_index   int64   [2, E]  PyG order: edge (j, i) = node i aggregates from node j
        edge_weight  float32 [E]     A[i, j] (None: all ones)
        edge_type    int64   [E]     0 spatial, 1 temporal (needed only when ``symmetric``)
        batch        int64   [N]     graph of each node, sorted as in PyG batches (None: one graph)
        h            float32 [N, H]  node embeddings;   summary  float32 [B, H]

    Args:
        in_dim: node feature width D.
        hidden: embedding width H. Default 256. The DGI paper uses 512; 256 halves the
            encoder and quarters the H x H discriminator, which is plenty for the few objects per
            frame of a video.
        symmetric: also let each object aggregate from the objects of the *previous* frame, with
            the weight of the forward temporal edge. Default ``False``: the paper's A is block
            upper-triangular (frame t aggregates from frame t+1 only) and is used as it is. Kipf's
            GCN normalisation assumes a symmetric adjacency. ``True`` makes the temporal blocks
            symmetric (the spatial blocks already have a symmetric pattern), so information flows
            both ways in time.

    The encoder is ``PReLU(GCNConv(x))``. GCNConv normalises as ``D^-1/2 (A + I) D^-1/2`` and adds
    a weight-1 self loop only to nodes the builder gave none; the builder's softmax self weight is
    kept otherwise. The corruption permutes the rows of ``x`` *within each graph of the batch*, as
    in DGI, so a window's negatives are that window with its objects' features shuffled. The paper
    reports that permuting A instead performs the same. PyG's ``DeepGraphInfomax`` is not used
    because its discriminator takes one summary for all nodes, while a batch of windows has one
    summary per window.
    """

    def __init__(self, in_dim: int, hidden: int = 256, symmetric: bool = False) -> None:
        super().__init__()
        self.in_dim, self.hidden, self.symmetric = in_dim, hidden, symmetric
        self.conv = GCNConv(in_dim, hidden)
        self.act = nn.PReLU()
        self.weight = nn.Parameter(torch.empty(hidden, hidden))
        #: s_train [H]: readout of the training graphs, set by :func:`train_dgi` (NaN until then).
        self.register_buffer("train_summary", torch.full((hidden,), math.nan))
        #: per-feature centre [D] and scale [D] applied to x before the GCN (identity by default;
        #: set from the training nodes by :meth:`set_feature_scaling`).
        self.register_buffer("feature_mean", torch.zeros(in_dim))
        self.register_buffer("feature_scale", torch.ones(in_dim))
        #: mean [H] and precision [H, H] of the training embeddings, for the Mahalanobis score
        #: (NaN until :meth:`set_embedding_distribution`).
        self.register_buffer("embedding_mean", torch.full((hidden,), math.nan))
        self.register_buffer("embedding_precision", torch.full((hidden, hidden), math.nan))
        self.reset_parameters()

    @torch.no_grad()
    def set_feature_scaling(self, mean: Tensor, scale: Tensor) -> None:
        """Standardise node features as ``(x - mean) / scale`` inside :meth:`encode`.

        ``mean`` and ``scale`` are [D]; scales that are not positive and finite (constant
        features) become 1. Graph edges are not affected: the builder's cosine weights are computed
        on the raw features.
        """
        mean, scale = mean.reshape(-1).to(self.feature_mean), scale.reshape(-1).to(self.feature_scale)
        if mean.numel() != self.in_dim or scale.numel() != self.in_dim:
            raise ValueError(f"feature scaling needs {self.in_dim} values, got {mean.numel()} "
                             f"and {scale.numel()}")
        usable = torch.isfinite(scale) & (scale > 1e-12)
        self.feature_mean.copy_(torch.nan_to_num(mean))
        self.feature_scale.copy_(torch.where(usable, scale, torch.ones_like(scale)))

    def reset_parameters(self) -> None:
        """Re-initialise the encoder and the discriminator (xavier-uniform W, as in DGI)."""
        self.conv.reset_parameters()
        self.act.reset_parameters()
        nn.init.xavier_uniform_(self.weight)

    def message_edges(self, edge_index: Tensor, edge_weight: Tensor | None,
                      edge_type: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """The edges the GCN aggregates over: ``[2, E']``, ``[E']``.

        The builder's edges are already in PyG order (source → target). When ``symmetric``, the
        reverse of each temporal edge is added, with the same weight.
        """
        if self.symmetric:
            if edge_type is None:
                raise ValueError("AnoGraphDGI(symmetric=True) needs edge_type (temporal edges)")
            temporal = edge_type == TEMPORAL
            edge_index = torch.cat([edge_index, edge_index[:, temporal].flip(0)], dim=1)
            if edge_weight is not None:
                edge_weight = torch.cat([edge_weight, edge_weight[temporal]])
        return edge_index, edge_weight

    def encode(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None,
               edge_type: Tensor | None = None) -> Tensor:
        """Node embeddings ``h`` [N, H] = PReLU(GCN(x)), the encoder E of the paper.

        ``x`` is standardised first with the stored feature scaling (identity unless set).
        """
        x = (x - self.feature_mean) / self.feature_scale
        return self.act(self.conv(x, *self.message_edges(edge_index, edge_weight, edge_type)))

    @staticmethod
    def readout(h: Tensor, batch: Tensor | None = None) -> Tensor:
        """Summary per graph ``s`` [B, H] = sigmoid(mean of the graph's embeddings) (Eq. 3)."""
        return torch.sigmoid(global_mean_pool(h, batch))

    @staticmethod
    def corrupt(x: Tensor, batch: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        """Negative features [N, D]: the rows of ``x`` permuted inside each graph of ``batch``.

        Sorting ``batch + u`` with ``u ~ U[0, 1)`` gives a uniformly random order inside each
        graph's contiguous block of nodes, in one vectorised op.
        """
        keys = torch.rand(x.size(0), generator=generator, dtype=torch.float64)
        if batch is not None:
            keys = keys + batch.detach().cpu().to(torch.float64)
        return x[torch.argsort(keys).to(x.device)]

    def logits(self, h: Tensor, summary: Tensor, batch: Tensor | None = None) -> Tensor:
        """Discriminator logits [N]: ``h_iᵀ W s_g(i)`` for node i of graph g(i); D = sigmoid."""
        s = summary.reshape(-1, self.hidden)
        s = s[batch] if batch is not None else s.expand(h.size(0), -1)
        return ((h @ self.weight) * s).sum(dim=-1)

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None,
                edge_type: Tensor | None = None, batch: Tensor | None = None,
                generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Embeddings of the real graph [N, H], of its corruption [N, H], real summaries [B, H]."""
        pos_h = self.encode(x, edge_index, edge_weight, edge_type)
        neg_h = self.encode(self.corrupt(x, batch, generator), edge_index, edge_weight, edge_type)
        return pos_h, neg_h, self.readout(pos_h, batch)

    def loss(self, pos_h: Tensor, neg_h: Tensor, summary: Tensor,
             batch: Tensor | None = None) -> Tensor:
        """Binary cross-entropy of Eq. 4, to minimise: real nodes → 1, corrupted nodes → 0.

        Both sets are scored against the *real* graph's summary, and the sum over the N + M terms
        is divided by N + M. Computed from logits (``softplus``) for numerical stability.
        """
        pos = self.logits(pos_h, summary, batch)
        neg = self.logits(neg_h, summary, batch)
        return (F.softplus(-pos).sum() + F.softplus(neg).sum()) / (pos.numel() + neg.numel())

    @torch.no_grad()
    def set_embedding_distribution(self, embeddings: Tensor) -> None:
        """Store the mean [H] and the shrunk inverse covariance [H, H] of training embeddings.

        ``embeddings`` [N, H] are the training objects' ``h``. The covariance is Ledoit-Wolf
        shrunk towards a scaled identity, so it is invertible even with fewer objects than
        dimensions.
        """
        h = embeddings.detach().cpu().to(torch.float64).numpy()
        if h.ndim != 2 or h.shape[1] != self.hidden:
            raise ValueError(f"embedding distribution needs [N, {self.hidden}] embeddings, "
                             f"got {tuple(h.shape)}")
        mean, precision = embedding_moments(h)
        self.embedding_mean.copy_(torch.from_numpy(mean))
        self.embedding_precision.copy_(torch.from_numpy(precision))

    def discriminator_score(self, h: Tensor) -> Tensor:
        """Paper score [N] in (0, 1): ``1 - D(h_i, s_train)`` (Eq. 5); higher = more abnormal."""
        if not bool(torch.isfinite(self.train_summary).all()):
            raise RuntimeError("AnoGraphDGI.score needs s_train: train the network with train_dgi")
        return torch.sigmoid(-self.logits(h, self.train_summary))  # = 1 - sigmoid(logits)

    def mahalanobis_score(self, h: Tensor) -> Tensor:
        """Score [N] >= 0: Mahalanobis distance of ``h_i`` to the training embeddings."""
        if not bool(torch.isfinite(self.embedding_mean).all()):
            raise RuntimeError("AnoGraphDGI.mahalanobis_score needs the training embedding "
                               "distribution: call set_embedding_distribution")
        centred = h - self.embedding_mean
        return ((centred @ self.embedding_precision) * centred).sum(dim=-1).clamp_min(0).sqrt()

    def score(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None,
              edge_type: Tensor | None = None, method: str = "discriminator") -> Tensor:
        """Object scores [N]; higher = more abnormal. See :data:`SCORINGS` for ``method``."""
        h = self.encode(x, edge_index, edge_weight, edge_type)
        if method == "discriminator":
            return self.discriminator_score(h)
        if method == "mahalanobis":
            return self.mahalanobis_score(h)
        raise ValueError(f"unknown scoring {method!r}; choose one of {SCORINGS}")

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(in_dim={self.in_dim}, hidden={self.hidden}, "
                f"symmetric={self.symmetric})")


def embedding_moments(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean [H] and Ledoit-Wolf shrunk precision [H, H] of embeddings ``h`` [N >= 2, H]."""
    from sklearn.covariance import LedoitWolf

    if h.ndim != 2 or h.shape[0] < 2:
        raise ValueError(f"the embedding distribution needs at least 2 objects, got {h.shape[0]}")
    fit = LedoitWolf().fit(h)
    return fit.location_, fit.precision_


def mahalanobis_distances(h: np.ndarray, mean: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """Distances [N] of embeddings ``h`` [N, H] to a distribution (``mean`` [H], ``precision``)."""
    centred = h - mean
    return np.sqrt(np.maximum(np.einsum("ni,ij,nj->n", centred, precision, centred), 0.0))


#: Most folds :func:`cross_fitted_distances` makes (videos are grouped round-robin beyond this).
MAX_FOLDS = 10


def cross_fitted_distances(videos: Sequence[np.ndarray]) -> np.ndarray:
    """Out-of-sample Mahalanobis distances [N] of training embeddings (leave videos out).

    A covariance fitted on some objects puts those same objects closer than new normal objects
    (measured on synthetic scenes with H = 256: in-sample median 6.8 against 24.5 on a held-out
    normal video), so in-sample distances make alarm thresholds that most new objects exceed.
    Here each video is scored with the distribution of the other videos (at most
    :data:`MAX_FOLDS` folds, videos grouped round-robin); a single video is split into its first
    and second half of objects. The result estimates the distances of a new normal video, slightly
    pessimistically (each fold's distribution sees fewer videos than the final one).

    Args:
        videos: embeddings [N_v, H] of each training video, objects in frame order.
    """
    if len(videos) >= 2:
        n_folds = min(len(videos), MAX_FOLDS)
        folds = [np.concatenate(videos[k::n_folds]) for k in range(n_folds)]
    else:
        half = len(videos[0]) // 2
        folds = [videos[0][:half], videos[0][half:]]
    rests = [np.concatenate([f for j, f in enumerate(folds) if j != k]) for k in range(len(folds))]
    if min(len(fold) for fold in folds) < 1 or min(len(rest) for rest in rests) < 2:
        everything = np.concatenate(videos)  # too few objects to hold any out
        return mahalanobis_distances(everything, *embedding_moments(everything))
    return np.concatenate([mahalanobis_distances(fold, *embedding_moments(rest))
                           for fold, rest in zip(folds, rests)])


# ====================================================================== training
def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


def _graph_inputs(data: Data) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
    """``(x, edge_index, edge_weight, edge_type)`` of a graph (weight and type may be absent)."""
    return (data.x, data.edge_index, getattr(data, "edge_weight", None),
            getattr(data, "edge_type", None))


def _check_features(data: Data, width: int, where: str) -> None:
    """ValueError unless ``data.x`` is a finite float matrix [N, width]."""
    x = getattr(data, "x", None)
    if x is None or x.dim() != 2 or x.size(1) != width:
        got = None if x is None else tuple(x.shape)
        raise ValueError(f"{where}: node features x have shape {got}; expected [N, {width}]")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{where}: node features x contain NaN or inf")


def _train_epoch(model: AnoGraphDGI, loader: DataLoader, optimizer: torch.optim.Optimizer,
                 generator: torch.Generator, device: torch.device) -> float:
    """One pass over ``loader``; returns the mean loss per node (Eq. 4 over the whole epoch)."""
    model.train()
    total, count = 0.0, 0
    for batch in loader:
        batch = batch.to(device)
        pos_h, neg_h, summary = model(*_graph_inputs(batch), batch=batch.batch, generator=generator)
        loss = model.loss(pos_h, neg_h, summary, batch.batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * batch.num_nodes
        count += batch.num_nodes
    return total / count


@torch.no_grad()
def training_summary(model: AnoGraphDGI, graphs: Sequence[Data], batch_size: int = 64,
                     device: str | torch.device = "cpu") -> Tensor:
    """``s_train`` [H] = sigmoid(mean embedding over every node of ``graphs``): Eq. 3 on all.

    Streams the graphs in mini-batches and sums embeddings, so memory stays that of one batch.
    """
    device = resolve_device(device)
    model.to(device).eval()
    total = torch.zeros(model.hidden, dtype=torch.float64, device=device)
    count = 0
    for batch in DataLoader(list(graphs), batch_size=batch_size):
        batch = batch.to(device)
        total += model.encode(*_graph_inputs(batch)).sum(dim=0, dtype=torch.float64)
        count += batch.num_nodes
    if count == 0:
        raise ValueError("training_summary needs graphs with at least one node")
    return torch.sigmoid(total / count).to(torch.float32)


def train_dgi(model: AnoGraphDGI, graphs: Sequence[Data], epochs: int = 100, lr: float = 1e-3,
              batch_size: int = 64, patience: int = 10, seed: int = 0,
              device: str | torch.device = "cpu", progress: bool = True,
              log: Callable[[int, float], None] | None = None) -> list[float]:
    """Train ``model`` with the DGI objective on ``graphs``; return the loss of each epoch.

    Each epoch shuffles the graphs (e.g. windows of consecutive frames) into mini-batches of
    ``batch_size`` graphs, and Adam minimises Eq. 4. Training stops after ``epochs`` epochs, or
    when the epoch's mean training loss has not improved for ``patience`` epochs; the best weights
    are then restored. Last, ``model.train_summary`` (``s_train``) is set by
    :func:`training_summary` over all graphs. The paper trains on a GPU for up to 10000 epochs with
    patience 200. The defaults here (100 / 10) are sized for a CPU, and each epoch sees every
    window.

    Args:
        model: the network. It is moved to ``device`` and left in eval mode.
        graphs: training graphs with ``x`` [N, D], ``edge_index``, ``edge_weight``, and
            ``edge_type`` when the model is symmetric. Graphs without nodes are skipped.
        epochs: maximum number of epochs.
        lr: Adam learning rate (paper: 1e-3).
        batch_size: graphs per mini-batch (paper: 64).
        patience: epochs without improvement before stopping (paper: 200).
        seed: seeds the shuffling and the corruption (the caller initialises the weights).
        device: where to train ("cpu", "cuda", ...).
        progress: show a tqdm bar over epochs.
        log: called as ``log(epoch, loss)`` after each epoch (also logged at DEBUG level).

    Returns:
        ``history``: the mean training loss per node of every epoch run.

    Raises:
        ValueError: bad settings, no graphs, no nodes, features of the wrong width or with NaNs.
        FloatingPointError: the loss became NaN or inf.
    """
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("patience", patience)):
        _check_int(name, value, 1)
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if len(graphs) == 0:
        raise ValueError("train_dgi needs at least one graph")
    for k, graph in enumerate(graphs):
        _check_features(graph, model.in_dim, f"training graph {k}")
    graphs = [graph for graph in graphs if graph.num_nodes > 0]
    if not graphs:
        raise ValueError("all training graphs are empty (no objects): nothing to train on")
    device = resolve_device(device)
    generator = make_generator(seed)
    model.to(device)
    loader = DataLoader(graphs, batch_size=batch_size, shuffle=True, generator=generator)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    stopper = EarlyStopping(patience)
    history: list[float] = []
    with tqdm(range(epochs), desc="train DGI", unit="epoch", disable=not progress) as bar:
        for epoch in bar:
            loss = _train_epoch(model, loader, optimizer, generator, device)
            if not math.isfinite(loss):
                raise FloatingPointError(f"DGI training loss became {loss} at epoch {epoch}; "
                                         "try a lower lr")
            history.append(loss)
            bar.set_postfix(loss=f"{loss:.4f}")
            logger.debug("DGI epoch %d: loss %.6f", epoch, loss)
            if log is not None:
                log(epoch, loss)
            if stopper.step(loss, model):
                break
    stopper.restore(model)
    model.train_summary.copy_(training_summary(model, graphs, batch_size, device))
    model.eval()
    return history


# ====================================================================== estimator
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


def _with_features(frames: Sequence[Detections], width: int, where: str) -> list[Detections]:
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


def _feature_moments(graphs: Sequence[Data], width: int) -> tuple[Tensor, Tensor]:
    """Mean [D] and standard deviation [D] of the node features of ``graphs`` (float64 sums)."""
    total = torch.zeros(width, dtype=torch.float64)
    squares = torch.zeros(width, dtype=torch.float64)
    count = 0
    for graph in graphs:
        x = graph.x.to(torch.float64)
        total += x.sum(dim=0)
        squares += (x * x).sum(dim=0)
        count += x.size(0)
    mean = total / max(count, 1)
    variance = (squares / max(count, 1) - mean * mean).clamp_min(0)
    return mean.float(), variance.sqrt().float()


def _on_device(tensor: Tensor, device: torch.device) -> bool:
    """Whether ``tensor`` lives on ``device`` (``"cuda"`` without an index: any CUDA device)."""
    return tensor.device.type == device.type and device.index in (None, tensor.device.index)


def _split_by_frame(values: np.ndarray, counts: Sequence[int]) -> list[np.ndarray]:
    """Split node values [N] (nodes ordered by frame) into one array [N_t] per frame."""
    return np.split(values, np.cumsum(counts)[:-1])


class AnoGraph(BaseModel):
    """Ano-Graph video anomaly detector: DGI on the object spatio-temporal graph.

    Example::

        model = AnoGraph(epochs=50).fit(train_videos)     # list of videos, each list[Detections]
        table = model.score(test_detections, video="01", fps=25)
        alarm = table["score"] > model.train_scores_.quantile(0.99)
        model.save("anograph/");  AnoGraph.load("anograph/")

    Args:
        hidden: embedding width H (see :class:`AnoGraphDGI`).
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
        epochs, lr, batch_size, patience: see :func:`train_dgi` (``batch_size`` counts windows).
        symmetric: add reverse temporal edges (see :class:`AnoGraphDGI`).
        scoring: the object score, one of :data:`SCORINGS`. Default ``"mahalanobis"``: the
            distance of the object's DGI embedding to the training objects' embeddings.
            ``"discriminator"`` is the paper's Eq. 5, ``1 - D(h, s_train)``: it reads the
            embedding along the single direction ``W s_train``, so anomalies that land on the
            "too normal" side score lowest. Measured on seeded synthetic scenes and on UCSD Ped2
            (README, benchmarks/ped2_anograph.py) it varied from below chance to good with the
            seed, while the Mahalanobis score was stable and better.
        standardize: (default True) standardise every node feature with the mean and standard deviation of the
            training objects before the GCN (the graph's edges still use the raw features).
            Features of different kinds (box geometry in image fractions, CNN activations,
            class scores) then weigh alike; without it, small-valued features such as velocities
            are nearly invisible to the encoder.
        seed: seeds the weight initialisation, the shuffling and the corruption.
        device: "cpu", "cuda", ...
        progress: show tqdm progress bars.

    Learned attributes: ``model_`` (:class:`AnoGraphDGI`), ``s_train_`` [H] (training summary),
    ``n_features_in_`` (D), ``history_`` (loss per epoch), and ``train_scores_``. The last is the
    :class:`~stgraph.models.base.ScoreQuantiles` of the training objects' scores, for alarm
    thresholds: computed as test scores are, except that Mahalanobis distances are cross-fitted
    (:func:`cross_fitted_distances`), so that a quantile of them is a false-alarm rate on new
    normal footage, not on the objects the distribution was fitted to.
    """

    fitted_attributes = ("model_", "n_features_in_", "history_", "train_scores_")

    def __init__(self, hidden: int = 256, window_radius: int | None = None,
                 train_window: int = 21, builder: ObjectGraphBuilder | None = None,
                 epochs: int = 100, lr: float = 1e-3, batch_size: int = 64, patience: int = 10,
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

    # ------------------------------------------------------------------ helpers
    def _check_params(self) -> None:
        """Validate the settings train_dgi does not check itself."""
        _check_int("hidden", self.hidden, 1)
        if self.window_radius is not None:
            _check_int("window_radius", self.window_radius, 0)
        _check_int("train_window", self.train_window, 1)
        if self.scoring not in SCORINGS:
            raise ValueError(f"scoring must be one of {SCORINGS}, got {self.scoring!r}")
        for name in ("symmetric", "standardize"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.builder is not None and not isinstance(self.builder, ObjectGraphBuilder):
            raise TypeError("builder must be an ObjectGraphBuilder, got "
                            f"{type(self.builder).__name__}")
        check_seed(self.seed)
        resolve_device(self.device)

    def graph_builder(self) -> ObjectGraphBuilder:
        """The builder of this model's graphs: ``builder``, or the default sparse one."""
        return self.builder if self.builder is not None else ObjectGraphBuilder(**SPARSE_GRAPH)

    def _window_radius(self, fps: float | None) -> int:
        """Radius in frames: ``window_radius``, else 1 s at ``fps``, else the default (10)."""
        if self.window_radius is not None:
            _check_int("window_radius", self.window_radius, 0)
            return int(self.window_radius)
        if fps is None:
            return DEFAULT_WINDOW_RADIUS
        if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be a positive number, got {fps!r}")
        return round(fps)

    @property
    def s_train_(self) -> Tensor:
        """Training summary s_train [H] (Eq. 3 over all training nodes), used by every score."""
        self._check_is_fitted("reading s_train_")
        return self.model_.train_summary

    # ------------------------------------------------------------------ fit
    def fit(self, videos: Sequence[Sequence[Detections]] | Sequence[Detections]) -> "AnoGraph":
        """Train on normal videos; returns self.

        Args:
            videos: one video or a list of videos. A video is the list of its per-frame
                ``Detections`` in time order, each with ``features`` [N_t, D] (frames without
                objects may omit them).
        """
        self._check_params()
        videos = _as_videos(videos)
        width = _feature_width(videos)
        videos = [_with_features(video, width, f"training video {k}")
                  for k, video in enumerate(videos)]
        builder = self.graph_builder()
        windows = [builder.build(video[start:start + self.train_window])
                   for video in videos for start in range(0, len(video), self.train_window)]
        with seeded(self.seed):
            model = AnoGraphDGI(width, self.hidden, self.symmetric)
        if self.standardize:
            model.set_feature_scaling(*_feature_moments(windows, width))
        self.history_ = train_dgi(model, windows, epochs=self.epochs, lr=self.lr,
                                  batch_size=self.batch_size, patience=self.patience,
                                  seed=self.seed, device=self.device, progress=self.progress)
        self.model_ = model
        self.n_features_in_ = width
        if self.scoring == "mahalanobis":
            embeddings = [np.concatenate(self._whole_video_values(video, DEFAULT_CHUNK_FRAMES,
                                                                  self._node_embeddings))
                          for video in videos]
            model.set_embedding_distribution(torch.from_numpy(np.concatenate(embeddings)))
            train_scores = cross_fitted_distances([h.astype(np.float64) for h in embeddings])
        else:
            train_scores = np.concatenate(
                [scores for video in videos
                 for scores in self._whole_video_scores(video, DEFAULT_CHUNK_FRAMES)])
        self.train_scores_ = ScoreQuantiles.from_scores(train_scores)
        return self

    # ------------------------------------------------------------------ score
    def score_graph(self, data: Data) -> Tensor:
        """Anomaly score [N] (float32, CPU) of every node of a graph built by the builder."""
        self._check_is_fitted("score_graph")
        _check_features(data, self.n_features_in_, "score_graph")
        return self._node_scores(data)

    def score(self, detections: Sequence[Detections], video: str = "video", *,
              fps: float | None = None, exact_windows: bool = False,
              chunk_frames: int = DEFAULT_CHUNK_FRAMES) -> ScoreTable:
        """Score every object of one video; returns a :class:`~stgraph.scores.ScoreTable`.

        Frame t's objects are scored with Eq. 5 on the graph of frames t-i .. t+i (i = the window
        radius, see ``window_radius``). Frames without objects give no rows but are registered in
        the table's ``video_frames``.

        Args:
            detections: the video's per-frame ``Detections`` in time order, with ``features``.
            video: the video's name in the table.
            fps: frame rate, for the default radius (1 s) when ``window_radius`` is None.
            exact_windows: build every window with ``SlidingWindowGraph``, as a live stream does,
                instead of one whole-video pass. The scores are the same when i >= 2.
            chunk_frames: frames per graph in the whole-video pass; bounds memory and does not
                change the scores.
        """
        self._check_is_fitted("score")
        if isinstance(detections, Detections) or len(detections) == 0:
            raise ValueError("score expects a non-empty sequence of Detections, one per frame")
        _check_int("chunk_frames", chunk_frames, 1)
        frames = _with_features(detections, self.n_features_in_, f"video {video!r}")
        radius = self._window_radius(fps)
        if exact_windows or radius < EXACT_RADIUS:
            scores = self._window_scores(frames, radius)
        else:
            scores = self._whole_video_scores(frames, chunk_frames)
        return ScoreTable.from_detections(video, frames, scores)

    def _graph_on_device(self, data: Data) -> tuple[Tensor | None, ...]:
        """The graph's inputs on ``device``, with the network there in eval mode.

        Called once per scored graph (every frame of a stream), so the network is moved only
        when it is not on ``device`` already (``nn.Module.to`` walks every tensor).
        """
        device = resolve_device(self.device)
        if not _on_device(self.model_.feature_mean, device):
            self.model_.to(device)
        if self.model_.training:
            self.model_.eval()
        return tuple(t if t is None else t.to(device) for t in _graph_inputs(data))

    @torch.no_grad()
    def _node_scores(self, data: Data) -> Tensor:
        """Scores [N] (CPU) of a graph whose features fit the network."""
        if data.num_nodes == 0:
            return torch.zeros(0)
        return self.model_.score(*self._graph_on_device(data), method=self.scoring).cpu()

    @torch.no_grad()
    def _node_embeddings(self, data: Data) -> Tensor:
        """Embeddings h [N, H] (CPU) of a graph whose features fit the network."""
        if data.num_nodes == 0:
            return torch.zeros(0, self.model_.hidden)
        return self.model_.encode(*self._graph_on_device(data)).cpu()

    def _whole_video_scores(self, frames: Sequence[Detections],
                            chunk_frames: int) -> list[np.ndarray]:
        """Per-frame scores [N_t] from the whole-video graph."""
        return self._whole_video_values(frames, chunk_frames, self._node_scores)

    def _whole_video_values(self, frames: Sequence[Detections], chunk_frames: int,
                            node_values: Callable[[Data], Tensor]) -> list[np.ndarray]:
        """Per-frame node values [N_t, ...] (scores or embeddings) from the whole-video graph.

        The graph is built in chunks of ``chunk_frames`` frames plus an ``EXACT_RADIUS``-frame
        halo on each side; each chunk keeps the values of its own frames only.
        """
        builder, n_frames = self.graph_builder(), len(frames)
        out: list[np.ndarray] = []
        starts = range(0, n_frames, chunk_frames)
        for start in tqdm(starts, desc="score (video graph)", unit="chunk",
                          disable=not self.progress or len(starts) < 2):
            stop = min(n_frames, start + chunk_frames)
            lo, hi = max(0, start - EXACT_RADIUS), min(n_frames, stop + EXACT_RADIUS)
            values = node_values(builder.build(frames[lo:hi])).numpy()
            per_frame = _split_by_frame(values, [len(f) for f in frames[lo:hi]])
            out.extend(per_frame[start - lo:stop - lo])
        return out

    def _window_scores(self, frames: Sequence[Detections], radius: int) -> list[np.ndarray]:
        """Per-frame scores [N_t], each frame t scored on its own window t-radius .. t+radius.

        Frames are pushed into a :class:`SlidingWindowGraph` of ``2 * radius + 1`` frames; after
        frame ``t + radius`` is pushed, the window is centred on t. Then ``radius`` empty frames
        close the video. Empty frames add no nodes and no temporal edges, so the windows of the
        last frames end where the video ends, like the windows of the first frames.
        """
        window = SlidingWindowGraph(self.graph_builder(), 2 * radius + 1)
        last = frames[-1]
        padding = [Detections.empty(last.frame_index + 1 + k, last.image_size, last.class_names,
                                    self.n_features_in_) for k in range(radius)]
        stream = [*frames, *padding]
        first_node = np.cumsum([0] + [len(f) for f in stream])  # node offset of each frame
        out: list[np.ndarray] = []
        for pushed, frame in enumerate(tqdm(stream, desc="score (windows)", unit="frame",
                                            disable=not self.progress)):
            graph = window.push(frame)
            centre = pushed - radius
            if centre < 0:
                continue
            window_start = first_node[max(0, pushed - 2 * radius)]
            rows = slice(first_node[centre] - window_start, first_node[centre + 1] - window_start)
            out.append(self._node_scores(graph).numpy()[rows])
        return out

    # ------------------------------------------------------------------ persistence
    def _fitted_config(self) -> dict[str, Any]:
        return {"n_features_in": self.n_features_in_, "history": self.history_,
                "train_score_count": self.train_scores_.count}

    def _fitted_state(self) -> dict[str, Tensor]:
        state = {f"net.{name}": value.detach().cpu()
                 for name, value in self.model_.state_dict().items()}
        state["train_score_quantiles"] = torch.from_numpy(self.train_scores_.values)
        return state

    def _restore(self, fitted_config: Mapping[str, Any], state: Mapping[str, Tensor]) -> None:
        self.n_features_in_ = int(fitted_config["n_features_in"])
        self.history_ = [float(v) for v in fitted_config["history"]]
        self.train_scores_ = ScoreQuantiles(state["train_score_quantiles"].numpy(),
                                            int(fitted_config["train_score_count"]))
        model = AnoGraphDGI(self.n_features_in_, self.hidden, self.symmetric)
        net_state = {name.removeprefix("net."): value for name, value in state.items()
                     if name.startswith("net.")}
        try:
            model.load_state_dict(net_state)
        except RuntimeError as exc:
            raise ModelFileError(f"saved AnoGraph weights do not match its config: {exc}") from exc
        self.model_ = model.to(resolve_device(self.device)).eval()

    @classmethod
    def _from_params(cls, params: Mapping[str, Any]) -> "AnoGraph":
        params = dict(params)
        spec = params.get("builder")
        if spec is not None:
            expected = f"{ObjectGraphBuilder.__module__}.{ObjectGraphBuilder.__qualname__}"
            if not isinstance(spec, dict) or spec.get("class") != expected:
                raise ModelFileError(f"saved builder {spec!r} is not a {expected}")
            params["builder"] = ObjectGraphBuilder(**spec["params"])
        return cls(**params)
