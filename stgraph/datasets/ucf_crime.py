"""UCF-Crime (Sultani, Chen, Shah, "Real-world Anomaly Detection in Surveillance Videos", CVPR 2018).

Official layout (video folders may be split over ``Anomaly-Videos-Part-N/``; every video file is
found by name anywhere under ``root``)::

    Abuse/Abuse001_x264.mp4 ... Training_Normal_Videos_Anomaly/Normal_Videos001_x264.mp4 ...
    Anomaly_Detection_splits/Anomaly_Train.txt     one relative path per line (category/file.mp4)
    Anomaly_Detection_splits/Anomaly_Test.txt
    Temporal_Anomaly_Annotation_for_Testing_Videos.txt
        Arrest039_x264.mp4  Arrest  7215  10715  -1  -1     two intervals per video, -1 = none

Frame labels follow the common reading of the annotation (RTFM, VadCLIP): 0-based frame numbers,
``labels[start:end] = 1`` (end exclusive); an interval running past the last frame is cut there.

Training videos of the official split include anomalous ones (video-level labels only, for weak
supervision). ``train="normal"`` (default) keeps the normal ones, as unsupervised methods need;
``train="all"`` keeps all, each with ``meta["anomalous"]``.

Example:
    >>> ds = load_ucf_crime("UCF_Crimes")                              # doctest: +SKIP
    >>> ds.test[0].meta                                               # doctest: +SKIP
    {'category': 'Abuse', 'anomalous': True}
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from stgraph.datasets.folders import DatasetError, VideoDataset, VideoItem, check_videos, raise_problems
from stgraph.io.frames import VIDEO_EXTENSIONS

__all__ = ["load_ucf_crime", "is_ucf_crime", "read_ucf_annotation", "ANNOTATION_FILE"]

ANNOTATION_FILE = "Temporal_Anomaly_Annotation_for_Testing_Videos.txt"
LIST_FILES = {"train": "Anomaly_Train.txt", "test": "Anomaly_Test.txt"}
NORMAL = "Normal"


def _find(root: Path, name: str) -> Path | None:
    return next(iter(sorted(root.rglob(name))), None)


def is_ucf_crime(root: Path) -> bool:
    """Whether ``root`` holds the UCF-Crime temporal annotation file (at any depth)."""
    return _find(root, ANNOTATION_FILE) is not None


def read_ucf_annotation(path: str | Path) -> dict[str, tuple[str, list[tuple[int, int]]]]:
    """``{video stem: (category, [(start, end), ...])}`` from the temporal annotation file.

    Intervals with ``-1`` are dropped (normal videos have none).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"UCF-Crime annotation file not found: {path}")
    out: dict[str, tuple[str, list[tuple[int, int]]]] = {}
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 6:
            raise ValueError(f"{path}:{number}: expected 'video category s1 e1 s2 e2', got {line.strip()!r}")
        try:
            values = [int(v) for v in fields[2:]]
        except ValueError:
            raise ValueError(f"{path}:{number}: frame numbers must be integers: {line.strip()!r}") from None
        intervals = [(s, e) for s, e in zip(values[::2], values[1::2]) if s != -1 and e != -1]
        out[Path(fields[0]).stem] = (fields[1], intervals)
    if not out:
        raise ValueError(f"no annotations in {path}")
    return out


def _read_list(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]


def _labels(intervals: list[tuple[int, int]], n_frames: int) -> np.ndarray:
    labels = np.zeros(n_frames, dtype=np.uint8)
    for start, end in intervals:
        if start < 0 or end <= start or start >= n_frames:
            raise ValueError(f"interval [{start}, {end}) is outside the video's {n_frames} frames")
        labels[start:min(end, n_frames)] = 1
    return labels


def load_ucf_crime(root: str | Path, train: str = "normal", annotation: str | Path | None = None) -> VideoDataset:
    """Read UCF-Crime from its video folders, split lists and temporal annotation.

    Args:
        root: folder holding the videos, the split lists and the annotation (any depth).
        train: ``"normal"`` (normal training videos only) or ``"all"``.
        annotation: path of the temporal annotation (default: found under ``root``).

    Without ``Anomaly_Test.txt`` the test split is the annotated videos found; without
    ``Anomaly_Train.txt`` the training split is every other video found.

    Raises:
        DatasetError: listing every problem (missing annotation, listed videos not found, test
            videos without annotation, intervals outside a video, unreadable videos).
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset folder not found: {root}")
    if train not in ("normal", "all"):
        raise DatasetError(f"train must be 'normal' or 'all', got {train!r}")
    problems: list[str] = []
    ann_path = Path(annotation) if annotation is not None else _find(root, ANNOTATION_FILE)
    try:
        if ann_path is None:
            raise FileNotFoundError(f"{ANNOTATION_FILE} not found under {root}")
        annotations = read_ucf_annotation(ann_path)
    except (OSError, ValueError) as exc:
        problems.append(str(exc))
        annotations = {}
    files = {p.stem: p for p in sorted(root.rglob("*")) if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file()}

    ds = VideoDataset(name=root.name, root=root)
    lists = {split: _find(root, name) for split, name in LIST_FILES.items()}
    test_names = ([Path(e).stem for e in _read_list(lists["test"])] if lists["test"]
                  else [n for n in files if n in annotations])
    train_names = ([Path(e).stem for e in _read_list(lists["train"])] if lists["train"]
                   else sorted(set(files) - set(test_names)))
    for split, names in (("train", train_names), ("test", test_names)):
        where = lists[split] or root
        missing = [n for n in names if n not in files]
        if missing:
            problems.append(f"{len(missing)} {split} video(s) listed in {where} not found under {root}: "
                            f"{missing[:5]}{' ...' if len(missing) > 5 else ''}")
        items = []
        for name in names:
            if name not in files:
                continue
            category = annotations[name][0] if name in annotations else files[name].parent.name
            anomalous = not name.startswith(NORMAL) and not category.startswith(NORMAL)
            if split == "train" and train == "normal" and anomalous:
                continue
            items.append(VideoItem(name, files[name], split, meta={"category": category, "anomalous": anomalous}))
        if not items:
            problems.append(f"no {split} videos found under {root}")
        setattr(ds, split, items)

    for item in ds.test:
        if item.name not in annotations:
            if annotations:
                problems.append(f"test video {item.name!r} has no line in {ann_path}")
            continue
        try:
            item.labels = _labels(annotations[item.name][1], len(item))
        except (OSError, TypeError):
            continue  # unreadable video or unknown length: reported by check_videos
        except ValueError as exc:
            problems.append(f"test video {item.name!r}: {exc}")
    check_videos(ds.train + ds.test, problems)
    raise_problems(root, problems)
    return ds
