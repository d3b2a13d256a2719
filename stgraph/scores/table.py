"""The :class:`ScoreTable`: every score a method gives, one row per scored thing, as columns.

Rows come in three kinds (column ``kind``):

* ``"object"``: a detected object (``object_id`` = its row in the frame's ``Detections``, box,
  class and detector confidence of the detection);
* ``"frame"``: the whole frame (``object_id = 0``, box ``[0, 0, W, H]`` or NaN when the image size
  is unknown, ``label = -1``, ``class_name = ""``, ``det_score = NaN``);
* ``"patch"``: a cell of a fixed patch grid (``object_id`` = patch index within the frame, unique
  across grids; box = the patch's pixel box; ``class_name`` = the grid's name, e.g.
  ``"grid4x7"``; ``label`` = the grid's index).

Columns (1-D numpy arrays of one length N)::

    video        str      [N]  video name
    kind         str      [N]  "object", "frame" or "patch"
    frame        int64    [N]  frame index in the video (>= 0)
    object_id    int64    [N]  see above (>= 0); (video, kind, frame, object_id) is unique
    x1 y1 x2 y2  float32  [N]  box, xyxy pixels (NaN: unknown)
    label        int64    [N]  class id / grid index / -1
    class_name   str      [N]  class name / grid name / ""
    det_score    float32  [N]  detector confidence (NaN for frame rows)
    score        float64  [N]  anomaly score, higher = more abnormal (finite)

plus any number of **extra columns** (``track_id``, per-object explanation terms, ...: 1-D bool,
int64, float64 or str), which every operation and export keeps. ``video_frames`` maps each video
to all of its frame indices (int64 [T], increasing), so frames without any row (nothing
detected; the first frames of a method that predicts from history) are known: frame-level
evaluation needs them (:meth:`ScoreTable.frame_scores`). ``pixel_maps`` optionally holds
per-pixel score maps of a video's frames (:class:`~stgraph.scores.frames.PixelMaps`).

Tables are immutable: the columns are read-only arrays kept sorted by (video, frame, kind in the
order of :data:`KINDS`, object_id) and every operation returns a new table. Files:
:mod:`stgraph.scores.io`.

Example:
    >>> table = ScoreTable.from_detections("01", detections, scores)       # doctest: +SKIP
    >>> table.frame_scores(reduce="max", smooth=5)["01"].scores              # doctest: +SKIP
    >>> ScoreTable.read_csv(table.to_csv("scores.csv")) == table             # doctest: +SKIP
    True
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from detectors.base import Detections
from stgraph.scores import io
from stgraph.scores.columns import (COLUMNS, KINDS, REQUIRED_TYPES, ScoreTableError, as_column,
                                    check_kind, frames_by_video, kind_codes, merge_video_frames,
                                    readonly, type_name)
from stgraph.scores.frames import (FrameScores, PixelMaps, Reducer, check_frame_labels,
                                   check_frame_options, group_reducer, reduce_to_frames,
                                   smooth_and_normalize)

__all__ = ["ScoreTable", "patch_grid_name"]

_BOX = ("x1", "y1", "x2", "y2")


def patch_grid_name(rows: int, cols: int) -> str:
    """The ``class_name`` of the patch rows of a ``rows`` x ``cols`` grid: ``"grid4x7"``."""
    return f"grid{int(rows)}x{int(cols)}"


# ---------------------------------------------------------------------------- row checks
def _sorted_rows(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Columns reordered by (video, frame, kind, object_id)."""
    video_code = np.unique(columns["video"], return_inverse=True)[1].reshape(-1)
    order = np.lexsort((columns["object_id"], kind_codes(columns["kind"]), columns["frame"],
                        video_code))
    return {name: values[order] for name, values in columns.items()}


