"""The ScoreTable's schema: required columns and their types, row kinds, column conversion.

Shared by :mod:`stgraph.scores.table` (the table) and :mod:`stgraph.scores.io` (its files), so
that both agree on what a valid column is.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ["ScoreTableError", "KINDS", "COLUMNS", "V1_COLUMNS", "REQUIRED_TYPES"]


class ScoreTableError(ValueError):
    """Malformed scores or score files: missing columns, unequal lengths, NaN scores, bad files."""


#: Row kinds, in the order rows of one frame are sorted: a detected object, the whole frame,
#: a patch of a fixed grid.
KINDS: tuple[str, ...] = ("object", "frame", "patch")

#: Column name -> type of every required column, in file order.
REQUIRED_TYPES: dict[str, str] = {
    "video": "str", "kind": "str", "frame": "int64", "object_id": "int64",
    "x1": "float32", "y1": "float32", "x2": "float32", "y2": "float32",
    "label": "int64", "class_name": "str", "det_score": "float32", "score": "float64",
}
#: The required columns of a ScoreTable, in file order (format version 2).
COLUMNS: tuple[str, ...] = tuple(REQUIRED_TYPES)
#: The required columns of format version 1 (object rows only, no ``kind`` column).
V1_COLUMNS: tuple[str, ...] = tuple(name for name in COLUMNS if name != "kind")

#: Column type name -> numpy dtype; the names are also what JSON files store under "dtypes".
DTYPES: dict[str, Any] = {"str": np.str_, "bool": np.bool_, "int64": np.int64,
                          "float32": np.float32, "float64": np.float64}
#: Column type name -> numpy dtype kinds that convert to it without losing meaning.
_ACCEPTED_KINDS = {"str": "U", "bool": "b", "int64": "biu", "float32": "biuf", "float64": "biuf"}


def readonly(array: np.ndarray) -> np.ndarray:
    """``array`` itself, made read-only."""
    array.setflags(write=False)
    return array


def type_name(array: np.ndarray) -> str:
    """Column type name (a key of ``DTYPES``) of a stored column."""
    kind = array.dtype.kind
    if kind == "f":
        return "float32" if array.dtype.itemsize == 4 else "float64"
    return {"U": "str", "b": "bool", "i": "int64"}[kind]


def _extra_type(name: str, array: np.ndarray) -> str:
    """Type an extra column is stored as: bool, int64, float64 or str."""
    kind = array.dtype.kind
    for name_of_type, kinds in (("bool", "b"), ("int64", "iu"), ("float64", "f"), ("str", "U")):
        if kind in kinds:
            return name_of_type
    raise ScoreTableError(f"column {name!r} must hold numbers, bools or strings, "
                          f"got dtype {array.dtype}")


def as_column(name: str, values: Any, column_type: str | None = None) -> np.ndarray:
    """A 1-D array of ``column_type`` (inferred for extra columns); clear error if it does not fit."""
    array = np.asarray(values)
    if array.dtype.kind == "O":  # e.g. strings from pandas
        array = np.asarray(array.tolist())
    if array.ndim != 1:
        raise ScoreTableError(f"column {name!r} must be 1-D, got shape {array.shape}")
    column_type = column_type or _extra_type(name, array)
    if array.size and array.dtype.kind not in _ACCEPTED_KINDS[column_type]:
        raise ScoreTableError(f"column {name!r} must hold {column_type} values, "
                              f"got dtype {array.dtype}")
    return array.astype(DTYPES[column_type])


def check_kind(kind: str | None, allow_none: bool = True) -> None:
    """Raise unless ``kind`` is one of :data:`KINDS` (or None when ``allow_none``)."""
    if kind is None and allow_none:
        return
    if kind not in KINDS:
        raise ScoreTableError(f"kind must be one of {list(KINDS)}"
                              + (" or None" if allow_none else "") + f", got {kind!r}")


def frames_by_video(videos: np.ndarray, frames: np.ndarray) -> dict[str, np.ndarray]:
    """Group ``frames`` [R] by ``videos`` [R]: {video: frames} (not deduplicated)."""
    names, inverse = np.unique(videos, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(np.bincount(inverse, minlength=names.shape[0]))[:-1]
    return {str(name): group for name, group in zip(names, np.split(frames[order], bounds))}


def merge_video_frames(given: Mapping[str, Sequence[int]] | None,
                       *found: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``given`` plus the frames ``found`` in rows and pixel maps: {video: sorted unique int64
    frames (read-only)}, videos sorted.

    Raises:
        ScoreTableError: a key that is not a str, a video without frames, a negative frame.
    """
    merged: dict[str, list[np.ndarray]] = {}
    for name, video_frames in (given or {}).items():
        if not isinstance(name, str):
            raise ScoreTableError(f"video_frames keys must be video names (str), got {name!r}")
        values = np.asarray(video_frames).reshape(-1)
        merged[name] = [as_column(f"video_frames[{name!r}]", values, "int64")]
    for mapping in found:
        for name, frames in mapping.items():
            merged.setdefault(name, []).append(np.asarray(frames, np.int64).reshape(-1))
    out = {name: np.unique(np.concatenate(merged[name])) for name in sorted(merged)}
    for name, video_frames in out.items():
        if video_frames.size == 0:
            raise ScoreTableError(f"video {name!r} has no frames")
        if video_frames[0] < 0:
            raise ScoreTableError(f"video {name!r} has negative frame index {int(video_frames[0])}")
        readonly(video_frames)
    return out


def kind_codes(kinds: np.ndarray) -> np.ndarray:
    """int64 [R]: the position of each row's kind in :data:`KINDS` (-1 for an unknown kind)."""
    codes = np.full(np.shape(kinds)[0], -1, np.int64)
    for code, kind in enumerate(KINDS):
        codes[kinds == kind] = code
    return codes
