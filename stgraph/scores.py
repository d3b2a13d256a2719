"""Per-object anomaly scores: the ``ScoreTable`` every stgraph model returns, and frame scores.

A :class:`ScoreTable` holds **one row per object per frame**, stored as columns (1-D numpy arrays
of one length N)::

    video        str      [N]  video name
    frame        int64    [N]  frame index in the video (``Detections.frame_index``, >= 0)
    object_id    int64    [N]  row of the object in its frame's ``Detections`` (>= 0)
    x1 y1 x2 y2  float32  [N]  box, xyxy pixels
    label        int64    [N]  class id
    class_name   str      [N]  class name
    det_score    float32  [N]  detector confidence
    score        float64  [N]  anomaly score, higher = more abnormal (finite)

plus any number of **extra columns** (``track_id``, per-object explanation terms, ...: 1-D bool,
int64, float64 or str), which every operation and export keeps. ``video_frames`` maps each video
to all of its frame indices (int64 [T], increasing), so frames in which nothing was detected are
known: frame-level evaluation needs them (:meth:`ScoreTable.frame_scores`).

Tables are immutable: the columns are read-only arrays kept sorted by (video, frame, object_id)
and every operation returns a new table. Files are written atomically (:mod:`stgraph.fileio`).

Example:
    >>> table = ScoreTable.from_detections("01", detections, scores)       # doctest: +SKIP
    >>> table.frame_scores(reduce="max", smooth=5)["01"].scores              # doctest: +SKIP
    >>> ScoreTable.read_csv(table.to_csv("scores.csv")) == table             # doctest: +SKIP
    True
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence, Union

import numpy as np
from scipy.ndimage import uniform_filter1d

from detectors.base import Detections
from detectors.files import require_file
from stgraph.fileio import atomic_path, atomic_write_text

__all__ = ["ScoreTable", "FrameScores", "ScoreTableError", "REQUIRED_COLUMNS", "FORMAT_NAME",
           "FORMAT_VERSION", "smooth_and_normalize"]

FORMAT_NAME = "stgraph.ScoreTable"
FORMAT_VERSION = 1

#: Column name -> type of every required column, in file order.
_REQUIRED_TYPES: dict[str, str] = {
    "video": "str", "frame": "int64", "object_id": "int64",
    "x1": "float32", "y1": "float32", "x2": "float32", "y2": "float32",
    "label": "int64", "class_name": "str", "det_score": "float32", "score": "float64",
}
REQUIRED_COLUMNS: tuple[str, ...] = tuple(_REQUIRED_TYPES)

#: Column type name -> numpy dtype; the names are also what JSON files store under "dtypes".
_DTYPES: dict[str, Any] = {"str": np.str_, "bool": np.bool_, "int64": np.int64,
                           "float32": np.float32, "float64": np.float64}
#: Column type name -> numpy dtype kinds that convert to it without losing meaning.
_ACCEPTED_KINDS = {"str": "U", "bool": "b", "int64": "biu", "float32": "biuf", "float64": "biuf"}
#: object_id of the CSV rows that only register a frame without objects.
_NO_OBJECT = -1

#: ``frame_scores(reduce=...)``: a name or ``f(object_scores [k]) -> float``.
Reducer = Union[str, Callable[[np.ndarray], float]]


class ScoreTableError(ValueError):
    """Malformed scores or score files: missing columns, unequal lengths, NaN scores, bad files."""


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
        frames = np.asarray(self.frames)
        scores = np.asarray(self.scores, dtype=np.float64)
        if frames.ndim != 1 or scores.ndim != 1 or frames.shape != scores.shape:
            raise ScoreTableError(f"FrameScores needs 1-D frames and scores of one length, "
                                  f"got shapes {frames.shape} and {scores.shape}")
        if frames.size and frames.dtype.kind not in "iu":
            raise ScoreTableError(f"FrameScores.frames must be integers, got dtype {frames.dtype}")
        if np.any(np.diff(frames) <= 0) or np.any(frames < 0):
            raise ScoreTableError("FrameScores.frames must be non-negative and strictly increasing")
        if not np.all(np.isfinite(scores)):
            bad = int(frames[np.argmin(np.isfinite(scores))])
            raise ScoreTableError(f"FrameScores.scores contain NaN or inf (first at frame {bad})")
        object.__setattr__(self, "frames", _readonly(frames.astype(np.int64)))
        object.__setattr__(self, "scores", _readonly(scores.copy()))

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


def _reduce_max(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    return np.maximum.reduceat(values, starts)


def _reduce_sum(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    return np.add.reduceat(values, starts)


def _reduce_mean(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    return np.add.reduceat(values, starts) / np.diff(np.append(starts, values.shape[0]))


_REDUCERS = {"max": _reduce_max, "mean": _reduce_mean, "sum": _reduce_sum}


def _group_reducer(reduce: Reducer) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``f(values [R], group_starts [G]) -> [G]`` for a reduce name or a per-frame callable."""
    if callable(reduce):
        return lambda values, starts: np.array(
            [float(reduce(group)) for group in np.split(values, starts[1:])])
    if reduce not in _REDUCERS:
        raise ScoreTableError(f"reduce must be one of {sorted(_REDUCERS)} or a callable, "
                              f"got {reduce!r}")
    return _REDUCERS[reduce]


