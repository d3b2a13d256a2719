"""Video datasets stored as ``training/`` and ``testing/`` folders, with frame labels.

Layouts read (the first that matches wins, per split)::

    ROOT/training/frames/<video>/<000..>.jpg    UCSD Ped1/Ped2 re-packaged layout (MNAD, HF2-VAD)
    ROOT/testing/frames/<video>/<000..>.jpg
    ROOT/ground_truth/frame_labels.npz          one uint8 array per test video, 1 = anomalous frame

    ROOT/training/videos/<video>.avi            the same with video files (your own cameras)
    ROOT/training/<video>.mp4 | <video>/        video files or frame folders directly in the split

Frame labels may also be given as a path (``.npz`` with one array per video, a folder of
``<video>.npy``, or a ``video,start,end`` CSV of 0-based inclusive frame intervals, see
:mod:`stgraph.datasets.labels`) to :func:`load_video_folder`. Every problem found (missing split, label length
that does not match the frame count, labels for unknown videos) is reported in **one** error.

A **subset** of a dataset (some of its videos, its whole labels file) loads: labels of videos that
are not present are left out, with a log line, as long as every present test video has labels
(when some have none, labels for absent videos more likely mean misnamed videos: an error).

Frame rate: ``VideoItem.fps`` is the rate the reader knows (a dataset's documented rate, the
``fps`` argument, else the video container's own); ``None`` for frame folders of unknown rate.

Example:
    >>> ds = load_video_folder("../shared/data/ucsd_ped2")              # doctest: +SKIP
    >>> ds                                                                  # doctest: +SKIP
    VideoDataset('ucsd_ped2', train=16 videos, test=12 videos, labelled=12)
    >>> frames = ds.test[0].source()                                       # a FrameSource
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import logging

import numpy as np

from stgraph.datasets.labels import intervals_to_labels, mask_count, read_interval_csv, read_pixel_masks
from stgraph.io.frames import (IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, FrameSource, ImageFolderSource,
                               VideoFileSource, natural_key)

__all__ = ["VideoItem", "VideoDataset", "DatasetError", "load_video_folder", "load_frame_labels",
           "check_videos", "raise_problems"]

logger = logging.getLogger(__name__)

SPLIT_NAMES = {"train": ("training", "train", "Train"), "test": ("testing", "test", "Test")}
LABEL_FILES = ("ground_truth/frame_labels.npz", "frame_labels.npz", "testing/frame_labels.npz")


class DatasetError(ValueError):
    """A dataset folder is incomplete or inconsistent; the message lists every problem found."""


@dataclass
class VideoItem:
    """One video of a dataset: a frame folder or a video file, with optional frame labels [T].

    ``fps`` is the video's frame rate as the dataset reader knows it (UCSD Ped1/Ped2 10,
    ShanghaiTech 24, CUHK Avenue 25, UCF-Crime 30, video files: their container's rate), or
    ``None`` when unknown (frame folders of your own cameras: pass ``fps=``); sources and
    time stamps use it. ``mask_path`` locates pixel masks (a folder of images, ``.npy`` or
    ``.mat``; read with :meth:`pixel_masks`); ``meta`` holds reader-specific facts (``scene``,
    ``category``, ...).
    """

    name: str
    path: Path
    split: str
    labels: np.ndarray | None = field(default=None, repr=False)
    fps: float | None = None
    mask_path: Path | None = field(default=None, repr=False)
    meta: dict = field(default_factory=dict, repr=False)

    def source(self, resize: tuple[int, int] | None = None, stride: int = 1) -> FrameSource:
        """A :class:`~stgraph.io.FrameSource` over this video's frames."""
        if self.path.is_dir():
            return ImageFolderSource(self.path, resize=resize, stride=stride, fps=self.fps)
        return VideoFileSource(self.path, resize=resize, stride=stride, fps=self.fps)

    def __len__(self) -> int:
        return len(self.source())

    def pixel_masks(self) -> np.ndarray:
        """Pixel masks ``bool [T, H, W]`` (True = anomalous pixel) of this video.

        Raises:
            DatasetError: the video has no pixel masks, or they cannot be read.
        """
        if self.mask_path is None:
            raise DatasetError(f"video {self.name!r} has no pixel masks")
        try:
            return read_pixel_masks(self.mask_path)
        except (OSError, ValueError) as exc:
            raise DatasetError(f"pixel masks of video {self.name!r}: {exc}") from None


