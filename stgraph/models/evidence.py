"""``EvidenceFusion``: object scores from several kinds of evidence, each a density of its own
feature group, fused on training-calibrated scales (``consumes = "detections"``).

The node features of an object are split into column groups (``groups``: their widths, in
column order), e.g. with ``--features geometry+class+flow+track``::

    geometry 8 | class 81 | flow 16 | track 5      ->  groups = [8, 81, 16, 5]

Each group is standardised with the training objects' mean and standard deviation and scored by
its own density of :mod:`stgraph.models.density` (``scoring``: kNN distance by default, or a GMM,
or Mahalanobis). The groups' scores live on different scales, so each is calibrated on its
**cross-fitted training scores** (:func:`~stgraph.models.density.cross_fitted_scores`: every
training video scored by the density of the other videos) with
:class:`stgraph.scores.fusion.TrainScale`, ``z = (s - q50) / (q99 - q50)``, and the object's score
is ``sum_g weights[g] * z_g`` (equal weights by default). An object as unusual as the top 1% of
new normal objects in one group gets about ``weights[g]`` from it.

Nothing here looks at a window of frames: an object's score depends on its own features only
(motion over time enters through the flow and track features), so streaming equals batch scoring
with no latency.

Example::

    model = EvidenceFusion(groups=[8, 81, 16, 5]).fit(train_videos)   # lists of Detections
    table = model.score(test_detections, video="01")                  # object rows
"""
from __future__ import annotations

import math
import time
from typing import Any, ClassVar, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from detectors.base import Detections
from stgraph.models.anograph import _as_videos, _feature_width, with_features
from stgraph.models.base import (BaseEstimator, ModelFileError, ScoreQuantiles, check_int,
                                 check_labels)
from stgraph.models.density import (DENSITIES, EmbeddingDensity, GMMDensity, KNNDensity,
                                    MahalanobisDensity, cross_fitted_scores)
from stgraph.registry import register
from stgraph.scores import ScoreTable
from stgraph.scores.columns import ScoreTableError
from stgraph.scores.fusion import TrainScale

__all__ = ["EvidenceFusion", "ObjectStreamScorer"]


def _calibration(scores: Tensor, what: str) -> tuple[float, float]:
    """``(median, spread)`` of cross-fitted training scores for ``z = (s - median) / spread``
    (:class:`TrainScale`); a group whose q99 equals its median (almost all training objects
    alike) falls back to ``max - median``, then to 1."""
    quantiles = ScoreQuantiles.from_scores(scores.numpy())
    try:
        scale = TrainScale(quantiles, what)
        return scale.median, scale.spread
    except ScoreTableError:
        median = quantiles.quantile(0.5)
        spread = quantiles.values[-1] - median
        return median, (spread if math.isfinite(spread) and spread > 0 else 1.0)


