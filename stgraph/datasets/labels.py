"""Ground-truth file formats of the video anomaly benchmarks: frame intervals and pixel masks.

Frame labels are 1-D ``uint8`` arrays ``[T]`` (1 = anomalous frame); pixel masks are ``bool``
arrays ``[T, H, W]`` (True = anomalous pixel). Readers here parse one file each and raise
:class:`ValueError` / :class:`FileNotFoundError` naming the file; the dataset readers collect
those into one :class:`~stgraph.datasets.folders.DatasetError`.

Formats:

* UCSD ``UCSDped{1,2}.m``: ``TestVideoFile{end+1}.gt_frame = [61:180];`` — 1-based, inclusive
  intervals, one line per test video in order (several intervals: ``[5:90, 140:200]``).
* interval CSV (your own cameras): header ``video,start,end``, one row per anomalous interval,
  **0-based inclusive** frame indices; a row with empty or ``-1`` start/end lists a video
  without anomalies.
* video labels (weakly supervised training, ``stgraph fit --labels``): a CSV with header
  ``video,label`` (one row per video, label 0 = normal, 1 = contains an anomaly) or a JSON
  object ``{"video": 0 | 1, ...}``; video names as the CLI names videos (file stem or folder
  name).
* pixel masks: a folder of images (UCSD ``Test001_gt/001.bmp``; nonzero = anomalous), a MATLAB
  ``.mat`` with a cell ``volLabel`` of per-frame masks (CUHK Avenue), or an ``.npy`` ``[T, H, W]``
  (ShanghaiTech ``test_pixel_mask``).
"""
from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np

from stgraph.io.frames import IMAGE_EXTENSIONS, natural_key

__all__ = ["intervals_to_labels", "read_ucsd_m", "read_interval_csv", "read_pixel_masks",
           "mask_count", "masks_to_labels", "mask_files", "MAT_MASK_KEY", "read_video_labels"]

MAT_MASK_KEY = "volLabel"
"""Variable holding the per-frame mask cell array in CUHK Avenue ``{N}_label.mat`` files."""

_M_LINE = re.compile(r"TestVideoFile\s*\{\s*(end\s*\+\s*1|\d+)\s*\}\s*\.gt_frame\s*=\s*\[([^\]]*)\]")
_M_RANGE = re.compile(r"(\d+)\s*(?::\s*(\d+))?")


def intervals_to_labels(intervals: Iterable[tuple[int, int]], n_frames: int, one_based: bool = False) -> np.ndarray:
    """Frame labels ``uint8 [n_frames]`` with 1 inside each inclusive ``(start, end)`` interval.

    Args:
        intervals: inclusive frame intervals; ``one_based`` says whether frame 1 is the first frame.
        n_frames: length of the video.

    Raises:
        ValueError: an interval is reversed or reaches outside ``[0, n_frames)``.
    """
    labels = np.zeros(int(n_frames), dtype=np.uint8)
    shift = 1 if one_based else 0
    for start, end in intervals:
        lo, hi = int(start) - shift, int(end) - shift
        if lo < 0 or hi < lo or hi >= n_frames:
            first = 1 if one_based else 0
            raise ValueError(f"interval [{start}, {end}] is outside the video's frames "
                             f"{first}..{n_frames - 1 + shift}")
        labels[lo:hi + 1] = 1
    return labels


def read_ucsd_m(path: str | Path) -> list[list[tuple[int, int]]]:
    """Anomalous frame intervals (1-based, inclusive) of each test video from ``UCSDped{1,2}.m``.

    Returns one list of ``(start, end)`` per ``TestVideoFile`` entry, in test-video order
    (``Test001`` first). MATLAB comments (``%``) are ignored.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"UCSD annotation file not found: {path}")
    videos: dict[int, list[tuple[int, int]]] = {}
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        line = line.split("%", 1)[0]
        match = _M_LINE.search(line)
        if match is None:
            continue
        slot = len(videos) if match.group(1).replace(" ", "") == "end+1" else int(match.group(1)) - 1
        ranges = [(int(a), int(b) if b else int(a)) for a, b in _M_RANGE.findall(match.group(2))]
        if not ranges:
            raise ValueError(f"{path}:{number}: no frame interval in {line.strip()!r}")
        videos[slot] = ranges
    if not videos:
        raise ValueError(f"no 'TestVideoFile{{...}}.gt_frame = [a:b]' lines in {path}")
    missing = sorted(set(range(max(videos) + 1)) - set(videos))
    if missing:
        raise ValueError(f"{path}: no gt_frame for test videos {[m + 1 for m in missing]}")
    return [videos[i] for i in range(len(videos))]


def read_interval_csv(path: str | Path) -> dict[str, list[tuple[int, int]]]:
    """Anomalous intervals by video from a ``video,start,end`` CSV (0-based, inclusive).

    A video whose only row has empty or ``-1`` start/end is listed with no intervals.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"interval CSV not found: {path}")
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        fields = {f.strip().lower() for f in reader.fieldnames or ()}
        if not {"video", "start", "end"} <= fields:
            raise ValueError(f"{path}: header must have columns video,start,end; got {reader.fieldnames}")
        out: dict[str, list[tuple[int, int]]] = {}
        for row_number, row in enumerate(reader, 2):
            row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
            intervals = out.setdefault(row["video"], [])
            if row["start"] in ("", "-1") and row["end"] in ("", "-1"):
                continue
            try:
                intervals.append((int(row["start"]), int(row["end"])))
            except ValueError:
                raise ValueError(f"{path}:{row_number}: start/end must be integers, got "
                                 f"{row['start']!r}, {row['end']!r}") from None
    if not out:
        raise ValueError(f"no rows in interval CSV {path}")
    return out


