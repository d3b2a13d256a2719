"""CUHK Avenue (Lu, Shi, Jia, "Abnormal Event Detection at 150 FPS in MATLAB", ICCV 2013).

Official layout::

    training_videos/01.avi .. 16.avi                      normal training videos
    testing_videos/01.avi .. 21.avi                       test videos
    ground_truth_demo/testing_label_mask/1_label.mat ..   per test video N (not zero-padded): MATLAB cell
                                                          ``volLabel`` [1, F] of H×W uint8 masks

A test frame is anomalous when its mask has any pixel set. Partial copies are fine: masks of
videos that are not present are ignored; a present test video without its mask file is an error.

Example:
    >>> ds = load_avenue("../shared/data/avenue")                     # doctest: +SKIP
    >>> ds.test[0].name, len(ds.test[0].labels)                       # doctest: +SKIP
    ('08', 36)
"""
from __future__ import annotations

from pathlib import Path

from stgraph.datasets.folders import DatasetError, VideoDataset, VideoItem, check_videos, raise_problems
from stgraph.datasets.labels import masks_to_labels, read_pixel_masks
from stgraph.datasets.ucsd import video_number
from stgraph.io.frames import VIDEO_EXTENSIONS, natural_key

__all__ = ["load_avenue", "is_avenue", "MASK_FOLDER"]

MASK_FOLDER = "ground_truth_demo/testing_label_mask"
SPLITS = {"train": "training_videos", "test": "testing_videos"}


def is_avenue(root: Path) -> bool:
    """Whether ``root`` looks like CUHK Avenue (``training_videos/`` or ``testing_videos/``)."""
    return any((root / d).is_dir() for d in SPLITS.values())


def _videos(folder: Path, split: str, fps: float | None) -> list[VideoItem]:
    files = sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS),
                   key=lambda p: natural_key(p.name))
    return [VideoItem(p.stem, p, split, fps=fps) for p in files]


def load_avenue(root: str | Path, labels: bool = True, fps: float | None = None) -> VideoDataset:
    """Read CUHK Avenue in its official layout (see the module docstring).

    Args:
        root: folder holding ``training_videos/``, ``testing_videos/`` and ``ground_truth_demo/``.
        labels: read the test masks into frame labels (``False``: score-only use, no ground truth
            needed; this reads every mask file once, a few seconds for the full set).
        fps: override the videos' own frame rate (25).

    Raises:
        DatasetError: listing every problem (missing folders or mask files, unreadable videos or
            .mat files, mask counts that differ from the frame counts).
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset folder not found: {root}")
    problems: list[str] = []
    ds = VideoDataset(name=root.name, root=root)
    for split, sub in SPLITS.items():
        if not (root / sub).is_dir():
            problems.append(f"missing split folder {root / sub}/")
            continue
        items = _videos(root / sub, split, fps)
        if not items:
            problems.append(f"no video files in {root / sub}")
        setattr(ds, split, items)
    mask_dir = root / MASK_FOLDER
    if labels and not mask_dir.is_dir():
        problems.append(f"missing ground truth folder {mask_dir}/ (pass labels=False for score-only use)")
    elif labels:
        for item in ds.test:
            mat = mask_dir / f"{video_number(item.name)}_label.mat"
            if not mat.is_file():
                problems.append(f"test video {item.name!r}: mask file not found: {mat}")
                continue
            item.mask_path = mat
            try:
                item.labels = masks_to_labels(read_pixel_masks(mat))
            except (OSError, ValueError) as exc:
                problems.append(f"test video {item.name!r}: {exc}")
                item.mask_path = None
    check_videos(ds.train + ds.test, problems)
    raise_problems(root, problems)
    return ds