@register("model", "evidence")
class EvidenceFusion(BaseEstimator):
    """Per-group densities of object features, calibrated on training scores and summed.

    Args:
        groups: widths of the feature column groups, in column order (their sum must be the
            feature width). None: one group of all columns.
        scoring: the density of each group, a key of :data:`stgraph.models.density.DENSITIES`
            (``"knn"`` default, ``"gmm"``, ``"mahalanobis"``).
        k: neighbours of the kNN density.
        components: mixture components of the GMM density.
        weights: one weight >= 0 per group (None: equal weights summing to 1).
        max_bank: most training objects a kNN density keeps (seeded random subset).
        seed: seeds the kNN subset and the GMM initialisation.
        progress: unused (no long loops); kept for the CLI's ``--quiet``.

    Learned attributes: ``n_features_in_``, ``mean_`` / ``std_`` [D] (standardisation),
    ``densities_`` (one per group), ``calibration_`` [G, 2] (median, spread of each group's
    cross-fitted training scores), ``train_scores_`` (quantiles of the fused cross-fitted
    training scores: a quantile is a false-alarm rate on new normal objects), ``fit_seconds_``.
    """

    consumes: ClassVar[str] = "detections"
    supervision: ClassVar[str] = "none"
    streams_exactly: ClassVar[bool] = True
    fitted_attributes = ("n_features_in_", "mean_", "std_", "densities_", "calibration_",
                         "train_scores_")
    format_version = 1

    def __init__(self, groups: Sequence[int] | None = None, scoring: str = "knn", k: int = 5,
                 components: int = 8, weights: Sequence[float] | None = None,
                 max_bank: int = 20000, seed: int = 0, progress: bool = True) -> None:
        self.groups = groups
        self.scoring = scoring
        self.k = k
        self.components = components
        self.weights = weights
        self.max_bank = max_bank
        self.seed = seed
        self.progress = progress

    @classmethod
    def contract_params(cls) -> dict[str, Any]:
        return {"k": 3, "progress": False}

    # ------------------------------------------------------------------ settings
    def _widths(self, width: int) -> list[int]:
        widths = [width] if self.groups is None else list(self.groups)
        if not widths or any(isinstance(w, bool) or not isinstance(w, int) or w < 1
                             for w in widths):
            raise ValueError(f"groups must be a list of positive column counts, got {self.groups!r}")
        if sum(widths) != width:
            raise ValueError(f"groups {widths} cover {sum(widths)} columns but the features have "
                             f"{width}")
        return widths

    def _weights(self, n_groups: int) -> np.ndarray:
        if self.weights is None:
            return np.full(n_groups, 1.0 / n_groups)
        weights = np.asarray(self.weights, np.float64).reshape(-1)
        if weights.shape[0] != n_groups or not np.all(np.isfinite(weights)) \
                or np.any(weights < 0) or not weights.sum() > 0:
            raise ValueError(f"weights must be {n_groups} finite numbers >= 0, not all 0, got "
                             f"{self.weights!r}")
        return weights

    def make_density(self) -> EmbeddingDensity:
        """An unfitted density of the kind ``scoring`` names, with this model's settings."""
        if self.scoring == "knn":
            check_int("k", self.k, 1)
            return KNNDensity(k=self.k, max_bank=self.max_bank, seed=self.seed)
        if self.scoring == "gmm":
            check_int("components", self.components, 1)
            return GMMDensity(components=self.components, seed=self.seed)
        if self.scoring == "mahalanobis":
            return MahalanobisDensity()
        raise ValueError(f"scoring must be one of {sorted(DENSITIES)}, got {self.scoring!r}")

    def _slices(self) -> list[slice]:
        edges = np.cumsum([0, *self._widths(self.n_features_in_)])
        return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]

    # ------------------------------------------------------------------ fit
    def fit(self, X: Sequence[Sequence[Detections]] | Sequence[Detections],
            y: Any = None) -> "EvidenceFusion":
        """Fit one density per feature group on the training objects; returns self.

        Args:
            X: normal training videos, each a list of ``Detections`` (one per frame) with
                ``features`` [N_t, D]; or a single such video.
            y: None, or all-zero labels (normal videos only).
        """
        start = time.perf_counter()
        videos = _as_videos(X)
        check_labels(y, len(videos))
        check_int("max_bank", self.max_bank, 1)
        width = _feature_width(videos)
        widths = self._widths(width)
        weights = self._weights(len(widths))
        self.make_density()  # checks scoring, k, components before any work
        per_video = []
        for k, video in enumerate(videos):
            frames = with_features(video, width, f"training video {k}")
            rows = [f.features for f in frames if len(f)]
            if rows:
                per_video.append(torch.from_numpy(np.concatenate(rows).astype(np.float64)))
        everything = torch.cat(per_video)
        if not bool(torch.isfinite(everything).all()):
            raise ValueError("training features contain NaN or inf")
        mean = everything.mean(dim=0)
        std = everything.std(dim=0, unbiased=False)
        std = torch.where(std > 1e-8, std, torch.ones_like(std))
        per_video = [(v - mean) / std for v in per_video]
        edges = np.cumsum([0, *widths])
        densities, calibration, fused = [], [], None
        for g, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
            parts = [v[:, a:b] for v in per_video]
            cross = cross_fitted_scores(parts, self.make_density)
            median, spread = _calibration(cross, f"feature group {g}")
            z = (cross - median) / spread
            fused = weights[g] * z if fused is None else fused + weights[g] * z
            densities.append(self.make_density().fit(torch.cat(parts)))
            calibration.append((median, spread))
        self.n_features_in_ = width
        self.mean_, self.std_ = mean, std
        self.densities_ = densities
        self.calibration_ = torch.tensor(calibration, dtype=torch.float64)
        self.train_scores_ = ScoreQuantiles.from_scores(fused.numpy())
        self.fit_seconds_ = time.perf_counter() - start
        return self

    # ------------------------------------------------------------------ scores
    def group_scores(self, features: np.ndarray) -> np.ndarray:
        """Calibrated scores z [N, G] of objects with features [N, D] (float64), one column per
        group; the object score is their weighted sum."""
        self.check_is_fitted("group_scores")
        x = torch.as_tensor(np.asarray(features, np.float64))
        if x.dim() != 2 or x.shape[1] != self.n_features_in_:
            raise ValueError(f"features must be [N, {self.n_features_in_}], got {tuple(x.shape)}")
        if x.shape[0] == 0:
            return np.zeros((0, len(self.densities_)))
        x = (x - self.mean_) / self.std_
        cal = self.calibration_
        with torch.no_grad():
            cols = [(density.score(x[:, part]) - cal[g, 0]) / cal[g, 1]
                    for g, (density, part) in enumerate(zip(self.densities_, self._slices()))]
        return torch.stack(cols, dim=1).numpy()

    def object_scores(self, features: np.ndarray) -> np.ndarray:
        """Fused scores float64 [N] of objects with features [N, D]."""
        z = self.group_scores(features)
        weights = self._weights(z.shape[1])
        total = np.zeros(z.shape[0])
        for g in range(z.shape[1]):  # summed in group order, as in fit
            total = total + weights[g] * z[:, g]
        return total

    def score(self, X: Sequence[Detections], video: str = "video", *,
              fps: float | None = None) -> ScoreTable:
        """Object rows of one video (``X``: its per-frame ``Detections`` with features).

        ``fps`` is accepted for the pipeline's sake and unused. Frames without objects give no
        rows but are registered in ``video_frames``.
        """
        self.check_is_fitted("score")
        if isinstance(X, Detections) or len(X) == 0:
            raise ValueError("score expects a non-empty sequence of Detections, one per frame")
        frames = with_features(X, self.n_features_in_, f"video {video!r}")
        counts = [len(f) for f in frames]
        rows = np.concatenate([f.features for f in frames]) if sum(counts) else \
            np.zeros((0, self.n_features_in_), np.float32)
        scores = self.object_scores(rows)
        return ScoreTable.from_detections(video, frames, np.split(scores, np.cumsum(counts)[:-1]))

    def stream_scorer(self, fps: float | None = None, radius: int | None = None
                      ) -> "ObjectStreamScorer":
        """A live scorer (latency 0; equals :meth:`score`)."""
        return ObjectStreamScorer(self, fps)

    # ------------------------------------------------------------------ persistence
    def _fitted_config(self) -> dict[str, Any]:
        return {"n_features_in": self.n_features_in_,
                "train_score_count": self.train_scores_.count}

    def _fitted_state(self) -> dict[str, Tensor]:
        state = {"mean": self.mean_, "std": self.std_, "calibration": self.calibration_,
                 "train_score_quantiles": torch.from_numpy(self.train_scores_.values)}
        for g, density in enumerate(self.densities_):
            state.update({f"density.{g}.{name}": value
                          for name, value in density.state_dict().items()})
        return state

    def _restore(self, fitted_config: Mapping[str, Any], state: Mapping[str, Tensor]) -> None:
        width = int(fitted_config["n_features_in"])
        try:
            n_groups = len(self._widths(width))
            densities = []
            for g in range(n_groups):
                prefix = f"density.{g}."
                part = {name[len(prefix):]: value for name, value in state.items()
                        if name.startswith(prefix)}
                densities.append(DENSITIES[self.scoring].from_state(part))
            calibration = state["calibration"].to(torch.float64)
            if calibration.shape != (n_groups, 2):
                raise ValueError(f"calibration {tuple(calibration.shape)} for {n_groups} groups")
        except (KeyError, ValueError) as exc:
            raise ModelFileError(f"saved EvidenceFusion state does not match its config: "
                                 f"{exc}") from exc
        if isinstance(densities[0], KNNDensity):
            for density in densities:
                density.max_bank, density.seed = self.max_bank, self.seed
        self.n_features_in_ = width
        self.mean_ = state["mean"].to(torch.float64)
        self.std_ = state["std"].to(torch.float64)
        self.densities_ = densities
        self.calibration_ = calibration
        self.train_scores_ = ScoreQuantiles(state["train_score_quantiles"].numpy(),
                                            int(fitted_config["train_score_count"]))