@dataclass
class VideoDataset:
    """Train (normal) and test videos of one dataset, and the test videos' frame labels."""

    name: str
    root: Path
    train: list[VideoItem] = field(default_factory=list)
    test: list[VideoItem] = field(default_factory=list)

    @property
    def labels(self) -> dict[str, np.ndarray]:
        """Frame labels of the labelled test videos, by video name."""
        return {v.name: v.labels for v in self.test if v.labels is not None}

    def __repr__(self) -> str:
        return (f"VideoDataset({self.name!r}, train={len(self.train)} videos, test={len(self.test)} videos, "
                f"labelled={len(self.labels)})")


def _find_split(root: Path, split: str) -> Path | None:
    for name in SPLIT_NAMES[split]:
        if (root / name).is_dir():
            return root / name
    return None


def _list_videos(split_dir: Path) -> list[Path]:
    """Frame folders or video files of one split (``frames/`` or ``videos/`` sub-folder if present)."""
    for sub in ("frames", "videos"):
        if (split_dir / sub).is_dir():
            split_dir = split_dir / sub
            break
    entries = []
    for p in split_dir.iterdir():
        if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS:
            entries.append(p)
        elif p.is_dir() and any(q.suffix.lower() in IMAGE_EXTENSIONS for q in p.iterdir()):
            entries.append(p)
    return sorted(entries, key=lambda p: natural_key(p.name))


def load_frame_labels(path: str | Path) -> dict[str, np.ndarray]:
    """Frame labels by video name from an ``.npz`` (one array per video) or a folder of ``.npy``.

    Values are returned as uint8 arrays of 0/1; anything else raises :class:`DatasetError`.
    """
    path = Path(path)
    if path.is_dir():
        arrays = {p.stem: np.load(p) for p in sorted(path.glob("*.npy"))}
    elif path.is_file() and path.suffix == ".npz":
        with np.load(path) as npz:
            arrays = {k: npz[k] for k in npz.files}
    elif path.is_file() and path.suffix == ".npy":
        arrays = {path.stem: np.load(path)}
    else:
        raise DatasetError(f"frame labels not found (expected .npz, .npy or a folder of .npy): {path}")
    if not arrays:
        raise DatasetError(f"no frame label arrays in {path}")
    out = {}
    for name, arr in arrays.items():
        arr = np.asarray(arr).reshape(-1)
        if arr.size and not np.isin(arr, (0, 1)).all():
            raise DatasetError(f"frame labels of video {name!r} in {path} must be 0/1")
        out[name] = arr.astype(np.uint8)
    return out


def raise_problems(root: Path, problems: Sequence[str]) -> None:
    """Raise one :class:`DatasetError` listing every problem found in dataset ``root`` (if any)."""
    if problems:
        raise DatasetError(f"dataset {root} has {len(problems)} problem(s):\n  - " + "\n  - ".join(problems))


def check_videos(items: Sequence[VideoItem], problems: list[str]) -> dict[str, int | None]:
    """Open every video, read its first frame and compare label/mask lengths with its frame count.

    Appends one line per problem to ``problems`` (unreadable video or first frame, label or mask
    length that differs from the frame count). Returns the frame count of each readable video by
    ``"split/name"`` (``None`` when the container does not tell).
    """
    counts: dict[str, int | None] = {}
    for item in items:
        where = f"{item.split} video {item.name!r}"
        try:
            source = item.source()
            if item.fps is None:
                item.fps = source.known_fps  # a video file's own rate (None for frame folders)
            if next(iter(source), None) is None:
                problems.append(f"{where}: no frames in {item.path}")
                continue
            n_frames: int | None = len(source)
        except TypeError:
            n_frames = None  # unknown frame count (some containers): checked when scoring
        except (OSError, ValueError) as exc:
            problems.append(f"{where}: {exc}")
            continue
        counts[f"{item.split}/{item.name}"] = n_frames
        if n_frames is None:
            continue
        if item.labels is not None and len(item.labels) != n_frames:
            problems.append(f"{where}: {n_frames} frames but {len(item.labels)} labels")
        if item.mask_path is not None:
            try:
                n_masks = mask_count(item.mask_path)
            except (OSError, ValueError) as exc:
                problems.append(f"{where}: pixel masks: {exc}")
                continue
            same_as_labels = item.labels is not None and len(item.labels) == n_masks  # reported above
            if n_masks != n_frames and not same_as_labels:
                problems.append(f"{where}: {n_frames} frames but {n_masks} pixel masks in {item.mask_path}")
    return counts


