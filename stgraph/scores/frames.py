"""Frame-level scores: :class:`FrameScores` (one score per frame of a video), the reduction of a
frame's rows to one score, temporal smoothing and per-video normalisation, per-pixel score maps
(:class:`PixelMaps`), and the check of frame labels against a video's frames.

These are the pieces :meth:`stgraph.scores.ScoreTable.frame_scores` is made of; they also serve
score arrays that never were in a table (:func:`smooth_and_normalize`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence, Union

import numpy as np
from scipy.ndimage import uniform_filter1d

from stgraph.scores.columns import ScoreTableError, readonly

__all__ = ["FrameScores", "PixelMaps", "Reducer", "smooth_and_normalize", "check_frame_labels"]

#: ``frame_scores(reduce=...)``: a name or ``f(row_scores [k]) -> float``.
Reducer = Union[str, Callable[[np.ndarray], float]]


def _check_frame_indices(frames: np.ndarray, what: str) -> np.ndarray:
    """int64 [T]: ``frames`` after checking 1-D, integer, non-negative, strictly increasing."""
    frames = np.asarray(frames)
    if frames.ndim != 1:
        raise ScoreTableError(f"{what} frames must be 1-D, got shape {frames.shape}")
    if frames.size and frames.dtype.kind not in "iu":
        raise ScoreTableError(f"{what} frames must be integers, got dtype {frames.dtype}")
    if np.any(np.diff(frames) <= 0) or np.any(frames < 0):
        raise ScoreTableError(f"{what} frames must be non-negative and strictly increasing")
    return frames.astype(np.int64)


# ---------------------------------------------------------------------------- frame scores
@dataclass(frozen=True, eq=False)
class FrameScores:
    """Anomaly score of each scored frame of one video.

    Attributes:
        frames: int64 [T], non-negative, strictly increasing frame indices.
        scores: float64 [T], finite; higher = more abnormal.
    """

    frames: np.ndarray
    scores: np.ndarray

    def __post_init__(self) -> None:
        scores = np.asarray(self.scores, dtype=np.float64)
        frames = np.asarray(self.frames)
        if frames.ndim != 1 or scores.ndim != 1 or frames.shape != scores.shape:
            raise ScoreTableError(f"FrameScores needs 1-D frames and scores of one length, "
                                  f"got shapes {frames.shape} and {scores.shape}")
        frames = _check_frame_indices(frames, "FrameScores")
        if not np.all(np.isfinite(scores)):
            bad = int(frames[np.argmin(np.isfinite(scores))])
            raise ScoreTableError(f"FrameScores.scores contain NaN or inf (first at frame {bad})")
        object.__setattr__(self, "frames", readonly(frames))
        object.__setattr__(self, "scores", readonly(scores.copy()))

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    def as_dense(self, n_frames: int, fill: float | None = None) -> np.ndarray:
        """Scores of frames ``0 .. n_frames - 1``: float64 [n_frames].

        With ``fill=None`` a frame that was not scored takes the score of the **nearest scored
        frame** (the earlier one on a tie). That is what frame-strided scoring needs: a model
        that scores every k-th frame is evaluated against per-frame labels as if each score held
        for its neighbours. With a number, unscored frames take that constant instead.

        Raises:
            ScoreTableError: a scored frame is >= ``n_frames``, or nothing was scored and
                ``fill`` is None.
        """
        if len(self) and self.frames[-1] >= n_frames:
            raise ScoreTableError(f"FrameScores has frame {int(self.frames[-1])}, "
                                  f"beyond n_frames={n_frames}")
        if fill is not None:
            dense = np.full(n_frames, float(fill))
            dense[self.frames] = self.scores
            return dense
        if not len(self):
            raise ScoreTableError("FrameScores.as_dense: no scored frame to copy from; "
                                  "pass fill=<value>")
        index = np.arange(n_frames)
        right = np.minimum(np.searchsorted(self.frames, index), len(self) - 1)
        left = np.maximum(right - 1, 0)
        take_left = index - self.frames[left] <= np.abs(self.frames[right] - index)
        return self.scores[np.where(take_left, left, right)]

    def labels_at(self, labels: np.ndarray, video: str = "") -> np.ndarray:
        """``labels[frames]``: per-frame labels (indexed by frame number) of the scored frames.

        Raises:
            ScoreTableError: a scored frame lies beyond the label array (names ``video``).
        """
        labels = np.asarray(labels).reshape(-1)
        if len(self) and self.frames[-1] >= labels.shape[0]:
            raise ScoreTableError(f"video {video!r}: scored frame {int(self.frames[-1])} is beyond "
                                  f"the {labels.shape[0]} frame labels")
        return labels[self.frames]

    def __repr__(self) -> str:
        span = f"{int(self.frames[0])}..{int(self.frames[-1])}" if len(self) else "none"
        return f"FrameScores(frames={len(self)}, span={span})"


def check_frame_labels(video_frames: Mapping[str, np.ndarray],
                       labels: Mapping[str, np.ndarray]) -> None:
    """Check each video's frame labels against its frames (videos without labels are skipped).

    A video whose frames are exactly ``0 .. T-1`` (the whole video was scored) needs exactly T
    labels: more or fewer means the labels belong to another video or another cut of it. A video
    scored on a subset of its frames (a stride, ``--start``) needs a label for its last frame.

    Raises:
        ScoreTableError: labels that are not 1-D, or of the wrong length (names the video and
            both counts).
    """
    for video, frames in video_frames.items():
        if video not in labels:
            continue
        video_labels = np.asarray(labels[video])
        if video_labels.ndim != 1:
            raise ScoreTableError(f"video {video!r}: labels must be 1-D (one per frame), "
                                  f"got shape {video_labels.shape}")
        n_labels, n_frames = int(video_labels.shape[0]), int(frames.shape[0])
        whole_video = n_frames and frames[0] == 0 and frames[-1] == n_frames - 1
        if whole_video and n_labels != n_frames:
            raise ScoreTableError(f"video {video!r} has {n_frames} frames (0..{n_frames - 1}) "
                                  f"but {n_labels} frame labels; labels must give one value per "
                                  f"frame")
        if n_frames and frames[-1] >= n_labels:
            raise ScoreTableError(f"video {video!r}: scored frame {int(frames[-1])} is beyond "
                                  f"the {n_labels} frame labels")


# ---------------------------------------------------------------------------- reducing rows
def _reduce_max(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    return np.maximum.reduceat(values, starts)


def _reduce_sum(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    return np.add.reduceat(values, starts)


def _reduce_mean(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    return np.add.reduceat(values, starts) / np.diff(np.append(starts, values.shape[0]))


_REDUCERS = {"max": _reduce_max, "mean": _reduce_mean, "sum": _reduce_sum}


def group_reducer(reduce: Reducer) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``f(values [R], group_starts [G]) -> [G]`` for a reduce name or a per-frame callable."""
    if callable(reduce):
        return lambda values, starts: np.array(
            [float(reduce(group)) for group in np.split(values, starts[1:])])
    if reduce not in _REDUCERS:
        raise ScoreTableError(f"reduce must be one of {sorted(_REDUCERS)} or a callable, "
                              f"got {reduce!r}")
    return _REDUCERS[reduce]