def _check_rows(columns: Mapping[str, np.ndarray]) -> None:
    """Known kinds, finite scores, non-negative ids, frame rows with object_id 0, unique
    (video, kind, frame, object_id); rows must be sorted."""
    video, kind, frame, object_id = (columns[name] for name in ("video", "kind", "frame",
                                                                "object_id"))

    def where(row: int) -> str:
        return (f"video {str(video[row])!r} frame {int(frame[row])} "
                f"({kind[row]} row, object_id {int(object_id[row])})")

    problems = (
        (kind_codes(kind) < 0, f"kind is not one of {list(KINDS)}"),
        (~np.isfinite(columns["score"]), "score is NaN or inf"),
        (frame < 0, "frame index is negative"),
        (object_id < 0, "object_id is negative"),
        ((kind == "frame") & (object_id != 0), "a frame row needs object_id 0"),
    )
    for bad, what in problems:
        if bad.any():
            raise ScoreTableError(f"{what} for {int(bad.sum())} row(s), "
                                  f"first in {where(int(np.argmax(bad)))}")
    repeated = ((video[1:] == video[:-1]) & (frame[1:] == frame[:-1]) & (kind[1:] == kind[:-1])
                & (object_id[1:] == object_id[:-1]))
    if repeated.any():
        raise ScoreTableError(f"duplicate row: {where(int(np.argmax(repeated)))} appears twice")


def _check_pixel_maps(pixel_maps: Mapping[str, Any] | None) -> dict[str, PixelMaps]:
    """{video: PixelMaps}, videos sorted; values may be PixelMaps or (frames, maps) pairs."""
    out = {}
    for video, maps in sorted((pixel_maps or {}).items()):
        if not isinstance(video, str):
            raise ScoreTableError(f"pixel_maps keys must be video names (str), got {video!r}")
        try:
            out[video] = maps if isinstance(maps, PixelMaps) else PixelMaps(*maps)
        except (TypeError, ScoreTableError) as exc:
            raise ScoreTableError(f"pixel maps of video {video!r}: {exc}") from exc
    return out


def _frame_range(video: str, frames: np.ndarray, n_frames: int | None,
                 video_frames: Sequence[int] | None) -> np.ndarray:
    """All frames of a video for ``from_frames``/``from_patches``: ``0..n_frames-1``, the given
    ``video_frames``, or (neither given) the rows' own frames."""
    if n_frames is not None and video_frames is not None:
        raise ScoreTableError(f"video {video!r}: pass n_frames or video_frames, not both")
    if n_frames is not None:
        if isinstance(n_frames, bool) or not isinstance(n_frames, (int, np.integer)) \
                or n_frames < 1:
            raise ScoreTableError(f"video {video!r}: n_frames must be a positive int, "
                                  f"got {n_frames!r}")
        if frames.size and frames.max() >= n_frames:
            raise ScoreTableError(f"video {video!r}: frame {int(frames.max())} is beyond "
                                  f"n_frames={n_frames}")
        return np.arange(int(n_frames))
    if video_frames is not None:
        return as_column(f"video_frames of {video!r}", np.asarray(video_frames).reshape(-1),
                         "int64")
    return frames


def _rows_of_one_video(what: str, video: Any, frames: Any, scores: Any,
                       extra: Mapping[str, Any] | None) -> tuple[np.ndarray, np.ndarray, dict]:
    """(frames int64 [R], scores float64 [R], extra columns) checked for one length."""
    if not isinstance(video, str):
        raise ScoreTableError(f"{what}: video must be a name (str), got {video!r}")
    frames = as_column(f"frames of video {video!r}", frames, "int64")
    scores = as_column(f"scores of video {video!r}", scores, "float64")
    if frames.shape != scores.shape:
        raise ScoreTableError(f"{what}: video {video!r} has {frames.shape[0]} frames but "
                              f"{scores.shape[0]} scores")
    columns = {}
    for name, values in (extra or {}).items():
        if name in REQUIRED_TYPES:
            raise ScoreTableError(f"{what}: extra column {name!r} clashes with a required column")
        column = as_column(name, values)
        if column.shape != frames.shape:
            raise ScoreTableError(f"{what}: extra column {name!r} has {column.shape[0]} values "
                                  f"for {frames.shape[0]} rows (video {video!r})")
        columns[name] = column
    return frames, scores, columns