class ObjectStreamScorer:
    """Live scorer of a model whose object scores depend on the object's own features only
    (``model.object_scores(features [N, D]) -> [N]``): one result per pushed frame, latency 0."""

    latency_frames = 0

    def __init__(self, model: Any, fps: float | None = None) -> None:
        model.check_is_fitted("stream")
        self.model = model
        self.fps = float(fps) if fps else 25.0

    def reset(self) -> None:
        """Nothing is held between frames."""

    def push(self, frame: Any) -> list:
        """Score one :class:`~stgraph.stream.AnalysedFrame`; returns its ``FrameResult``."""
        from stgraph.stream import STAGES, FrameResult

        t0 = time.perf_counter()
        detections = with_features([frame.detections], self.model.n_features_in_, "stream")[0]
        scores = self.model.object_scores(detections.features)
        timings = {stage: 0.0 for stage in STAGES}
        timings.update(getattr(frame, "timings", {}) or {})
        timings["score"] = time.perf_counter() - t0
        arrived = getattr(frame, "arrived", None)
        timings["latency"] = time.perf_counter() - arrived if arrived else timings["score"]
        frame_score = float(scores.max()) if len(scores) else math.nan
        return [FrameResult(detections.frame_index, frame.time_s, detections, scores,
                            frame_score, timings, getattr(frame, "image", None))]

    def flush(self) -> list:
        """Nothing waits (latency 0)."""
        return []

    def run(self, frames: Iterable[Any]) -> Iterator[Any]:
        """Results of every frame of ``frames`` (AnalysedFrame), in order."""
        for frame in frames:
            yield from self.push(frame)