def _reduce_to_frames(frames: np.ndarray, row_frames: np.ndarray, row_scores: np.ndarray,
                      reduce: Callable[[np.ndarray, np.ndarray], np.ndarray],
                      empty: str | float) -> np.ndarray:
    """Frame scores float64 [T] of one video from its object rows (sorted by frame).

    Frames without objects get ``empty``; ``"min"`` means the lowest score among the frames
    that have objects (0.0 when none has).
    """
    position = np.searchsorted(frames, row_frames)
    starts = np.flatnonzero(np.diff(position, prepend=-1))
    values = reduce(row_scores, starts) if starts.size else np.zeros(0)
    fill = (float(values.min()) if values.size else 0.0) if empty == "min" else float(empty)
    out = np.full(frames.shape[0], fill)
    out[position[starts]] = values
    return out


def _check_frame_options(empty: str | float, smooth: int) -> None:
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


def _min_max(scores: np.ndarray) -> np.ndarray:
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
    return _min_max(scores) if normalize else scores


# ---------------------------------------------------------------------------- column helpers
def _readonly(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def _type_name(array: np.ndarray) -> str:
    """Column type name (a key of ``_DTYPES``) of a stored column."""
    kind = array.dtype.kind
    if kind == "f":
        return "float32" if array.dtype.itemsize == 4 else "float64"
    return {"U": "str", "b": "bool", "i": "int64"}[kind]


def _extra_type(name: str, array: np.ndarray) -> str:
    """Type an extra column is stored as: bool, int64, float64 or str."""
    kind = array.dtype.kind
    for type_name, kinds in (("bool", "b"), ("int64", "iu"), ("float64", "f"), ("str", "U")):
        if kind in kinds:
            return type_name
    raise ScoreTableError(f"column {name!r} must hold numbers, bools or strings, "
                          f"got dtype {array.dtype}")


def _as_column(name: str, values: Any, type_name: str | None = None) -> np.ndarray:
    """A 1-D array of ``type_name`` (inferred for extra columns); clear error if it does not fit."""
    array = np.asarray(values)
    if array.dtype.kind == "O":  # e.g. strings from pandas
        array = np.asarray(array.tolist())
    if array.ndim != 1:
        raise ScoreTableError(f"column {name!r} must be 1-D, got shape {array.shape}")
    type_name = type_name or _extra_type(name, array)
    if array.size and array.dtype.kind not in _ACCEPTED_KINDS[type_name]:
        raise ScoreTableError(f"column {name!r} must hold {type_name} values, "
                              f"got dtype {array.dtype}")
    return array.astype(_DTYPES[type_name])


def _frames_by_video(videos: np.ndarray, frames: np.ndarray) -> dict[str, np.ndarray]:
    """Group ``frames`` [R] by ``videos`` [R]: {video: frames} (not deduplicated)."""
    names, inverse = np.unique(videos, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(np.bincount(inverse, minlength=names.shape[0]))[:-1]
    return {str(name): group for name, group in zip(names, np.split(frames[order], bounds))}


def _merge_video_frames(given: Mapping[str, Sequence[int]] | None, videos: np.ndarray,
                        frames: np.ndarray) -> dict[str, np.ndarray]:
    """``given`` plus the frames of the rows: {video: sorted unique int64 frames}, videos sorted."""
    merged: dict[str, list[np.ndarray]] = {}
    for name, video_frames in (given or {}).items():
        if not isinstance(name, str):
            raise ScoreTableError(f"video_frames keys must be video names (str), got {name!r}")
        values = np.asarray(video_frames).reshape(-1)
        merged[name] = [_as_column(f"video_frames[{name!r}]", values, "int64")]
    for name, row_frames in _frames_by_video(videos, frames).items():
        merged.setdefault(name, []).append(row_frames)
    out = {name: np.unique(np.concatenate(merged[name])) for name in sorted(merged)}
    for name, video_frames in out.items():
        if video_frames.size == 0:
            raise ScoreTableError(f"video {name!r} has no frames")
        if video_frames[0] < 0:
            raise ScoreTableError(f"video {name!r} has negative frame index {int(video_frames[0])}")
        _readonly(video_frames)
    return out


def _sorted_rows(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Columns reordered by (video, frame, object_id)."""
    video_code = np.unique(columns["video"], return_inverse=True)[1]
    order = np.lexsort((columns["object_id"], columns["frame"], video_code))
    return {name: values[order] for name, values in columns.items()}


def _check_rows(columns: Mapping[str, np.ndarray]) -> None:
    """Finite scores, non-negative ids, unique (video, frame, object_id); rows must be sorted."""
    video, frame, object_id = columns["video"], columns["frame"], columns["object_id"]

    def where(row: int) -> str:
        return (f"video {str(video[row])!r} frame {int(frame[row])} "
                f"(object_id {int(object_id[row])})")

    problems = (
        (~np.isfinite(columns["score"]), "score is NaN or inf"),
        (frame < 0, "frame index is negative"),
        (object_id < 0, "object_id is negative"),
    )
    for bad, what in problems:
        if bad.any():
            raise ScoreTableError(f"{what} for {int(bad.sum())} object(s), "
                                  f"first in {where(int(np.argmax(bad)))}")
    repeated = ((video[1:] == video[:-1]) & (frame[1:] == frame[:-1])
                & (object_id[1:] == object_id[:-1]))
    if repeated.any():
        raise ScoreTableError(f"duplicate row: {where(int(np.argmax(repeated)))} appears twice")


# ---------------------------------------------------------------------------- the table
class ScoreTable:
    """One row per object per frame, with its box and anomaly score (see the module docstring).

    Args:
        columns: column name -> 1-D values of one length N; must hold :attr:`REQUIRED`; any
            other key is an extra column (bool, integer, float or str values; stored as bool,
            int64, float64 or str).
        video_frames: video -> all its frame indices (frames without objects included). Videos
            and frames that appear in the rows are added; every video must end up with a frame.

    Raises:
        ScoreTableError: missing columns, unequal lengths, a NaN/inf score (the message names
            the video and frame), negative ids, a duplicate (video, frame, object_id).
    """

    REQUIRED: tuple[str, ...] = REQUIRED_COLUMNS

    def __init__(self, columns: Mapping[str, Any],
                 video_frames: Mapping[str, Sequence[int]] | None = None):
        if not isinstance(columns, Mapping):
            raise ScoreTableError(f"ScoreTable columns must be a mapping name -> values, "
                                  f"got {type(columns).__name__}")
        missing = [name for name in self.REQUIRED if name not in columns]
        if missing:
            raise ScoreTableError(f"ScoreTable columns lack {missing}; "
                                  f"required are {list(self.REQUIRED)}")
        names = [*self.REQUIRED, *(name for name in columns if name not in _REQUIRED_TYPES)]
        data = {name: _as_column(name, columns[name], _REQUIRED_TYPES.get(name)) for name in names}
        lengths = {name: values.shape[0] for name, values in data.items()}
        if len(set(lengths.values())) > 1:
            raise ScoreTableError(f"ScoreTable columns must have one length, got {lengths}")
        data = _sorted_rows(data)
        _check_rows(data)
        self._columns = {name: _readonly(values) for name, values in data.items()}
        self.video_frames: dict[str, np.ndarray] = _merge_video_frames(
            video_frames, data["video"], data["frame"])

    def _subset(self, rows: slice | np.ndarray,
                video_frames: dict[str, np.ndarray]) -> "ScoreTable":
        """Rows ``rows`` (a slice or mask: order is kept, so no re-validation is needed)."""
        new = type(self).__new__(type(self))
        new._columns = {name: _readonly(values[rows]) for name, values in self._columns.items()}
        new.video_frames = video_frames
        return new

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_detections(cls, video: str, detections: Sequence[Detections],
                        scores: Sequence[np.ndarray],
                        extra: Mapping[str, Sequence[np.ndarray]] | None = None) -> "ScoreTable":
        """Table of one video from its per-frame detections and per-object scores.

        Args:
            video: video name.
            detections: one ``Detections`` per frame (frames without objects included, so they
                are registered in ``video_frames``); frame indices must be distinct.
            scores: ``scores[i]`` float [N_i], the anomaly score of each row of ``detections[i]``.
            extra: extra columns, each given like ``scores`` (one array [N_i] per frame). When
                any frame carries ``track_ids``, a ``track_id`` column is added (-1 = untracked)
                unless ``extra`` has its own ``track_id``.

        Raises:
            ScoreTableError: a length mismatch (names the frame), repeated frame indices, no frames.
        """
        if not isinstance(video, str):
            raise ScoreTableError(f"from_detections: video must be a name (str), got {video!r}")
        detections, scores = list(detections), list(scores)
        if not detections:
            raise ScoreTableError(f"from_detections: video {video!r} has no frames")
        if len(scores) != len(detections):
            raise ScoreTableError(f"from_detections: video {video!r} has {len(detections)} frames "
                                  f"of detections but {len(scores)} score arrays")
        frame_ids = np.array([d.frame_index for d in detections], np.int64)
        unique, repeats = np.unique(frame_ids, return_counts=True)
        if np.any(repeats > 1):
            raise ScoreTableError(f"from_detections: video {video!r} repeats frame indices "
                                  f"{unique[repeats > 1].tolist()}")
        counts = np.array([len(d) for d in detections], np.int64)
        boxes = np.concatenate([d.boxes for d in detections])
        columns: dict[str, Any] = {
            "video": np.full(int(counts.sum()), video),
            "frame": np.repeat(frame_ids, counts),
            "object_id": np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts),
            "x1": boxes[:, 0], "y1": boxes[:, 1], "x2": boxes[:, 2], "y2": boxes[:, 3],
            "label": np.concatenate([d.labels for d in detections]),
            "class_name": np.array([name for d in detections for name in d.names], dtype=np.str_),
            "det_score": np.concatenate([d.scores for d in detections]),
            "score": _per_frame_column(video, "scores", scores, detections, np.float64),
        }
        if any(d.track_ids is not None for d in detections):
            columns["track_id"] = np.concatenate(
                [np.full(len(d), -1) if d.track_ids is None else d.track_ids for d in detections])
        for name, per_frame in (extra or {}).items():
            if name in _REQUIRED_TYPES:
                raise ScoreTableError(f"from_detections: extra column {name!r} clashes with a "
                                      f"required column")
            per_frame = list(per_frame)
            if len(per_frame) != len(detections):
                raise ScoreTableError(f"from_detections: extra column {name!r} has "
                                      f"{len(per_frame)} arrays for {len(detections)} frames "
                                      f"(video {video!r})")
            columns[name] = _per_frame_column(video, f"extra column {name!r}", per_frame,
                                              detections)
        return cls(columns, {video: frame_ids})

    @classmethod
    def concat(cls, tables: Sequence["ScoreTable"]) -> "ScoreTable":
        """One table from several (e.g. one per video, or chunks of one video).

        All tables must have the same columns. Frames of a video seen in several tables are
        merged; a repeated (video, frame, object_id) row is an error.
        """
        tables = list(tables)
        if not tables:
            raise ScoreTableError("ScoreTable.concat needs at least one table")
        names = tables[0].columns
        for i, table in enumerate(tables[1:], start=1):
            if set(table.columns) != set(names):
                raise ScoreTableError(f"ScoreTable.concat: table {i} has columns "
                                      f"{list(table.columns)}, table 0 has {list(names)}")
        columns = {}
        for name in names:
            try:
                columns[name] = np.concatenate([table._columns[name] for table in tables])
            except TypeError as exc:  # numpy's DTypePromotionError, e.g. str with int
                raise ScoreTableError(f"ScoreTable.concat: column {name!r} has incompatible "
                                      f"types: {exc}") from exc
        frames: dict[str, list[np.ndarray]] = {}
        for table in tables:
            for video, video_frames in table.video_frames.items():
                frames.setdefault(video, []).append(video_frames)
        return cls(columns, {video: np.concatenate(parts) for video, parts in frames.items()})

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        """Number of object rows (frames without objects are not rows)."""
        return int(self._columns["score"].shape[0])

    @property
    def columns(self) -> tuple[str, ...]:
        """Column names: the required ones, then the extra ones."""
        return tuple(self._columns)

    @property
    def extra_columns(self) -> tuple[str, ...]:
        return tuple(name for name in self._columns if name not in _REQUIRED_TYPES)

    @property
    def videos(self) -> list[str]:
        """Video names, sorted."""
        return list(self.video_frames)

    def column(self, name: str) -> np.ndarray:
        """The read-only values [N] of one column (rows sorted by video, frame, object_id)."""
        if name not in self._columns:
            raise KeyError(f"ScoreTable has no column {name!r}; columns are {list(self._columns)}")
        return self._columns[name]

    __getitem__ = column

    def _rows_of(self, video: str) -> slice:
        if video not in self.video_frames:
            raise KeyError(f"ScoreTable has no video {video!r}; videos are {self.videos}")
        video_column = self._columns["video"]
        return slice(int(np.searchsorted(video_column, video, "left")),
                     int(np.searchsorted(video_column, video, "right")))

    def select(self, video: str | Sequence[str]) -> "ScoreTable":
        """The table restricted to one video or several (unknown names raise ``KeyError``)."""
        videos = [video] if isinstance(video, str) else list(video)
        rows = np.zeros(len(self), bool)
        for name in videos:
            rows[self._rows_of(name)] = True
        return self._subset(rows, {name: self.video_frames[name] for name in sorted(set(videos))})

    def objects_in_frame(self, video: str, frame: int) -> "ScoreTable":
        """The rows of one frame (an empty table for a known frame without objects).

        Raises:
            KeyError: unknown video, or a frame that is not among the video's frames.
        """
        rows = self._rows_of(video)
        if not np.isin(frame, self.video_frames[video]):
            raise KeyError(f"video {video!r} has no frame {frame}")
        frame_column = self._columns["frame"][rows]
        start = rows.start + int(np.searchsorted(frame_column, frame, "left"))
        stop = rows.start + int(np.searchsorted(frame_column, frame, "right"))
        return self._subset(slice(start, stop), {video: _readonly(np.array([frame], np.int64))})

    # ------------------------------------------------------------------ frame level
    def frame_scores(self, reduce: Reducer = "max", empty: str | float = "min",
                     normalize: bool = False, smooth: int = 1) -> dict[str, FrameScores]:
        """Score of every frame of every video, from the scores of its objects.

        Steps, per video, in this order:

        1. ``reduce`` the object scores of each frame: ``"max"`` (the most abnormal object makes
           the frame abnormal; the usual choice), ``"mean"``, ``"sum"``, or a callable
           ``f(scores [k]) -> float`` (called once per frame, so slower).
        2. Frames without objects get ``empty``. ``"min"`` (default) gives them the lowest frame
           score of that video among frames with objects (0.0 when the video has no object at
           all): with nothing detected there is nothing abnormal to see, so such a frame must
           not look anomalous, and it must not stretch the min-max range of step 4. A number
           gives them that constant.
        3. ``smooth`` (odd width >= 1): temporal mean filter over the frame sequence, the edges
           padded with the first/last score (``scipy.ndimage.uniform_filter1d``,
           ``mode="nearest"``). The window counts scored frames, so with frame-strided scoring
           it spans more video frames.
        4. ``normalize``: per-video min-max scaling to [0, 1] (a constant video gives zeros).

        Returns:
            {video: FrameScores} with all frames of ``video_frames[video]``, videos sorted.
        """
        reducer = _group_reducer(reduce)
        _check_frame_options(empty, smooth)
        out = {}
        for video, frames in self.video_frames.items():
            rows = self._rows_of(video)
            scores = _reduce_to_frames(frames, self._columns["frame"][rows],
                                       self._columns["score"][rows], reducer, empty)
            if not np.all(np.isfinite(scores)):
                raise ScoreTableError(f"reduce={reduce!r} gave a NaN or inf frame score "
                                      f"in video {video!r}")
            out[video] = FrameScores(frames, smooth_and_normalize(scores, smooth, normalize))
        return out

    # ------------------------------------------------------------------ export
    def to_csv(self, path: str | Path) -> Path:
        """Write a CSV (UTF-8, header, one row per object), atomically; returns ``path``.

        Each frame without objects is written as a row with ``object_id = -1`` and empty box,
        class and score fields, so :meth:`read_csv` restores ``video_frames`` exactly.
        """
        empty_videos, empty_frames = self._frames_without_objects()
        n_empty = empty_frames.shape[0]
        placeholder = {"video": empty_videos, "frame": empty_frames.astype(np.str_),
                       "object_id": np.full(n_empty, str(_NO_OBJECT))}
        video_code = np.searchsorted(np.array(self.videos, dtype=np.str_),
                                     np.concatenate([self._columns["video"], empty_videos]))
        frame = np.concatenate([self._columns["frame"], empty_frames])
        object_id = np.concatenate([self._columns["object_id"], np.full(n_empty, _NO_OBJECT)])
        order = np.lexsort((object_id, frame, video_code))
        text = [np.concatenate([values.astype(np.str_), placeholder.get(name, np.full(n_empty, ""))]
                               )[order].tolist() for name, values in self._columns.items()]
        return _write_csv(path, self.columns, zip(*text))

    def _frames_without_objects(self) -> tuple[np.ndarray, np.ndarray]:
        """(video [M] str, frame [M] int64) of every frame that has no object row."""
        videos, frames = [], []
        for video, video_frames in self.video_frames.items():
            missing = np.setdiff1d(video_frames, self._columns["frame"][self._rows_of(video)])
            videos.append(np.full(missing.shape[0], video))
            frames.append(missing)
        if not frames:
            return np.zeros(0, np.str_), np.zeros(0, np.int64)
        return np.concatenate(videos), np.concatenate(frames)

    @classmethod
    def read_csv(cls, path: str | Path) -> "ScoreTable":
        """Inverse of :meth:`to_csv`.

        Required columns get their fixed types; extra columns are read as int64 when every value
        is an integer, float64 when every value is a number, bool when every value is True/False,
        str otherwise (JSON keeps exact types, e.g. of a str column of digits).

        Raises:
            FileNotFoundError: no such file.
            ScoreTableError: not a ScoreTable CSV (names the file and the missing columns), or
                bad values (names the file and the column, video or frame).
        """
        path = require_file(path, "score table")
        try:
            with open(path, newline="", encoding="utf-8") as handle:
                records = list(csv.reader(handle))
        except (UnicodeDecodeError, csv.Error) as exc:
            raise ScoreTableError(f"{path} is not a ScoreTable CSV file: {exc}") from exc
        if not records:
            raise ScoreTableError(f"{path} is not a ScoreTable CSV file: it is empty")
        header, body = records[0], records[1:]
        missing = [name for name in REQUIRED_COLUMNS if name not in header]
        if missing:
            raise ScoreTableError(f"{path} is not a ScoreTable CSV file: its header lacks "
                                  f"columns {missing}")
        if len(set(header)) != len(header):
            raise ScoreTableError(f"{path}: the header repeats a column name: {header}")
        field_counts = np.fromiter(map(len, body), dtype=np.int64, count=len(body))
        if np.any(field_counts != len(header)):
            bad = int(np.argmax(field_counts != len(header)))
            raise ScoreTableError(f"{path}: record {bad + 2} has {field_counts[bad]} fields, "
                                  f"the header has {len(header)}")
        cells = np.array(body, dtype=np.str_).reshape(len(body), len(header))
        text = dict(zip(header, cells.T))
        try:
            all_frames = _parse_text("frame", text["frame"], "int64")
            objects = text["object_id"] != str(_NO_OBJECT)
            columns = {name: _parse_text(name, values[objects], _REQUIRED_TYPES.get(name))
                       for name, values in text.items()}
            return cls(columns, _frames_by_video(text["video"], all_frames))
        except ScoreTableError as exc:
            raise ScoreTableError(f"{path}: {exc}") from exc

    def to_json(self, path: str | Path) -> Path:
        """Write a JSON file, atomically; returns ``path``. Layout::

            {"format": "stgraph.ScoreTable", "version": 1,
             "videos": {name: {"frames": [...]}},
             "dtypes": {column: type}, "columns": {column: [...]}}

        ``dtypes`` holds each column's type (str, bool, int64, float32, float64) so that
        :meth:`read_json` restores it exactly. NaN (possible in extra float columns) is written
        as ``null``; ±inf as the ``Infinity`` token that Python's json reads.
        """
        doc = {
            "format": FORMAT_NAME, "version": FORMAT_VERSION,
            "videos": {video: {"frames": frames.tolist()}
                       for video, frames in self.video_frames.items()},
            "dtypes": {name: _type_name(values) for name, values in self._columns.items()},
            "columns": {name: _json_values(values) for name, values in self._columns.items()},
        }
        return atomic_write_text(path, json.dumps(doc, ensure_ascii=False))

    @classmethod
    def read_json(cls, path: str | Path) -> "ScoreTable":
        """Inverse of :meth:`to_json`.

        Raises:
            FileNotFoundError: no such file.
            ScoreTableError: not a ScoreTable JSON file (names the file and what is missing), or
                bad values.
        """
        path = require_file(path, "score table")
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ScoreTableError(f"{path} is not a ScoreTable JSON file: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
            found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
            raise ScoreTableError(f"{path} is not a ScoreTable JSON file: \"format\" is "
                                  f"{found!r}, expected {FORMAT_NAME!r}")
        version = doc.get("version")
        if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
            raise ScoreTableError(f"{path}: ScoreTable format version {version!r} is not "
                                  f"supported (this stgraph reads up to {FORMAT_VERSION})")
        missing = [key for key in ("videos", "columns") if not isinstance(doc.get(key), dict)]
        if missing:
            raise ScoreTableError(f"{path} is not a ScoreTable JSON file: it lacks the "
                                  f"{missing} mapping(s)")
        types = doc.get("dtypes") if isinstance(doc.get("dtypes"), dict) else {}
        try:
            video_frames = {}
            for video, entry in doc["videos"].items():
                if not isinstance(entry, dict) or "frames" not in entry:
                    raise ScoreTableError(f"video {video!r} lacks its \"frames\" list")
                video_frames[video] = entry["frames"]
            columns = {name: _column_from_json(name, values,
                                               _REQUIRED_TYPES.get(name) or types.get(name))
                       for name, values in doc["columns"].items()}
            return cls(columns, video_frames)
        except ScoreTableError as exc:
            raise ScoreTableError(f"{path}: {exc}") from exc

    def frame_scores_to_csv(self, path: str | Path, labels: Mapping[str, np.ndarray] | None = None,
                            reduce: Reducer = "max", empty: str | float = "min",
                            normalize: bool = False, smooth: int = 1) -> Path:
        """Write ``video,frame,score`` (plus ``label`` when ``labels`` are given), a row per frame.

        ``labels`` maps each video to its 0/1 frame labels indexed by frame number; the other
        arguments are those of :meth:`frame_scores`. Written atomically; returns ``path``.
        """
        frame_scores = self.frame_scores(reduce=reduce, empty=empty, normalize=normalize,
                                         smooth=smooth)
        if labels is not None:
            missing = [video for video in frame_scores if video not in labels]
            if missing:
                raise ScoreTableError(f"frame_scores_to_csv: no labels for videos {missing}")
        header = ["video", "frame", "score"] + (["label"] if labels is not None else [])
        parts = []
        for video, fs in frame_scores.items():
            fields = [np.full(len(fs), video), fs.frames.astype(np.str_), fs.scores.astype(np.str_)]
            if labels is not None:
                fields.append(fs.labels_at(labels[video], video).astype(np.int64).astype(np.str_))
            parts.append(fields)
        columns = [np.concatenate(column).tolist() for column in zip(*parts)]
        return _write_csv(path, header, zip(*columns))

    def to_pandas(self):
        """A ``pandas.DataFrame`` with one row per object (frames without objects are not rows;
        ``video_frames`` keeps them). Needs pandas (``pip install pandas``)."""
        try:
            import pandas as pd
        except ImportError as exc:
            raise ImportError("ScoreTable.to_pandas needs pandas: pip install pandas") from exc
        return pd.DataFrame({name: np.array(values) for name, values in self._columns.items()})

    # ------------------------------------------------------------------ comparison / display
    def __eq__(self, other: object) -> bool:
        """Same columns (names, order, types; str width aside), same values (NaN equal to NaN),
        same video_frames."""
        if not isinstance(other, ScoreTable):
            return NotImplemented
        if self.columns != other.columns or list(self.video_frames) != list(other.video_frames):
            return False
        same_columns = all(
            _type_name(a) == _type_name(b) and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
            for a, b in ((self._columns[n], other._columns[n]) for n in self.columns))
        return same_columns and all(np.array_equal(frames, other.video_frames[video])
                                    for video, frames in self.video_frames.items())

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        n_frames = sum(frames.shape[0] for frames in self.video_frames.values())
        extra = f", extra={list(self.extra_columns)}" if self.extra_columns else ""
        return (f"ScoreTable(videos={len(self.video_frames)}, frames={n_frames}, "
                f"objects={len(self)}{extra})")


# ---------------------------------------------------------------------------- file helpers
def _per_frame_column(video: str, what: str, per_frame: Sequence[Any],
                      detections: Sequence[Detections], dtype: Any = None) -> np.ndarray:
    """Concatenate per-frame arrays [N_i] after checking each against its frame's object count."""
    parts = []
    for values, det in zip(per_frame, detections):
        try:
            array = np.atleast_1d(np.asarray(values, dtype=dtype))
        except (TypeError, ValueError) as exc:
            raise ScoreTableError(f"{what} of video {video!r} frame {det.frame_index}: "
                                  f"{exc}") from exc
        if array.ndim != 1 or array.shape[0] != len(det):
            raise ScoreTableError(f"{what} of video {video!r} frame {det.frame_index}: got shape "
                                  f"{array.shape} for {len(det)} objects")
        parts.append(array)
    non_empty = [part for part in parts if part.size] or parts  # empty parts may carry any dtype
    return np.concatenate(non_empty)


def _parse_text(name: str, text: np.ndarray, type_name: str | None) -> np.ndarray:
    """Parse a CSV column [R] of str as ``type_name`` (inferred when None, see ``read_csv``)."""
    if type_name is None:
        for candidate in ("int64", "float64"):
            try:
                return text.astype(_DTYPES[candidate])
            except (ValueError, OverflowError):
                continue
        if text.size and np.isin(text, ("True", "False")).all():
            return text == "True"
        return text
    if type_name == "str":
        return text
    try:
        return text.astype(_DTYPES[type_name])
    except (ValueError, OverflowError) as exc:
        raise ScoreTableError(f"column {name!r} holds a value that is not {type_name}: "
                              f"{exc}") from exc


def _json_values(values: np.ndarray) -> list:
    """JSON-ready list: NaN becomes null; float32 goes through its shortest repr (0.1, not
    0.10000000149011612)."""
    if values.dtype.kind != "f":
        return values.tolist()
    as_float64 = values.astype(np.str_).astype(np.float64) if values.dtype == np.float32 else values
    return np.where(np.isnan(as_float64), None, as_float64).tolist()


def _column_from_json(name: str, values: Any, type_name: str | None) -> np.ndarray:
    """A column read from JSON (null -> NaN in float columns; type inferred when None)."""
    if type_name is not None and type_name not in _DTYPES:
        raise ScoreTableError(f"column {name!r} has unknown type {type_name!r}; "
                              f"known are {sorted(_DTYPES)}")
    if type_name in ("float32", "float64"):
        try:
            values = np.array(values, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ScoreTableError(f"column {name!r} holds a value that is not a number: "
                                  f"{exc}") from exc
    return _as_column(name, values, type_name)


def _write_csv(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[str]]) -> Path:
    """Write a UTF-8 CSV atomically (a failure leaves any previous file untouched)."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return Path(path)