# ---------------------------------------------------------------------------- the table
class ScoreTable:
    """Rows of scored objects, frames and patches, with boxes (see the module docstring).

    Args:
        columns: column name -> 1-D values of one length N; must hold :attr:`REQUIRED`; any
            other key is an extra column (bool, integer, float or str values; stored as bool,
            int64, float64 or str).
        video_frames: video -> all its frame indices (frames without rows included). Videos
            and frames that appear in the rows or pixel maps are added; every video must end up
            with a frame.
        pixel_maps: video -> :class:`~stgraph.scores.frames.PixelMaps` (or a ``(frames, maps)``
            pair), optional per-pixel scores.

    Raises:
        ScoreTableError: missing columns, unequal lengths, an unknown kind, a NaN/inf score (the
            message names the video and frame), negative ids, a frame row with object_id != 0,
            a duplicate (video, kind, frame, object_id), malformed pixel maps.
    """

    REQUIRED: tuple[str, ...] = COLUMNS
    KINDS: tuple[str, ...] = KINDS

    def __init__(self, columns: Mapping[str, Any],
                 video_frames: Mapping[str, Sequence[int]] | None = None,
                 pixel_maps: Mapping[str, PixelMaps] | None = None):
        if not isinstance(columns, Mapping):
            raise ScoreTableError(f"ScoreTable columns must be a mapping name -> values, "
                                  f"got {type(columns).__name__}")
        missing = [name for name in self.REQUIRED if name not in columns]
        if missing:
            raise ScoreTableError(f"ScoreTable columns lack {missing}; "
                                  f"required are {list(self.REQUIRED)}")
        names = [*self.REQUIRED, *(name for name in columns if name not in REQUIRED_TYPES)]
        data = {name: as_column(name, columns[name], REQUIRED_TYPES.get(name)) for name in names}
        lengths = {name: values.shape[0] for name, values in data.items()}
        if len(set(lengths.values())) > 1:
            raise ScoreTableError(f"ScoreTable columns must have one length, got {lengths}")
        data = _sorted_rows(data)
        _check_rows(data)
        maps = _check_pixel_maps(pixel_maps)
        self._columns = {name: readonly(values) for name, values in data.items()}
        self.video_frames: dict[str, np.ndarray] = merge_video_frames(
            video_frames, frames_by_video(data["video"], data["frame"]),
            {video: m.frames for video, m in maps.items()})
        self.pixel_maps: dict[str, PixelMaps] = maps

    def _subset(self, rows: slice | np.ndarray, video_frames: dict[str, np.ndarray],
                pixel_maps: dict[str, PixelMaps]) -> "ScoreTable":
        """Rows ``rows`` (a slice or mask: order is kept, so no re-validation is needed)."""
        new = type(self).__new__(type(self))
        new._columns = {name: readonly(values[rows]) for name, values in self._columns.items()}
        new.video_frames = video_frames
        new.pixel_maps = pixel_maps
        return new

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_detections(cls, video: str, detections: Sequence[Detections],
                        scores: Sequence[np.ndarray],
                        extra: Mapping[str, Sequence[np.ndarray]] | None = None) -> "ScoreTable":
        """Object rows of one video from its per-frame detections and per-object scores.

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
        n_rows = int(counts.sum())
        boxes = np.concatenate([d.boxes for d in detections])
        columns: dict[str, Any] = {
            "video": np.full(n_rows, video), "kind": np.full(n_rows, "object"),
            "frame": np.repeat(frame_ids, counts),
            "object_id": np.arange(n_rows) - np.repeat(np.cumsum(counts) - counts, counts),
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
            if name in REQUIRED_TYPES:
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
    def from_frames(cls, video: str, frames: Sequence[int] | np.ndarray,
                    scores: Sequence[float] | np.ndarray, *, n_frames: int | None = None,
                    video_frames: Sequence[int] | None = None,
                    image_hw: tuple[int, int] | None = None,
                    pixel_maps: np.ndarray | PixelMaps | None = None,
                    extra: Mapping[str, Sequence[Any]] | None = None) -> "ScoreTable":
        """Frame rows of one video: one score per scored frame.

        Args:
            video: video name.
            frames: int [T'] the scored frames (distinct).
            scores: float [T'] their scores, higher = more abnormal.
            n_frames: the video has frames ``0 .. n_frames - 1`` (frames without a score, e.g.
                the first ones of a method that predicts from history, stay known).
            video_frames: or all frame indices of the video, explicitly. Neither: the scored
                frames are all the video's frames.
            image_hw: (H, W) of the frames: boxes become ``[0, 0, W, H]`` (NaN when None).
            pixel_maps: float [T', h, w], the score map of each scored frame (aligned with
                ``frames``), or a :class:`PixelMaps` with its own frames.
            extra: extra columns, one value per scored frame each.

        Raises:
            ScoreTableError: length mismatches, repeated frames, frames beyond ``n_frames``.
        """
        frames, scores, columns = _rows_of_one_video("from_frames", video, frames, scores, extra)
        all_frames = _frame_range(video, frames, n_frames, video_frames)
        n_rows = frames.shape[0]
        box = (np.full(4, np.nan) if image_hw is None
               else np.array([0, 0, image_hw[1], image_hw[0]], np.float64))
        columns = {"video": np.full(n_rows, video), "kind": np.full(n_rows, "frame"),
                   "frame": frames, "object_id": np.zeros(n_rows, np.int64),
                   **{name: np.full(n_rows, value) for name, value in zip(_BOX, box)},
                   "label": np.full(n_rows, -1), "class_name": np.full(n_rows, ""),
                   "det_score": np.full(n_rows, np.nan), "score": scores, **columns}
        maps = None
        if isinstance(pixel_maps, PixelMaps):
            maps = {video: pixel_maps}
        elif pixel_maps is not None:
            pixel_maps = np.asarray(pixel_maps)
            if pixel_maps.ndim != 3 or pixel_maps.shape[0] != n_rows:
                raise ScoreTableError(f"from_frames: video {video!r} has {n_rows} scored frames "
                                      f"but pixel maps of shape {pixel_maps.shape} "
                                      f"(expected [{n_rows}, h, w])")
            order = np.argsort(frames, kind="stable")
            try:
                maps = {video: PixelMaps(frames[order], pixel_maps[order])}
            except ScoreTableError as exc:
                raise ScoreTableError(f"from_frames: video {video!r}: {exc}") from exc
        return cls(columns, {video: all_frames}, maps)

    @classmethod
    def from_patches(cls, video: str, frames: Sequence[int] | np.ndarray, boxes: np.ndarray,
                     scores: Sequence[float] | np.ndarray, grid_names: Sequence[str],
                     object_ids: Sequence[int] | None = None, *,
                     grid_index: Sequence[int] | None = None, n_frames: int | None = None,
                     video_frames: Sequence[int] | None = None,
                     pixel_maps: PixelMaps | None = None,
                     extra: Mapping[str, Sequence[Any]] | None = None) -> "ScoreTable":
        """Patch rows of one video: one score per patch of a fixed grid per frame.

        Args:
            video: video name.
            frames: int [R] frame of each row.
            boxes: float [R, 4] the patch's box, xyxy pixels.
            scores: float [R].
            grid_names: str [R] the name of each row's grid (:func:`patch_grid_name`, e.g.
                ``"grid4x7"``), stored as ``class_name``.
            object_ids: int [R] patch index within its frame, unique across grids (default: the
                rows of each frame numbered in the given order).
            grid_index: int [R] the index of each row's grid, stored as ``label`` (default: the
                grids numbered in the order their names first appear in ``grid_names``).
            n_frames, video_frames, pixel_maps, extra: as in :meth:`from_frames` (the maps as a
                :class:`PixelMaps`).

        Raises:
            ScoreTableError: length mismatches, a repeated (frame, object_id).
        """
        frames, scores, columns = _rows_of_one_video("from_patches", video, frames, scores, extra)
        n_rows = frames.shape[0]
        boxes = np.asarray(boxes, np.float64)
        names = as_column("grid_names", np.asarray(grid_names, dtype=np.str_).reshape(-1), "str")
        if boxes.shape != (n_rows, 4) or names.shape != (n_rows,):
            raise ScoreTableError(f"from_patches: video {video!r} has {n_rows} scores but boxes "
                                  f"of shape {boxes.shape} and {names.shape[0]} grid names")
        if grid_index is None:
            _, first, inverse = np.unique(names, return_index=True, return_inverse=True)
            grid_index = np.argsort(np.argsort(first))[inverse.reshape(-1)]
        if object_ids is None:
            order = np.argsort(frames, kind="stable")
            starts = np.searchsorted(frames[order], frames[order], "left")
            object_ids = np.empty(n_rows, np.int64)
            object_ids[order] = np.arange(n_rows) - starts
        columns = {"video": np.full(n_rows, video), "kind": np.full(n_rows, "patch"),
                   "frame": frames, "object_id": object_ids,
                   **{name: boxes[:, i] for i, name in enumerate(_BOX)},
                   "label": grid_index, "class_name": names,
                   "det_score": np.full(n_rows, np.nan), "score": scores, **columns}
        all_frames = _frame_range(video, frames, n_frames, video_frames)
        return cls(columns, {video: all_frames}, None if pixel_maps is None else {video: pixel_maps})

    @classmethod
    def concat(cls, tables: Sequence["ScoreTable"]) -> "ScoreTable":
        """One table from several (one per video, chunks of one video, or several kinds of rows
        of one video).

        All tables must have the same columns. Frames of a video seen in several tables are
        merged, and so are its pixel maps; a repeated (video, kind, frame, object_id) row or a
        frame with two pixel maps is an error.
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
        maps: dict[str, list[PixelMaps]] = {}
        for table in tables:
            for video, video_frames in table.video_frames.items():
                frames.setdefault(video, []).append(video_frames)
            for video, video_maps in table.pixel_maps.items():
                maps.setdefault(video, []).append(video_maps)
        return cls(columns, {video: np.concatenate(parts) for video, parts in frames.items()},
                   {video: parts[0] if len(parts) == 1 else PixelMaps.concat(parts, video)
                    for video, parts in maps.items()})

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        """Number of rows, all kinds (frames without rows are not rows)."""
        return int(self._columns["score"].shape[0])

    @property
    def columns(self) -> tuple[str, ...]:
        """Column names: the required ones, then the extra ones."""
        return tuple(self._columns)

    @property
    def extra_columns(self) -> tuple[str, ...]:
        return tuple(name for name in self._columns if name not in REQUIRED_TYPES)

    @property
    def videos(self) -> list[str]:
        """Video names, sorted."""
        return list(self.video_frames)

    @property
    def kinds(self) -> tuple[str, ...]:
        """The kinds of row the table holds, in the order of :data:`KINDS`."""
        present = set(np.unique(self._columns["kind"]).tolist())
        return tuple(kind for kind in KINDS if kind in present)

    def column(self, name: str) -> np.ndarray:
        """The read-only values [N] of one column (rows sorted by video, frame, kind, object_id)."""
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

    def scored_kind(self, video: str) -> str:
        """The kind of row that scores ``video``'s frames by default: ``"frame"`` when it has
        frame rows, else ``"object"`` when it has object rows, else ``"patch"`` when it has patch
        rows; ``"object"`` for a video without any row (nothing detected)."""
        present = set(self._columns["kind"][self._rows_of(video)].tolist())
        return next((kind for kind in ("frame", "object", "patch") if kind in present), "object")

    def select(self, video: str | Sequence[str] | None = None, *,
               kind: str | Sequence[str] | None = None) -> "ScoreTable":
        """The table restricted to one video or several (None: all) and/or to rows of one kind
        or several (None: all). Frames and pixel maps of the chosen videos are kept.

        Raises:
            KeyError: an unknown video. ScoreTableError: an unknown kind.
        """
        videos = self.videos if video is None else [video] if isinstance(video, str) else list(video)
        rows = np.zeros(len(self), bool)
        for name in videos:
            rows[self._rows_of(name)] = True
        if kind is not None:
            kinds = [kind] if isinstance(kind, str) else list(kind)
            for one in kinds:
                check_kind(one, allow_none=False)
            rows &= np.isin(self._columns["kind"], kinds)
        chosen = sorted(set(videos))
        return self._subset(rows, {name: self.video_frames[name] for name in chosen},
                            {name: self.pixel_maps[name] for name in chosen
                             if name in self.pixel_maps})

    def objects_in_frame(self, video: str, frame: int, kind: str | None = None) -> "ScoreTable":
        """The rows of one frame, of every kind or of ``kind`` (an empty table for a known frame
        without rows). Its pixel map, if any, is kept.

        Raises:
            KeyError: unknown video, or a frame that is not among the video's frames.
        """
        rows = self._rows_of(video)
        if not np.isin(frame, self.video_frames[video]):
            raise KeyError(f"video {video!r} has no frame {frame}")
        check_kind(kind)
        frame_column = self._columns["frame"][rows]
        start = rows.start + int(np.searchsorted(frame_column, frame, "left"))
        stop = rows.start + int(np.searchsorted(frame_column, frame, "right"))
        mask = np.zeros(len(self), bool)
        mask[start:stop] = True
        if kind is not None:
            mask &= self._columns["kind"] == kind
        maps = self.pixel_maps[video].select([frame]) if video in self.pixel_maps else None
        return self._subset(mask, {video: readonly(np.array([frame], np.int64))},
                            {} if maps is None else {video: maps})

    # ------------------------------------------------------------------ frame level
    def frame_scores(self, reduce: Reducer = "max", empty: str | float = "min",
                     normalize: bool = False, smooth: int = 1,
                     kind: str | None = None) -> dict[str, FrameScores]:
        """Score of every frame of every video, from the scores of its rows of one kind.

        Steps, per video, in this order:

        0. ``kind``: which rows score the frames. None (default) takes, per video, its frame
           rows if it has any, else its object rows, else its patch rows
           (:meth:`scored_kind`). A kind given explicitly must be in the table; a video without
           rows of that kind is treated like a video in which nothing was detected (step 2).
        1. ``reduce`` the scores of each frame's rows: ``"max"`` (the most abnormal object or
           patch makes the frame abnormal; the usual choice), ``"mean"``, ``"sum"``, or a
           callable ``f(scores [k]) -> float`` (called once per frame, so slower). A frame row
           is its frame's only row, so any reduce gives its score.
        2. Frames without rows get ``empty``. ``"min"`` (default) gives them the lowest frame
           score of that video among frames with rows (0.0 when the video has no row at all):
           with nothing detected there is nothing abnormal to see, and a frame without history
           has no evidence either, so such a frame must not look anomalous, and it must not
           stretch the min-max range of step 4. A number gives them that constant.
        3. ``smooth`` (odd width >= 1): temporal mean filter over the frame sequence, the edges
           padded with the first/last score (``scipy.ndimage.uniform_filter1d``,
           ``mode="nearest"``). The window counts scored frames, so with frame-strided scoring
           it spans more video frames.
        4. ``normalize``: per-video min-max scaling to [0, 1] (a constant video gives zeros).
           It needs the whole video, so it is an offline evaluation option.

        Returns:
            {video: FrameScores} with all frames of ``video_frames[video]``, videos sorted.
        """
        reducer = group_reducer(reduce)
        check_frame_options(empty, smooth)
        check_kind(kind)
        if kind is not None and len(self) and kind not in self.kinds:
            raise ScoreTableError(f"the table has no {kind} rows (it has {list(self.kinds)} "
                                  f"rows); pass kind=None or one of those")
        out = {}
        for video, frames in self.video_frames.items():
            rows = self._rows_of(video)
            mine = self._columns["kind"][rows] == (kind or self.scored_kind(video))
            scores = reduce_to_frames(frames, self._columns["frame"][rows][mine],
                                      self._columns["score"][rows][mine], reducer, empty)
            if not np.all(np.isfinite(scores)):
                raise ScoreTableError(f"reduce={reduce!r} gave a NaN or inf frame score "
                                      f"in video {video!r}")
            out[video] = FrameScores(frames, smooth_and_normalize(scores, smooth, normalize))
        return out

    def check_labels(self, labels: Mapping[str, np.ndarray]) -> None:
        """Check frame labels (video -> 0/1 array indexed by frame number) against the frames of
        each video of the table that has labels: a video whose frames are ``0..T-1`` needs
        exactly T labels, any other a label for its last frame.

        Raises:
            ScoreTableError: the first video whose labels do not fit (names both counts).
        """
        check_frame_labels(self.video_frames, labels)

    # ------------------------------------------------------------------ files
    def to_csv(self, path: str | Path) -> Path:
        """Write a CSV (and the pixel-map sidecar), atomically; see :func:`stgraph.scores.io.write_csv`."""
        return io.write_csv(self, path)

    @classmethod
    def read_csv(cls, path: str | Path) -> "ScoreTable":
        """Inverse of :meth:`to_csv` (reads format versions 1 and 2, and the pixel sidecar);
        see :func:`stgraph.scores.io.read_csv`."""
        return cls._from_file(path, io.read_csv(path))

    def to_json(self, path: str | Path) -> Path:
        """Write a JSON file (and the pixel-map sidecar), atomically; see
        :func:`stgraph.scores.io.write_json`."""
        return io.write_json(self, path)

    @classmethod
    def read_json(cls, path: str | Path) -> "ScoreTable":
        """Inverse of :meth:`to_json` (reads format versions 1 and 2, and the pixel sidecar);
        see :func:`stgraph.scores.io.read_json`."""
        return cls._from_file(path, io.read_json(path))

    @classmethod
    def _from_file(cls, path: str | Path, parts: io.Parts) -> "ScoreTable":
        """The table of ``(columns, video_frames)`` read from ``path``, with the pixel maps of
        its sidecar attached when there is one (its digest ties it to these rows)."""
        try:
            table = cls(*parts)
        except ScoreTableError as exc:
            raise ScoreTableError(f"{path}: {exc}") from exc
        maps = io.read_pixel_sidecar(path, io.table_digest(table))
        outside = [video for video, m in maps.items() if video not in table.video_frames
                   or not np.isin(m.frames, table.video_frames[video]).all()]
        if outside:
            raise ScoreTableError(f"pixel-map sidecar of {path}: maps of frames the table lacks "
                                  f"(videos {outside})")
        return table._subset(slice(None), table.video_frames, maps) if maps else table

    def frame_scores_to_csv(self, path: str | Path, labels: Mapping[str, np.ndarray] | None = None,
                            reduce: Reducer = "max", empty: str | float = "min",
                            normalize: bool = False, smooth: int = 1,
                            kind: str | None = None) -> Path:
        """Write ``video,frame,score`` (plus ``label`` when ``labels`` are given), a row per
        frame of every video; the other arguments are those of :meth:`frame_scores`. See
        :func:`stgraph.scores.io.write_frame_scores_csv`."""
        if labels is not None:
            missing = [video for video in self.videos if video not in labels]
            if missing:
                raise ScoreTableError(f"frame_scores_to_csv: no labels for videos {missing}")
            self.check_labels(labels)
        frame_scores = self.frame_scores(reduce=reduce, empty=empty, normalize=normalize,
                                         smooth=smooth, kind=kind)
        return io.write_frame_scores_csv(path, frame_scores, labels)

    def to_pandas(self):
        """A ``pandas.DataFrame`` with one row per table row (frames without rows are not rows;
        ``video_frames`` keeps them). Needs pandas (``pip install pandas``)."""
        try:
            import pandas as pd
        except ImportError as exc:
            raise ImportError("ScoreTable.to_pandas needs pandas: pip install pandas") from exc
        return pd.DataFrame({name: np.array(values) for name, values in self._columns.items()})

    # ------------------------------------------------------------------ comparison / display
    def __eq__(self, other: object) -> bool:
        """Same columns (names, order, types; str width aside), same values (NaN equal to NaN),
        same video_frames, same pixel maps."""
        if not isinstance(other, ScoreTable):
            return NotImplemented
        if (self.columns != other.columns or list(self.video_frames) != list(other.video_frames)
                or list(self.pixel_maps) != list(other.pixel_maps)):
            return False
        same_columns = all(
            type_name(a) == type_name(b) and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
            for a, b in ((self._columns[n], other._columns[n]) for n in self.columns))
        return (same_columns
                and all(np.array_equal(frames, other.video_frames[video])
                        for video, frames in self.video_frames.items())
                and all(maps.equals(other.pixel_maps[video])
                        for video, maps in self.pixel_maps.items()))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        n_frames = sum(frames.shape[0] for frames in self.video_frames.values())
        counts = {kind: int(np.count_nonzero(self._columns["kind"] == kind)) for kind in KINDS}
        rows = f"objects={counts['object']}" + "".join(
            f", {kind} rows={counts[kind]}" for kind in ("frame", "patch") if counts[kind])
        extra = f", extra={list(self.extra_columns)}" if self.extra_columns else ""
        maps = f", pixel maps={len(self.pixel_maps)} video(s)" if self.pixel_maps else ""
        return f"ScoreTable(videos={len(self.video_frames)}, frames={n_frames}, {rows}{extra}{maps})"


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