def _labels_from_intervals(path: Path, items: Sequence[VideoItem], problems: list[str]) -> dict[str, np.ndarray]:
    """Frame labels of ``items`` from an interval CSV (frame counts read from the videos)."""
    out = {}
    for name, intervals in read_interval_csv(path).items():
        item = next((v for v in items if v.name == name), None)
        if item is None:
            out[name] = np.zeros(0, np.uint8)  # reported as unknown by the caller
            continue
        try:
            out[name] = intervals_to_labels(intervals, len(item))
        except (TypeError, OSError) as exc:
            problems.append(f"test video {name!r}: cannot count frames for interval labels ({exc})")
        except ValueError as exc:
            problems.append(f"test video {name!r} in {path}: {exc}")
    return out


def _restrict_labels(label_map: dict[str, np.ndarray], test: Sequence[VideoItem],
                     problems: list[str]) -> dict[str, np.ndarray]:
    """Labels of the present test videos; labels of absent videos are dropped (a subset) when
    every present test video has labels, else reported as a problem (likely misnamed videos)."""
    present = {v.name for v in test}
    absent = sorted(set(label_map) - present)
    if not absent:
        return label_map
    unlabelled = sorted(present - set(label_map))
    if unlabelled:
        problems.append(f"labels given for videos not in the test split: {absent} (while test "
                        f"videos {unlabelled} have none: misnamed?)")
        return label_map
    logger.info("labels of %d video(s) not in this dataset's test split are left out (a subset): "
                "%s", len(absent), absent[:10])
    return {name: labels for name, labels in label_map.items() if name in present}


def load_video_folder(root: str | Path, labels: str | Path | Mapping[str, np.ndarray] | None = None,
                      fps: float | None = None, require_train: bool = True,
                      require_test: bool = True) -> VideoDataset:
    """Read a ``training/`` + ``testing/`` dataset folder (see the module docstring for layouts).

    Args:
        root: dataset folder.
        labels: frame labels (``.npz``, ``.npy`` folder, interval ``.csv`` or a dict); default:
            ``ground_truth/frame_labels.npz`` when present.
        fps: frame rate of the videos (default: video files' own rate, ``None`` for frame
            folders, which then play at 25 fps).
        require_train: raise if the training split is missing (set False for score-only use).
        require_test: raise if the test split is missing (set False for fit-only use).

    Raises:
        DatasetError: listing every problem found (missing folders, label length mismatches, ...).
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset folder not found: {root}")
    problems: list[str] = []
    ds = VideoDataset(name=root.name, root=root)
    for split in ("train", "test"):
        split_dir = _find_split(root, split)
        if split_dir is None:
            if (require_test if split == "test" else require_train):
                problems.append(f"missing split folder {root}/{SPLIT_NAMES[split][0]}/")
            continue
        videos = _list_videos(split_dir)
        if not videos:
            problems.append(f"no videos or frame folders in {split_dir}")
        items = [VideoItem(p.stem if p.is_file() else p.name, p, split, fps=fps) for p in videos]
        setattr(ds, split, items)

    if labels is None:
        found = next((root / f for f in LABEL_FILES if (root / f).is_file()), None)
        label_map = load_frame_labels(found) if found is not None else {}
    elif isinstance(labels, Mapping):
        label_map = {k: np.asarray(v, np.uint8).reshape(-1) for k, v in labels.items()}
    elif Path(labels).suffix.lower() == ".csv":
        label_map = _labels_from_intervals(Path(labels), ds.test, problems)
    else:
        label_map = load_frame_labels(labels)

    label_map = _restrict_labels(label_map, ds.test, problems)
    for item in ds.test:
        item.labels = label_map.get(item.name)
    check_videos(ds.train + ds.test, problems)
    raise_problems(root, problems)
    return ds
