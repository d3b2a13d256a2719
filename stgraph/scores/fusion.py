"""Late fusion: one frame score from the frame scores of several methods.

Each method scores on its own scale (``-PSNR`` in dB, a Mahalanobis distance, ``1 - psi``...),
so each method's frame scores are first put on one scale, then summed with weights
(``fused = sum_i weights[i] * z_i``; default weights: ``1 / n_methods`` each). Two scales:

``scale="train"`` (default; for live use)
    A robust standardisation by the method's **training-score** quantiles
    (:class:`~stgraph.models.base.ScoreQuantiles`, the estimator's ``train_scores_``)::

        z = (s - q50) / (q99 - q50)

    so a frame scored like the median training sample gets 0 and one at the default alarm
    quantile gets 1. The scale is fixed before the test video starts, so a frame's fused score
    depends on that frame's scores only: :class:`FrameFuser` fusing results as they stream in
    equals :func:`fuse` on the whole tables. A frame a method did not score (no object
    detected, no history yet) counts as ``z = 0`` for it: no evidence either way.

``scale="video"`` (offline only)
    Per-video min-max of each method's frame scores (``frame_scores(normalize=True)``: frames
    without rows take the video's lowest score first). It needs each whole video, as the papers'
    per-video normalisation does.

Frame scores are those of ``ScoreTable.frame_scores(kind=None)`` (each video's frame rows, else
its object rows reduced by max, else its patch rows), unsmoothed: smooth the fused table's
frame scores as any other.

Example:
    >>> fused = fuse([strl_table, anograph_table],                          # doctest: +SKIP
    ...              train_scores=[strl.train_scores_, anograph.train_scores_])
    >>> fused.frame_scores(smooth=9)                                        # doctest: +SKIP
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

import numpy as np

from stgraph.scores.columns import ScoreTableError
from stgraph.scores.table import ScoreTable

if TYPE_CHECKING:  # not imported at run time: stgraph.models imports torch and stgraph.scores
    from stgraph.models.base import ScoreQuantiles

__all__ = ["fuse", "FrameFuser", "TrainScale", "SCALES", "trailing_mean", "scored_frame_scores"]

SCALES = ("train", "video")


class TrainScale:
    """``z = (s - q50) / (q99 - q50)`` from one method's training-score quantiles.

    Args:
        quantiles: anything with ``quantile(q) -> float`` (a ``ScoreQuantiles``).
        what: the method's name in error messages.

    Raises:
        ScoreTableError: ``q99 <= q50`` (constant training scores: no scale to learn).
    """

    def __init__(self, quantiles: "ScoreQuantiles", what: str = "method"):
        if not hasattr(quantiles, "quantile"):
            raise ScoreTableError(f"{what}: train scores must be a ScoreQuantiles (the "
                                  f"estimator's train_scores_), got {type(quantiles).__name__}")
        self.median = float(quantiles.quantile(0.5))
        self.spread = float(quantiles.quantile(0.99)) - self.median
        if not (math.isfinite(self.median) and math.isfinite(self.spread) and self.spread > 0):
            raise ScoreTableError(f"{what}: training scores have q0.99 - median = "
                                  f"{self.spread!r}; the \"train\" scale needs spread-out "
                                  f"training scores (use scale=\"video\")")

    def __call__(self, scores: np.ndarray | float) -> np.ndarray:
        return (np.asarray(scores, np.float64) - self.median) / self.spread

    def __repr__(self) -> str:
        return f"TrainScale(median={self.median:.4g}, spread={self.spread:.4g})"


def _check_weights(weights: Sequence[float] | None, n: int) -> np.ndarray:
    """float64 [n]: finite, non-negative, not all zero (default: 1/n each)."""
    if weights is None:
        return np.full(n, 1.0 / n)
    array = np.asarray(weights, np.float64).reshape(-1)
    if array.shape[0] != n:
        raise ScoreTableError(f"fuse: {array.shape[0]} weights for {n} tables")
    if not np.all(np.isfinite(array)) or np.any(array < 0) or not array.sum() > 0:
        raise ScoreTableError(f"fuse: weights must be finite, >= 0 and not all 0, got "
                              f"{array.tolist()}")
    return array


def _weighted_sum(weights: np.ndarray, z: Sequence[np.ndarray]) -> np.ndarray:
    """``sum_i weights[i] * z[i]``, always summed in method order (batch == streaming, bit for
    bit)."""
    total = weights[0] * np.asarray(z[0], np.float64)
    for weight, part in zip(weights[1:], z[1:]):
        total = total + weight * np.asarray(part, np.float64)
    return total


def _check_same_frames(tables: Sequence[ScoreTable]) -> None:
    """Every table covers the same videos with the same frames (else a one-line error)."""
    first = tables[0]
    for i, table in enumerate(tables[1:], start=1):
        if table.videos != first.videos:
            only_first = sorted(set(first.videos) - set(table.videos))
            only_here = sorted(set(table.videos) - set(first.videos))
            raise ScoreTableError(f"fuse: tables 0 and {i} cover different videos (only in "
                                  f"table 0: {only_first}; only in table {i}: {only_here})")
        for video, frames in first.video_frames.items():
            other = table.video_frames[video]
            if not np.array_equal(frames, other):
                raise ScoreTableError(
                    f"fuse: video {video!r} has frames {_span(frames)} in table 0 but "
                    f"{_span(other)} in table {i}; fuse tables scored on the same frames")


def _span(frames: np.ndarray) -> str:
    return f"{int(frames[0])}..{int(frames[-1])} ({frames.shape[0]} frames)"


def fuse(tables: Sequence[ScoreTable], weights: Sequence[float] | None = None,
         scale: str = "train",
         train_scores: Sequence["ScoreQuantiles"] | None = None) -> ScoreTable:
    """Fuse the frame scores of several methods' tables (module docstring) into frame rows.

    Args:
        tables: one table per method, all with the same videos and frames.
        weights: float [n_tables], >= 0 (default: equal, summing to 1).
        scale: ``"train"`` (training-score quantiles; streaming-safe) or ``"video"`` (per-video
            min-max; offline).
        train_scores: for ``"train"``: one ``ScoreQuantiles`` per table, in table order.

    Returns:
        A ScoreTable of frame rows (NaN boxes, no pixel maps): one row per frame of every video.

    Raises:
        ScoreTableError: no table, mismatched videos or frames (names them), bad weights, an
            unknown scale, missing or degenerate training quantiles.
    """
    tables = list(tables)
    if not tables:
        raise ScoreTableError("fuse needs at least one table")
    if scale not in SCALES:
        raise ScoreTableError(f"fuse: scale must be one of {list(SCALES)}, got {scale!r}")
    weights = _check_weights(weights, len(tables))
    _check_same_frames(tables)
    if scale == "train":
        if train_scores is None or len(train_scores) != len(tables):
            given = "none" if train_scores is None else len(train_scores)
            raise ScoreTableError(f"fuse: scale=\"train\" needs one training-score summary per "
                                  f"table (the estimators' train_scores_): {len(tables)} tables, "
                                  f"{given} given")
        scales = [TrainScale(q, f"table {i}") for i, q in enumerate(train_scores)]
        per_table = [{video: fs.scores for video, fs in table.frame_scores(
            empty=scale_i.median).items()} for table, scale_i in zip(tables, scales)]
        scaled = [{video: scale_i(scores) for video, scores in frame_scores.items()}
                  for frame_scores, scale_i in zip(per_table, scales)]
    else:
        scaled = [{video: fs.scores for video, fs in table.frame_scores(normalize=True).items()}
                  for table in tables]
    return ScoreTable.concat([
        ScoreTable.from_frames(video, frames, _weighted_sum(weights, [z[video] for z in scaled]))
        for video, frames in tables[0].video_frames.items()])


def scored_frame_scores(tables: Sequence[ScoreTable]) -> np.ndarray:
    """float64 [n]: the frame scores (``frame_scores()``) of the frames that have rows, over
    every video of ``tables``. A frame without rows (nothing detected, no history yet) is left
    out: it is no sample of the method's scores, as in the estimators' ``train_scores_``."""
    parts = []
    for table in tables:
        for video, series in table.frame_scores().items():
            rows = table.select(video, kind=table.scored_kind(video))
            scored = np.isin(series.frames, rows.column("frame"))
            parts.append(np.asarray(series.scores, np.float64)[scored])
    return np.concatenate(parts) if parts else np.zeros(0)


def trailing_mean(scores: np.ndarray, window: int) -> np.ndarray:
    """Causal moving average of one video's frame scores: ``out[t]`` is the mean of
    ``scores[max(0, t - window + 1) : t + 1]`` (float64 [T]; ``window`` 1 returns the scores).

    Unlike ``frame_scores(smooth=...)`` (centred, offline) it looks at past frames only, so a
    live scorer that keeps the last ``window`` scores gives the same values with no delay.
    """
    scores = np.asarray(scores, np.float64)
    window = int(window)
    if window < 1:
        raise ScoreTableError(f"trailing_mean: window must be >= 1, got {window}")
    if window == 1:
        return scores.copy()
    return np.array([np.mean(scores[max(0, t - window + 1):t + 1]) for t in range(len(scores))])


class FrameFuser:
    """Streaming late fusion on the ``"train"`` scale: the fused score of each frame once every
    method has reported it, equal to :func:`fuse` ``(scale="train")`` on the whole tables.

    Methods may run with different latencies: results of each method arrive in frame order, and
    a frame is fused once every method has reported it or a later frame (a method that skipped
    it, e.g. during its warm-up, gave it no score: ``z = 0``).

    Args:
        train_scores: one ``ScoreQuantiles`` per method (the estimators' ``train_scores_``).
        weights: float [n_methods], >= 0 (default: equal, summing to 1).

    Example:
        >>> fuser = FrameFuser([strl.train_scores_, anograph.train_scores_])     # doctest: +SKIP
        >>> for r in strl_results: fused += fuser.push(0, r.frame_index, r.frame_score)
        >>> fused += fuser.flush()    # at the end of the stream                  # doctest: +SKIP
    """

    def __init__(self, train_scores: Sequence["ScoreQuantiles"],
                 weights: Sequence[float] | None = None):
        train_scores = list(train_scores)
        if not train_scores:
            raise ScoreTableError("FrameFuser needs at least one method's train scores")
        self.scales = [TrainScale(q, f"method {i}") for i, q in enumerate(train_scores)]
        self.weights = _check_weights(weights, len(self.scales))
        self.reset()

    @property
    def n_methods(self) -> int:
        return len(self.scales)

    def reset(self) -> None:
        """Forget every pending frame (a new video)."""
        self._last = np.full(self.n_methods, -1, np.int64)
        self._pending: dict[int, list[float]] = {}

    def push(self, method: int, frame: int, score: float | None) -> list[tuple[int, float]]:
        """Add method ``method``'s score of ``frame`` (None or NaN: it gave none).

        Returns:
            [(frame, fused score)] of the frames now complete, in frame order.

        Raises:
            ScoreTableError: an unknown method, or a frame not after its previous one.
        """
        if not 0 <= method < self.n_methods:
            raise ScoreTableError(f"FrameFuser: method must be in 0..{self.n_methods - 1}, "
                                  f"got {method}")
        frame = int(frame)
        if frame <= self._last[method]:
            raise ScoreTableError(f"FrameFuser: method {method} gave frame {frame} after frame "
                                  f"{int(self._last[method])}; frames must increase")
        self._last[method] = frame
        z = self._pending.setdefault(frame, [0.0] * self.n_methods)
        if score is not None and math.isfinite(score):
            z[method] = float(self.scales[method](score))
        return self._emit(int(self._last.min()))

    def flush(self) -> list[tuple[int, float]]:
        """Fuse every pending frame (the end of the stream); returns them in frame order."""
        out = self._emit(None)
        self.reset()
        return out

    def _emit(self, up_to: int | None) -> list[tuple[int, float]]:
        ready = sorted(f for f in self._pending if up_to is None or f <= up_to)
        return [(f, float(_weighted_sum(self.weights, self._pending.pop(f)))) for f in ready]

    def __repr__(self) -> str:
        return f"FrameFuser(methods={self.n_methods}, weights={self.weights.tolist()})"