def read_video_labels(path: str | Path) -> dict[str, int]:
    """Video-level labels ``{video: 0 | 1}`` from a ``video,label`` CSV or a JSON object.

    Raises:
        FileNotFoundError: no such file.
        ValueError: another layout, a label that is not 0/1, or a video listed twice (the
            message names the file and the row or key).
    """
    import json

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video labels file not found: {path}")
    if path.suffix.lower() == ".json":
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path} is not valid JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise ValueError(f"{path}: expected a JSON object {{video: 0 or 1}}")
        items = [(str(k), v, f"key {k!r}") for k, v in doc.items()]
    else:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        if not rows or [c.strip().lower() for c in rows[0]] != ["video", "label"]:
            raise ValueError(f"{path}: expected a CSV with header 'video,label'")
        items = [(row[0].strip(), row[1].strip() if len(row) > 1 else "", f"row {n}")
                 for n, row in enumerate(rows[1:], start=2) if any(c.strip() for c in row)]
    out: dict[str, int] = {}
    for video, value, where in items:
        if str(value) not in ("0", "1"):
            raise ValueError(f"{path} {where}: label must be 0 or 1, got {value!r}")
        if video in out:
            raise ValueError(f"{path} {where}: video {video!r} is listed twice")
        out[video] = int(value)
    if not out:
        raise ValueError(f"{path} lists no videos")
    return out


def mask_files(folder: str | Path) -> list[Path]:
    """Image files of a mask folder, naturally sorted (``frame2.bmp`` before ``frame10.bmp``)."""
    folder = Path(folder)
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS
                   and not p.name.startswith(".")), key=lambda p: natural_key(p.name))


def mask_count(path: str | Path) -> int:
    """Number of frames in a pixel-mask file or folder, without reading the pixels."""
    path = Path(path)
    if path.is_dir():
        return len(mask_files(path))
    if path.suffix == ".npy":
        return int(np.load(path, mmap_mode="r").shape[0])
    if path.suffix == ".mat":
        import scipy.io

        shapes = {name: shape for name, shape, _ in scipy.io.whosmat(str(path))}
        if MAT_MASK_KEY not in shapes:
            raise ValueError(f"{path}: no variable {MAT_MASK_KEY!r} (has {sorted(shapes)})")
        return int(np.prod(shapes[MAT_MASK_KEY]))
    raise FileNotFoundError(f"pixel masks not found (expected a folder, .npy or .mat): {path}")


def read_pixel_masks(path: str | Path) -> np.ndarray:
    """Pixel masks ``bool [T, H, W]`` (True = anomalous) from a folder of images, ``.npy`` or ``.mat``.

    Raises:
        FileNotFoundError / ValueError: naming the file that is missing, unreadable or of the
            wrong shape.
    """
    path = Path(path)
    if path.is_dir():
        frames = []
        for f in mask_files(path):
            image = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
            if image is None:
                raise ValueError(f"cannot read mask image: {f}")
            frames.append(image > 0)
        if not frames:
            raise ValueError(f"no mask images in {path}")
        return _stack(frames, path)
    if path.suffix == ".npy" and path.is_file():
        masks = np.load(path)
        if masks.ndim != 3:
            raise ValueError(f"{path}: pixel masks must be [T, H, W], got shape {masks.shape}")
        return masks > 0
    if path.suffix == ".mat" and path.is_file():
        return _read_mat_masks(path)
    raise FileNotFoundError(f"pixel masks not found (expected a folder, .npy or .mat): {path}")


def _read_mat_masks(path: Path) -> np.ndarray:
    import scipy.io

    try:
        content = scipy.io.loadmat(str(path), variable_names=[MAT_MASK_KEY])
    except Exception as exc:  # scipy raises several types for corrupt files
        raise ValueError(f"cannot read MATLAB file {path}: {exc}") from None
    if MAT_MASK_KEY not in content:
        raise ValueError(f"{path}: no variable {MAT_MASK_KEY!r}")
    cell = np.asarray(content[MAT_MASK_KEY])
    frames = [np.asarray(m) for m in cell.reshape(-1)] if cell.dtype == object else list(np.moveaxis(cell, -1, 0))
    return _stack([m > 0 for m in frames], path)


def _stack(frames: Sequence[np.ndarray], path: Path) -> np.ndarray:
    shapes = {f.shape for f in frames}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"{path}: masks must be 2-D and all the same size, got shapes {sorted(shapes)}")
    return np.stack(frames)


def masks_to_labels(masks: np.ndarray) -> np.ndarray:
    """Frame labels ``uint8 [T]`` from masks ``[T, H, W]``: 1 where any pixel is set."""
    masks = np.asarray(masks)
    return masks.reshape(masks.shape[0], -1).any(axis=1).astype(np.uint8)