def reduce_to_frames(frames: np.ndarray, row_frames: np.ndarray, row_scores: np.ndarray,
                     reduce: Callable[[np.ndarray, np.ndarray], np.ndarray],
                     empty: str | float) -> np.ndarray:
    """Frame scores float64 [T] of one video's ``frames`` [T] from its rows (sorted by frame).

    Frames without rows get ``empty``; ``"min"`` means the lowest score among the frames that
    have rows (0.0 when none has).
    """
    position = np.searchsorted(frames, row_frames)
    starts = np.flatnonzero(np.diff(position, prepend=-1))
    values = reduce(row_scores, starts) if starts.size else np.zeros(0)
    fill = (float(values.min()) if values.size else 0.0) if empty == "min" else float(empty)
    out = np.full(frames.shape[0], fill)
    out[position[starts]] = values
    return out


def check_frame_options(empty: str | float, smooth: int) -> None:
    """Validate ``empty`` ("min" or a finite number) and ``smooth`` (odd int >= 1)."""
    is_number = (isinstance(empty, (int, float, np.integer, np.floating))
                 and not isinstance(empty, bool))
    if not (empty == "min" if isinstance(empty, str) else is_number and np.isfinite(empty)):
        raise ScoreTableError(f"empty must be 'min' or a finite number, got {empty!r}")
    _check_smooth(smooth)


def _check_smooth(smooth: int) -> None:
    """Validate ``smooth`` (odd int >= 1)."""
    is_int = isinstance(smooth, (int, np.integer)) and not isinstance(smooth, bool)
    if not (is_int and smooth >= 1 and smooth % 2 == 1):
        raise ScoreTableError(f"smooth must be an odd int >= 1 (window width in frames), "
                              f"got {smooth!r}")


def min_max(scores: np.ndarray) -> np.ndarray:
    """Scale to [0, 1]; a constant (or empty) array becomes zeros."""
    if scores.size == 0 or scores.max() == scores.min():
        return np.zeros_like(scores)
    return (scores - scores.min()) / (scores.max() - scores.min())


