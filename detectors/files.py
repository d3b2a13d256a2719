"""Detections on disk, so that any external detector plugs in (and detections can be cached).

Two formats, chosen by the file suffix:

``.jsonl`` (JSON lines, human readable)
    Line 1 may be a header: any JSON object without a ``"boxes"`` key, e.g.
    ``{"format": "stgraph-detections", "version": 2, "video": "01.avi", "num_frames": 180,
    "class_names": ["person", "bicycle", ...]}``. Every other line is one frame,
    :meth:`Detections.to_dict` of it without ``class_names`` when they are the header's::

        {"frame_index": 0, "image_size": [240, 360],
         "boxes": [[10.0, 20.0, 30.0, 60.0]], "scores": [0.9], "labels": [0]}

    (``features`` with its width ``feature_dim``, and ``track_ids`` are optional keys; a frame
    whose class names differ from the header's carries its own ``class_names``.) Boxes are
    stored to 1/1000 pixel and scores to 6 decimals. Version 1 files (class names on every line,
    no ``class_names`` in the header) are read as well.

``.npz`` (compact, exact)
    Rows of all frames concatenated, ``offsets`` [F + 1] delimiting each frame's rows::

        boxes [R, 4] float32, scores [R] float32, labels [R] int64,
        features [R, D] float32 (when every frame has features), track_ids [R] int64 (likewise),
        offsets [F + 1] int64, frame_index [F] int64, image_size [F, 2] int64 (-1 = unknown),
        class_set [F] int64 (index into the header's ``class_name_sets``),
        header: a JSON string with ``format``, ``version``, ``video``, ``num_frames`` and
        ``class_name_sets``.

Writes are atomic (:func:`atomic_path`: temporary file in the same folder, then ``os.replace``;
``stgraph.fileio`` re-exports it, so the whole project has one implementation). Reading a
malformed, truncated or corrupt file raises :class:`~detectors.base.DetectionError` naming the
file (and the line for JSON lines).

Per-box rows from anywhere (a CSV of another tool, a data frame) become per-frame ``Detections``
with :func:`detections_from_records`.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import stat
import tokenize
import zipfile
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from detectors.base import DetectionError, Detections

__all__ = ["write_detections", "read_detections", "read_header", "detections_from_records",
           "require_file", "atomic_path", "atomic_directory", "RECORD_COLUMNS", "FORMAT_NAME",
           "FORMAT_VERSION", "NPZ_READ_ERRORS"]

FORMAT_NAME = "stgraph-detections"
#: 2: JSON lines store the class names once, in the header (version 1 files are still read).
FORMAT_VERSION = 2
#: What reading a corrupt or truncated ``.npz`` may raise (numpy parses the array headers with
#: ``tokenize`` / ``ast``; the members are zlib streams in a zip archive).
NPZ_READ_ERRORS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error,
                   tokenize.TokenError, SyntaxError)
#: Columns of a flat per-box record, in the order of an [R, 7] array.
RECORD_COLUMNS = ("frame", "x1", "y1", "x2", "y2", "score", "label")
_SUFFIXES = (".jsonl", ".npz")


def require_file(path: str | os.PathLike, what: str) -> Path:
    """``Path(path)`` when it is an existing file, else ``FileNotFoundError`` naming ``what``."""
    resolved = Path(path).expanduser()
    if not resolved.is_file():
        raise FileNotFoundError(f"{what} not found: {resolved}")
    return resolved


def _unique_sibling(path: Path, tag: str, suffix: str = "") -> Path:
    return path.with_name(f".{path.name}.{tag}{secrets.token_hex(4)}{suffix}")


def _create_temporary(path: Path, suffix: str) -> Path:
    """Create an empty, uniquely named file next to ``path`` with the mode ``open()`` would give.

    ``tempfile.mkstemp`` creates files 0600 whatever the umask; this creates them as
    ``open(path, "w")`` does: ``0o666`` minus the umask for a new file, the existing file's mode
    when ``path`` exists.
    """
    for _ in range(100):
        tmp = _unique_sibling(path, "", suffix)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
        except FileExistsError:
            continue
        try:
            if path.exists():  # like open(): overwriting a file keeps its permissions
                os.fchmod(fd, stat.S_IMODE(path.stat().st_mode))
        finally:
            os.close(fd)
        return tmp
    raise FileExistsError(f"cannot create a temporary file next to {path}")


@contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path``, on error it is removed.

    ``suffix`` (default: ``path``'s own suffix) keeps writers that choose a format by extension
    (``np.savez``, ``cv2.imwrite``, matplotlib) happy. The file written gets the permissions a
    plain ``open(path, "w")`` would give it (``0o666`` minus the umask; an overwritten file keeps
    its mode).

    Example:
        >>> with atomic_path("scores.csv") as tmp:                # doctest: +SKIP
        ...     tmp.write_text("video,frame,score\\n")
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {path}: it is a directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = _create_temporary(path, suffix if suffix is not None else path.suffix)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield a new empty directory next to ``path``; on success it becomes ``path``, on error it is
    removed with everything written into it.

    The directory gets the mode ``mkdir()`` would give (``0o777`` minus the umask). An existing
    directory at ``path`` is replaced as a whole: it is renamed aside, the new one renamed into
    place, then the old one deleted, so ``path`` never holds a mix of old and new files (for an
    instant between the two renames it does not exist).

    Example:
        >>> with atomic_directory("model") as tmp:                 # doctest: +SKIP
        ...     (tmp / "config.json").write_text("{}")
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"cannot write the directory {path}: a file of that name exists")
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        tmp = _unique_sibling(path, "tmp-")
        try:
            os.mkdir(tmp, 0o777)  # the umask applies, as for any mkdir()
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f"cannot create a temporary directory next to {path}")
    try:
        yield tmp
        if path.is_dir():
            old = _unique_sibling(path, "old-")
            os.replace(path, old)
            try:
                os.replace(tmp, path)
            except OSError:
                os.replace(old, path)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise ValueError(f"cannot tell the detections format of {path}: use one of {_SUFFIXES}")
    return suffix


def _header(detections: Sequence[Detections], video: str | None) -> dict:
    return {"format": FORMAT_NAME, "version": FORMAT_VERSION,
            "video": None if video is None else str(video), "num_frames": len(detections)}


# ------------------------------------------------------------------------------------------ write
def write_detections(path: str | os.PathLike, detections: Sequence[Detections],
                     video: str | None = None) -> Path:
    """Save one ``Detections`` per frame to ``path`` (``.jsonl`` or ``.npz``, see module docstring).

    Args:
        path: target file; its suffix picks the format. Parent folders are created.
        detections: per-frame detections, in order (frames without objects included).
        video: optional name of the source video, stored in the header.

    Returns:
        The path written.
    """
    path = Path(path)
    fmt = _format_of(path)
    detections = list(detections)
    bad = [i for i, d in enumerate(detections) if not isinstance(d, Detections)]
    if bad:
        raise TypeError(f"write_detections expects Detections; item {bad[0]} is "
                        f"{type(detections[bad[0]]).__name__}")
    if fmt == ".jsonl":
        header = _header(detections, video)
        shared_names = detections[0].class_names if detections else ()
        header["class_names"] = list(shared_names)
        with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(header) + "\n")
            for det in detections:
                record = det.to_dict()
                if det.class_names == shared_names:
                    del record["class_names"]  # stored once, in the header
                handle.write(json.dumps(record) + "\n")
    else:
        arrays = _pack_npz(detections, video)
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)
    return path


def _optional_column(detections: Sequence[Detections], name: str) -> np.ndarray | None:
    """Concatenation of an optional per-row field (``features``/``track_ids``) of all frames."""
    values = [getattr(d, name) for d in detections]
    present = [v is not None for v in values]
    if not any(present):
        return None
    if not all(present):
        missing = detections[present.index(False)].frame_index
        raise DetectionError(f"cannot save {name}: frame {missing} has none while other frames "
                             "have them")
    if name == "features":
        widths = {v.shape[1] for v in values}
        if len(widths) > 1:
            raise DetectionError(f"cannot save features of different widths {sorted(widths)} "
                                 "in one file")
    return np.concatenate(values)


def _pack_npz(detections: Sequence[Detections], video: str | None) -> dict[str, np.ndarray]:
    counts = np.array([len(d) for d in detections], np.int64)
    name_sets: dict[tuple[str, ...], int] = {}
    class_set = [name_sets.setdefault(d.class_names, len(name_sets)) for d in detections]
    header = {**_header(detections, video), "class_name_sets": [list(names) for names in name_sets]}
    arrays = {
        "header": np.array(json.dumps(header)),
        "offsets": np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        "frame_index": np.array([d.frame_index for d in detections], np.int64),
        "image_size": np.array([d.image_size or (-1, -1) for d in detections],
                               np.int64).reshape(-1, 2),
        "class_set": np.array(class_set, np.int64),
        "boxes": np.concatenate([np.zeros((0, 4), np.float32)] + [d.boxes for d in detections]),
        "scores": np.concatenate([np.zeros(0, np.float32)] + [d.scores for d in detections]),
        "labels": np.concatenate([np.zeros(0, np.int64)] + [d.labels for d in detections]),
    }
    for name in ("features", "track_ids"):
        column = _optional_column(detections, name)
        if column is not None:
            arrays[name] = column
    return arrays


# ------------------------------------------------------------------------------------------- read
def read_detections(path: str | os.PathLike) -> list[Detections]:
    """Load the per-frame detections written by :func:`write_detections` (or by another tool in
    the same format). Raises ``FileNotFoundError`` for a missing file and
    :class:`~detectors.base.DetectionError` (naming the file, and the line for ``.jsonl``) for a
    malformed one."""
    path = require_file(path, "detections file")
    if _format_of(path) == ".jsonl":
        return list(_iter_jsonl(path))
    return _unpack_npz(path)


def read_header(path: str | os.PathLike) -> dict:
    """The header of a detections file (``{}`` for a ``.jsonl`` file without one)."""
    path = require_file(path, "detections file")
    if _format_of(path) == ".jsonl":
        try:
            with open(path, encoding="utf-8") as handle:
                first = _parse_json_line(path, 1, handle.readline())
        except UnicodeDecodeError as exc:
            raise DetectionError(f"{path}: not a text (JSON lines) file") from exc
        if first is None or "boxes" in first:
            return {}
        _check_version(path, first)
        return first
    with _open_npz(path) as data:
        return _npz_header(path, data)


def _parse_json_line(path: Path, lineno: int, line: str) -> dict | None:
    if not line.strip():
        return None
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DetectionError(f"{path}:{lineno}: not valid JSON ({exc.msg} at column "
                             f"{exc.colno})") from exc
    if not isinstance(record, dict):
        raise DetectionError(f"{path}:{lineno}: expected a JSON object, "
                             f"got {type(record).__name__}")
    return record


def _check_version(path: Path, header: dict) -> None:
    version = header.get("version", 1)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise DetectionError(f"{path}: detections format version {version!r} is newer than this "
                             f"stgraph reads (up to {FORMAT_VERSION}); upgrade stgraph")


def _iter_jsonl(path: Path) -> Iterator[Detections]:
    shared_names: list[str] = []
    try:
        with open(path, encoding="utf-8") as handle:
            for lineno, line in enumerate(handle, start=1):
                record = _parse_json_line(path, lineno, line)
                if record is None:
                    continue  # blank line
                if lineno == 1 and "boxes" not in record:  # header
                    _check_version(path, record)
                    shared_names = record.get("class_names") or []
                    continue
                if "class_names" not in record:
                    record["class_names"] = shared_names
                try:
                    yield Detections.from_dict(record)
                except (DetectionError, TypeError, ValueError) as exc:
                    raise DetectionError(f"{path}:{lineno}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise DetectionError(f"{path}: not a text (JSON lines) file ({exc.reason} at byte "
                             f"{exc.start})") from exc


@contextmanager
def _open_npz(path: Path) -> Iterator[Any]:
    try:
        data = np.load(path, allow_pickle=False)
    except NPZ_READ_ERRORS as exc:
        raise DetectionError(f"{path}: not a readable .npz detections file ({exc})") from exc
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise DetectionError(f"{path}: holds a single array, not a detections .npz archive")
    with data:
        yield data


def _npz_header(path: Path, data: Any) -> dict:
    if "header" not in data.files:
        raise DetectionError(f"{path}: not a detections .npz file (no 'header' array)")
    try:
        header = json.loads(str(data["header"]))
    except json.JSONDecodeError as exc:
        raise DetectionError(f"{path}: malformed header ({exc.msg})") from exc
    except NPZ_READ_ERRORS as exc:
        raise DetectionError(f"{path}: corrupt or truncated .npz detections file "
                             f"({type(exc).__name__}: {exc})") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        found = header.get("format") if isinstance(header, dict) else header
        raise DetectionError(f"{path}: header format is {found!r}, expected {FORMAT_NAME!r}")
    _check_version(path, header)
    return header


def _unpack_npz(path: Path) -> list[Detections]:
    with _open_npz(path) as data:
        header = _npz_header(path, data)
        required = ("offsets", "frame_index", "image_size", "class_set", "boxes", "scores",
                    "labels")
        missing = [key for key in required if key not in data.files]
        if missing:
            raise DetectionError(f"{path}: detections .npz lacks arrays {missing}")
        try:
            arrays = {key: data[key] for key in data.files if key != "header"}
        except NPZ_READ_ERRORS as exc:
            raise DetectionError(f"{path}: corrupt or truncated .npz detections file "
                                 f"({type(exc).__name__}: {exc})") from exc
    offsets = arrays["offsets"]
    num_frames = len(arrays["frame_index"])
    if (offsets.shape != (num_frames + 1,) or offsets[0] != 0 or np.any(np.diff(offsets) < 0)
            or offsets[-1] != len(arrays["boxes"])):
        raise DetectionError(f"{path}: offsets do not delimit {len(arrays['boxes'])} rows into "
                             f"{num_frames} frames")
    name_sets = [tuple(names) for names in header.get("class_name_sets", [])]
    out = []
    for frame, (start, stop) in enumerate(zip(offsets[:-1], offsets[1:])):
        rows = slice(int(start), int(stop))
        size = arrays["image_size"][frame]
        try:
            out.append(Detections(
                arrays["boxes"][rows], arrays["scores"][rows], arrays["labels"][rows],
                frame_index=int(arrays["frame_index"][frame]),
                image_size=None if size[0] < 0 else (int(size[0]), int(size[1])),
                class_names=name_sets[int(arrays["class_set"][frame])],
                features=arrays["features"][rows] if "features" in arrays else None,
                track_ids=arrays["track_ids"][rows] if "track_ids" in arrays else None,
            ))
        except (DetectionError, IndexError) as exc:
            raise DetectionError(f"{path}: frame {frame}: {exc}") from exc
    return out


# ---------------------------------------------------------------------------------------- records
def _record_columns(records: Any) -> dict[str, np.ndarray]:
    """Columns ``RECORD_COLUMNS`` of a column mapping, a list of row mappings or an [R, 7] array."""
    if isinstance(records, Mapping) or hasattr(records, "columns"):  # dict of columns, data frame
        missing = [c for c in RECORD_COLUMNS if c not in records]
        if missing:
            raise DetectionError(f"detection records lack columns {missing} "
                                 f"(need {RECORD_COLUMNS})")
        return {c: np.asarray(records[c], np.float64).reshape(-1) for c in RECORD_COLUMNS}
    rows = list(records)
    if rows and isinstance(rows[0], Mapping):
        present = [c for c in RECORD_COLUMNS if c in rows[0]]
        return _record_columns({c: [row[c] for row in rows] for c in present})
    table = np.asarray(rows, np.float64)
    if table.size == 0:
        table = table.reshape(0, len(RECORD_COLUMNS))
    if table.ndim != 2 or table.shape[1] != len(RECORD_COLUMNS):
        raise DetectionError(f"detection records must be rows of {RECORD_COLUMNS}, "
                             f"got shape {table.shape}")
    return dict(zip(RECORD_COLUMNS, table.T))


def _integer_column(columns: dict[str, np.ndarray], name: str) -> np.ndarray:
    values = columns[name]
    if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
        raise DetectionError(f"detection records: the {name!r} column must hold integers")
    return values.astype(np.int64)


def detections_from_records(records: Any, num_frames: int | None = None,
                            image_size: tuple[int, int] | None = None,
                            class_names: Sequence[str] = ()) -> list[Detections]:
    """Group flat per-box rows into one ``Detections`` per frame.

    Args:
        records: per-box rows ``(frame, x1, y1, x2, y2, score, label)`` (``RECORD_COLUMNS``) as an
            array-like [R, 7], a list of dicts (e.g. ``csv.DictReader``), or a mapping / data frame
            of columns with those names. Frame numbers are integers; boxes are xyxy pixels.
        num_frames: when given, the result has exactly ``num_frames`` entries (frames ``0 ..
            num_frames - 1``, frames without rows are empty ``Detections``) and a row whose frame is
            outside that range is an error. When ``None``, only frames that have rows are returned,
            in increasing frame order.
        image_size: (H, W) attached to every frame (boxes are clipped to it).
        class_names: names attached to every frame.

    Example:
        >>> rows = np.loadtxt("boxes.csv", delimiter=",", skiprows=1)  # doctest: +SKIP
        >>> dets = detections_from_records(rows, num_frames=180)             # doctest: +SKIP
    """
    columns = _record_columns(records)
    frames, labels = (_integer_column(columns, name) for name in ("frame", "label"))
    if num_frames is not None and frames.size and (frames.min() < 0 or frames.max() >= num_frames):
        raise DetectionError(f"detection records: frames {frames.min()}..{frames.max()} "
                             f"outside 0..{num_frames - 1}")
    order = np.argsort(frames, kind="stable")
    boxes = np.stack([columns[c][order] for c in ("x1", "y1", "x2", "y2")], axis=1)
    scores, labels = columns["score"][order], labels[order]
    present, starts = np.unique(frames[order], return_index=True)
    bounds = np.append(starts, len(order))
    by_frame = {int(f): slice(int(a), int(b)) for f, a, b in zip(present, bounds[:-1], bounds[1:])}
    wanted = range(num_frames) if num_frames is not None else by_frame.keys()
    empty = slice(0, 0)
    return [Detections(boxes[by_frame.get(f, empty)], scores[by_frame.get(f, empty)],
                       labels[by_frame.get(f, empty)], frame_index=f, image_size=image_size,
                       class_names=tuple(class_names)) for f in wanted]
