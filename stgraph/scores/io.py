"""ScoreTable files: CSV, JSON, and the pixel-map sidecar; the per-frame CSV.

**CSV** (UTF-8, a header line, one line per row in table order)::

    video,kind,frame,object_id,x1,y1,x2,y2,label,class_name,det_score,score[,extra...]
    01,object,0,0,12.5,30.0,40.0,88.0,0,person,0.91,2.8134
    01,,1,-1,,,,,,,,                        <- frame 1 has no row: a placeholder
    01,frame,2,0,0.0,0.0,360.0,240.0,-1,,nan,1.25

Every frame that has no row at all (nothing detected; the first frames of a method that predicts
from history) is written as a **placeholder line** with ``object_id = -1`` and every field but
``video`` and ``frame`` empty, so that :func:`read_csv` restores ``video_frames`` exactly. A naive
reader must skip those lines (``object_id == -1``, or an empty ``score``). Frame rows write NaN
boxes (image size unknown) and their NaN ``det_score`` as ``nan``.

**JSON**::

    {"format": "stgraph.ScoreTable", "version": 2,
     "videos": {name: {"frames": [...]}},
     "dtypes": {column: type}, "columns": {column: [...]}}

``dtypes`` holds each column's type (str, bool, int64, float32, float64) so that
:func:`read_json` restores it exactly. NaN is written as ``null``; ±inf as the ``Infinity``
token that Python's json reads.

**Pixel maps** (:class:`~stgraph.scores.frames.PixelMaps`) go to a sidecar ``<stem>.pixels.npz``
beside the CSV/JSON file (``scores.csv`` -> ``scores.pixels.npz``): ``videos`` str [V] and, for
the i-th video, ``frames_<i>`` int64 [T'] and ``maps_<i>`` float16 [T', h, w], plus a digest of
the table's rows (``table_digest``). Both files are renamed into place only once both are
written. Reading attaches the sidecar when its digest matches the table; a sidecar of another
table (the CSV was since overwritten by a table without maps, or ``scores.json`` holds another
table than ``scores.csv``) is left alone and ignored, with a warning in the log. Writing a table
without maps never deletes a sidecar, since it may belong to the sibling file.

**Versions.** Version 2 added the ``kind`` column. Files of version 1 (JSON ``"version": 1``, or a
CSV header without ``kind``) held object rows only, so they are read as object rows: an exact,
unambiguous upgrade. Newer versions are refused.

Every file is written atomically (:mod:`stgraph.fileio`): a failure leaves the previous file
untouched.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import numpy as np

from detectors.files import require_file
from stgraph.fileio import atomic_path
from stgraph.scores.columns import (COLUMNS, DTYPES, REQUIRED_TYPES, V1_COLUMNS, ScoreTableError,
                                    as_column, frames_by_video, kind_codes, type_name)
from stgraph.scores.frames import FrameScores, PixelMaps

if TYPE_CHECKING:
    from detectors.base import Detections
    from stgraph.scores.table import ScoreTable

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "PIXELS_FORMAT_NAME", "write_csv", "read_csv",
           "write_json", "read_json", "pixel_sidecar_path", "read_pixel_sidecar", "table_digest",
           "write_frame_scores_csv", "object_csv_rows"]

logger = logging.getLogger(__name__)

FORMAT_NAME = "stgraph.ScoreTable"
#: 2: ``kind`` column (object / frame / patch rows) and the pixel-map sidecar; 1: object rows.
FORMAT_VERSION = 2
PIXELS_FORMAT_NAME = "stgraph.PixelMaps"
PIXELS_FORMAT_VERSION = 1
#: object_id of the CSV lines that only register a frame without rows.
NO_ROW = -1

Parts = tuple[dict[str, np.ndarray], dict[str, np.ndarray]]  # (columns, video_frames)


# ---------------------------------------------------------------------------- pixel sidecar
def pixel_sidecar_path(path: str | Path) -> Path:
    """``scores.csv`` -> ``scores.pixels.npz`` (same folder, same stem)."""
    path = Path(path)
    return path.with_name(f"{path.stem}.pixels.npz")


def table_digest(table: "ScoreTable") -> str:
    """SHA-256 (hex) of a table's videos, frames and row keys and scores: what ties a pixel
    sidecar to its table. CSV and JSON round trips keep it (both are exact)."""
    digest = hashlib.sha256()
    for video, frames in table.video_frames.items():
        digest.update(video.encode("utf-8") + b"\0" + frames.astype("<i8").tobytes())
    for name in ("video", "kind"):
        digest.update("\0".join(table[name].tolist()).encode("utf-8") + b"\1")
    for name, dtype in (("frame", "<i8"), ("object_id", "<i8"), ("score", "<f8")):
        digest.update(np.ascontiguousarray(table[name], dtype).tobytes())
    return digest.hexdigest()


@contextlib.contextmanager
def _staged_with_sidecar(table: "ScoreTable", path: str | Path):
    """Yield a temporary path for the main file; on success it and the pixel sidecar (when the
    table has maps) are renamed into place, both after both are written."""
    sidecar = pixel_sidecar_path(path)
    with atomic_path(path) as tmp:
        yield tmp
        if table.pixel_maps:
            with atomic_path(sidecar, suffix=".npz") as tmp_sidecar:
                arrays: dict[str, np.ndarray] = {
                    "format": np.array(PIXELS_FORMAT_NAME),
                    "version": np.array(PIXELS_FORMAT_VERSION),
                    "table_digest": np.array(table_digest(table)),
                    "videos": np.array(list(table.pixel_maps), dtype=np.str_)}
                for i, maps in enumerate(table.pixel_maps.values()):
                    arrays[f"frames_{i}"], arrays[f"maps_{i}"] = maps.frames, maps.maps
                np.savez_compressed(tmp_sidecar, **arrays)


def read_pixel_sidecar(path: str | Path, digest: str) -> dict[str, PixelMaps]:
    """The pixel maps stored beside ``path``: {} when there is no sidecar, or when it was
    written for another table (its digest is not ``digest``; logged as a warning).

    Raises:
        ScoreTableError: an unreadable sidecar (names the file).
    """
    sidecar = pixel_sidecar_path(path)
    if not sidecar.is_file():
        return {}
    try:
        with np.load(sidecar, allow_pickle=False) as data:
            if str(data["format"]) != PIXELS_FORMAT_NAME:
                raise ScoreTableError(f"its format is {str(data['format'])!r}")
            if int(data["version"]) > PIXELS_FORMAT_VERSION:
                raise ScoreTableError(f"its version {int(data['version'])} is newer than this "
                                      f"stgraph reads ({PIXELS_FORMAT_VERSION})")
            if str(data["table_digest"]) != digest:
                logger.warning("ignoring the pixel-map sidecar %s: it was written for another "
                               "table than %s", sidecar, path)
                return {}
            return {str(video): PixelMaps(data[f"frames_{i}"], data[f"maps_{i}"])
                    for i, video in enumerate(data["videos"].tolist())}
    except ScoreTableError as exc:
        raise ScoreTableError(f"pixel-map sidecar {sidecar}: {exc}") from exc
    except (OSError, ValueError, KeyError) as exc:
        raise ScoreTableError(f"pixel-map sidecar {sidecar} is not readable: {exc}") from exc


# ---------------------------------------------------------------------------- CSV
def _frames_without_rows(table: "ScoreTable") -> tuple[np.ndarray, np.ndarray]:
    """(video [M] str, frame [M] int64) of every frame that has no row of any kind."""
    videos, frames = [], []
    video_column, frame_column = table["video"], table["frame"]
    for video, video_frames in table.video_frames.items():
        rows = slice(int(np.searchsorted(video_column, video, "left")),
                     int(np.searchsorted(video_column, video, "right")))
        missing = np.setdiff1d(video_frames, frame_column[rows])
        videos.append(np.full(missing.shape[0], video))
        frames.append(missing)
    if not frames:
        return np.zeros(0, np.str_), np.zeros(0, np.int64)
    return np.concatenate(videos), np.concatenate(frames)


def write_csv(table: "ScoreTable", path: str | Path) -> Path:
    """Write ``table`` as CSV (module docstring), with its pixel sidecar; returns ``path``."""
    empty_videos, empty_frames = _frames_without_rows(table)
    n_empty = empty_frames.shape[0]
    placeholder = {"video": empty_videos, "frame": empty_frames.astype(np.str_),
                   "object_id": np.full(n_empty, str(NO_ROW))}
    video_code = np.searchsorted(np.array(table.videos, dtype=np.str_),
                                 np.concatenate([table["video"], empty_videos]))
    frame = np.concatenate([table["frame"], empty_frames])
    kind = np.concatenate([kind_codes(table["kind"]), np.full(n_empty, -1)])
    object_id = np.concatenate([table["object_id"], np.full(n_empty, NO_ROW)])
    order = np.lexsort((object_id, kind, frame, video_code))
    text = [np.concatenate([table[name].astype(np.str_),
                            placeholder.get(name, np.full(n_empty, ""))])[order].tolist()
            for name in table.columns]
    with _staged_with_sidecar(table, path) as tmp:
        _write_csv_file(tmp, table.columns, zip(*text))
    return Path(path)


def read_csv(path: str | Path) -> Parts:
    """(columns, video_frames) of a ScoreTable CSV (version 1 or 2); the table class builds the
    table and attaches the sidecar.

    Required columns get their fixed types; extra columns are read as int64 when every value
    is an integer, float64 when every value is a number, bool when every value is True/False,
    str otherwise (JSON keeps exact types, e.g. of a str column of digits).

    Raises:
        FileNotFoundError: no such file.
        ScoreTableError: not a ScoreTable CSV (names the file and the missing columns), or
            bad values (names the file and the column).
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
    missing = [name for name in (COLUMNS if "kind" in header else V1_COLUMNS)
               if name not in header]
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
        rows = text["object_id"] != str(NO_ROW)
        columns = {name: _parse_text(name, values[rows], REQUIRED_TYPES.get(name))
                   for name, values in text.items()}
    except ScoreTableError as exc:
        raise ScoreTableError(f"{path}: {exc}") from exc
    if "kind" not in columns:  # version 1: object rows only
        columns = {"kind": np.full(int(rows.sum()), "object"), **columns}
    return columns, frames_by_video(text["video"], all_frames)