def smooth_and_normalize(scores: np.ndarray, smooth: int = 1,
                         normalize: bool = False) -> np.ndarray:
    """Post-process one video's frame scores float [T] as :meth:`ScoreTable.frame_scores` does
    (its steps 3 and 4): a temporal mean filter of odd width ``smooth``, the edges padded with
    the first/last score, then, with ``normalize``, min-max scaling to [0, 1] (a constant array
    gives zeros). For score arrays that do not come from a table (e.g. frame baselines).

    Returns:
        float64 [T].

    Raises:
        ScoreTableError: ``smooth`` is not an odd int >= 1.
    """
    _check_smooth(smooth)
    scores = np.asarray(scores, np.float64)
    if smooth > 1:
        scores = uniform_filter1d(scores, size=int(smooth), mode="nearest")
    return min_max(scores) if normalize else scores


# ---------------------------------------------------------------------------- pixel maps
@dataclass(frozen=True, eq=False)
class PixelMaps:
    """Per-pixel anomaly scores of some frames of one video (higher = more abnormal).

    Map ``i`` is the score map of frame ``frames[i]`` (aligned with the frame, not with the frame
    it was predicted from). Maps may be smaller than the frames (e.g. the network's input size):
    evaluation resizes them to the mask size, bilinearly (:mod:`stgraph.region_metrics`).

    Attributes:
        frames: int64 [T'], non-negative, strictly increasing.
        maps: float16 [T', h, w], finite (float16 holds magnitudes up to 65504).
    """

    frames: np.ndarray
    maps: np.ndarray

    def __post_init__(self) -> None:
        frames = _check_frame_indices(self.frames, "PixelMaps")
        raw = np.asarray(self.maps)
        if raw.ndim != 3 or raw.shape[0] != frames.shape[0] or 0 in raw.shape[1:]:
            raise ScoreTableError(f"PixelMaps needs maps [T', h, w] with one map per frame: got "
                                  f"maps of shape {raw.shape} for {frames.shape[0]} frames")
        if raw.dtype.kind not in "biuf":
            raise ScoreTableError(f"PixelMaps maps must hold numbers, got dtype {raw.dtype}")
        if not np.all(np.isfinite(raw)):
            bad = int(frames[np.argmin(np.isfinite(raw).reshape(raw.shape[0], -1).all(axis=1))])
            raise ScoreTableError(f"PixelMaps: the map of frame {bad} contains NaN or inf")
        with np.errstate(over="ignore"):
            maps = raw.astype(np.float16)
        if not np.all(np.isfinite(maps)):
            bad = int(frames[np.argmin(np.isfinite(maps).reshape(maps.shape[0], -1).all(axis=1))])
            raise ScoreTableError(f"PixelMaps: the map of frame {bad} holds values beyond the "
                                  f"float16 range (|x| > 65504); rescale the scores")
        object.__setattr__(self, "frames", readonly(frames))
        object.__setattr__(self, "maps", readonly(maps))  # astype copied

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        """(h, w) of every map."""
        return int(self.maps.shape[1]), int(self.maps.shape[2])

    def map_of(self, frame: int) -> np.ndarray | None:
        """float16 [h, w]: the map of ``frame``, or None when it has none."""
        k = int(np.searchsorted(self.frames, frame))
        return self.maps[k] if k < len(self) and self.frames[k] == frame else None

    def select(self, frames: Sequence[int] | np.ndarray) -> "PixelMaps | None":
        """The maps of those of ``frames`` that have one (None when none has)."""
        keep = np.isin(self.frames, np.asarray(frames, np.int64))
        return PixelMaps(self.frames[keep], self.maps[keep]) if keep.any() else None

    @classmethod
    def concat(cls, parts: Sequence["PixelMaps"], video: str = "") -> "PixelMaps":
        """One video's maps from several chunks (same map size, no frame twice)."""
        shapes = {part.shape for part in parts}
        if len(shapes) > 1:
            raise ScoreTableError(f"video {video!r}: pixel maps of different sizes {sorted(shapes)}")
        frames = np.concatenate([part.frames for part in parts])
        order = np.argsort(frames, kind="stable")
        repeated = frames[order][1:][np.diff(frames[order]) == 0]
        if repeated.size:
            raise ScoreTableError(f"video {video!r}: two pixel maps for frame {int(repeated[0])}")
        return cls(frames[order], np.concatenate([part.maps for part in parts])[order])

    def equals(self, other: "PixelMaps") -> bool:
        return (np.array_equal(self.frames, other.frames)
                and np.array_equal(self.maps, other.maps))

    def __repr__(self) -> str:
        return f"PixelMaps(frames={len(self)}, size={self.shape[0]}x{self.shape[1]})"