# ---------------------------------------------------------------------------- JSON
def write_json(table: "ScoreTable", path: str | Path) -> Path:
    """Write ``table`` as JSON (module docstring), with its pixel sidecar; returns ``path``."""
    doc = {
        "format": FORMAT_NAME, "version": FORMAT_VERSION,
        "videos": {video: {"frames": frames.tolist()}
                   for video, frames in table.video_frames.items()},
        "dtypes": {name: type_name(table[name]) for name in table.columns},
        "columns": {name: _json_values(table[name]) for name in table.columns},
    }
    with _staged_with_sidecar(table, path) as tmp:
        tmp.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return Path(path)


def read_json(path: str | Path) -> Parts:
    """(columns, video_frames) of a ScoreTable JSON file (version 1 or 2).

    Raises:
        FileNotFoundError: no such file.
        ScoreTableError: not a ScoreTable JSON file (names the file and what is missing), a
            newer version, or bad values.
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
                                           REQUIRED_TYPES.get(name) or types.get(name))
                   for name, values in doc["columns"].items()}
    except ScoreTableError as exc:
        raise ScoreTableError(f"{path}: {exc}") from exc
    if version == 1 and "kind" not in columns and "score" in columns:  # object rows only
        columns = {"kind": np.full(len(columns["score"]), "object"), **columns}
    return columns, video_frames


# ---------------------------------------------------------------------------- other CSVs
def write_frame_scores_csv(path: str | Path, frame_scores: Mapping[str, FrameScores],
                           labels: Mapping[str, np.ndarray] | None = None) -> Path:
    """Write ``video,frame,score`` (plus ``label`` when ``labels`` are given), one line per
    frame of each video, atomically; returns ``path``. ``labels`` maps each video to its 0/1
    frame labels indexed by frame number."""
    header = ["video", "frame", "score"] + (["label"] if labels is not None else [])
    parts = []
    for video, fs in frame_scores.items():
        fields = [np.full(len(fs), video), fs.frames.astype(np.str_), fs.scores.astype(np.str_)]
        if labels is not None:
            fields.append(fs.labels_at(labels[video], video).astype(np.int64).astype(np.str_))
        parts.append(fields)
    columns = [np.concatenate(column).tolist() for column in zip(*parts)] if parts else []
    with atomic_path(path) as tmp:
        _write_csv_file(tmp, header, zip(*columns))
    return Path(path)


def object_csv_rows(video: str, frame: int, detections: "Detections",
                    scores: np.ndarray) -> list[list[str]]:
    """The CSV lines (header :data:`~stgraph.scores.columns.COLUMNS`) of one frame's object rows,
    as :func:`write_csv` writes them, or its placeholder line when it has no object: for writers
    that stream a table frame by frame (``stgraph watch``)."""
    if not len(detections):
        return [[video, "", str(int(frame)), str(NO_ROW)] + [""] * 8]
    names = detections.names
    return [[video, "object", str(int(frame)), str(row),
             *(str(np.float32(v)) for v in detections.boxes[row]), str(int(detections.labels[row])),
             names[row], str(np.float32(detections.scores[row])), repr(float(scores[row]))]
            for row in range(len(detections))]


def frame_csv_row(video: str, frame: int, image_hw: tuple[int, int] | None,
                  score: float) -> list[str]:
    """The CSV line of one frame row (box: the whole frame, NaN when its size is unknown), as
    :func:`write_csv` writes it: for frame-level scores streamed frame by frame."""
    box = [0.0, 0.0, *image_hw[::-1]] if image_hw else [math.nan] * 4
    return [video, "frame", str(int(frame)), "0", *(str(np.float32(v)) for v in box), "-1", "",
            "nan", repr(float(score))]


# ---------------------------------------------------------------------------- helpers
def _parse_text(name: str, text: np.ndarray, column_type: str | None) -> np.ndarray:
    """Parse a CSV column [R] of str as ``column_type`` (inferred when None, see ``read_csv``)."""
    if column_type is None:
        for candidate in ("int64", "float64"):
            try:
                return text.astype(DTYPES[candidate])
            except (ValueError, OverflowError):
                continue
        if text.size and np.isin(text, ("True", "False")).all():
            return text == "True"
        return text
    if column_type == "str":
        return text
    try:
        return text.astype(DTYPES[column_type])
    except (ValueError, OverflowError) as exc:
        raise ScoreTableError(f"column {name!r} holds a value that is not {column_type}: "
                              f"{exc}") from exc


def _json_values(values: np.ndarray) -> list:
    """JSON-ready list: NaN becomes null; float32 goes through its shortest repr (0.1, not
    0.10000000149011612)."""
    if values.dtype.kind != "f":
        return values.tolist()
    as_float64 = values.astype(np.str_).astype(np.float64) if values.dtype == np.float32 else values
    return np.where(np.isnan(as_float64), None, as_float64).tolist()


def _column_from_json(name: str, values: Any, column_type: str | None) -> np.ndarray:
    """A column read from JSON (null -> NaN in float columns; type inferred when None)."""
    if column_type is not None and column_type not in DTYPES:
        raise ScoreTableError(f"column {name!r} has unknown type {column_type!r}; "
                              f"known are {sorted(DTYPES)}")
    if column_type in ("float32", "float64"):
        try:
            values = np.array(values, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ScoreTableError(f"column {name!r} holds a value that is not a number: "
                                  f"{exc}") from exc
    return as_column(name, values, column_type)


def _write_csv_file(path: Path, header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """Write a UTF-8 CSV to ``path`` (a temporary file of an atomic write)."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
