"""ShanghaiTech Campus (Luo, Liu, Gao, "A Revisit of Sparse Coding Based Anomaly Detection", ICCV 2017).

Official layout (13 scenes; a video name starts with its scene id, ``01_0014`` = scene 01)::

    training/videos/01_001.avi ...              normal training videos (or training/frames/01_001/)
    testing/frames/01_0014/000.jpg ...          test videos as frame folders
    testing/test_frame_mask/01_0014.npy         frame labels [T], 1 = anomalous
    testing/test_pixel_mask/01_0014.npy         pixel masks [T, H, W], nonzero = anomalous

Example:
    >>> ds = load_shanghaitech("shanghaitech", scenes=["01", "02"])   # doctest: +SKIP
    >>> {v.meta["scene"] for v in ds.test}                           # doctest: +SKIP
    {'01', '02'}
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from stgraph.datasets.folders import (DatasetError, VideoDataset, VideoItem, _list_videos, check_videos,
                                      load_frame_labels, raise_problems)

__all__ = ["load_shanghaitech", "is_shanghaitech", "SCENES"]

SCENES = tuple(f"{i:02d}" for i in range(1, 14))
"""Scene ids of ShanghaiTech Campus."""
FRAME_MASKS = "testing/test_frame_mask"
PIXEL_MASKS = "testing/test_pixel_mask"


def is_shanghaitech(root: Path) -> bool:
    """Whether ``root`` looks like ShanghaiTech Campus (``testing/test_frame_mask/``)."""
    return (root / FRAME_MASKS).is_dir() or (root / PIXEL_MASKS).is_dir()


def _scene_ids(scenes: Iterable[str | int] | None) -> set[str] | None:
    if scenes is None:
        return None
    ids = {f"{int(s):02d}" if str(s).isdigit() else str(s) for s in scenes}
    unknown = sorted(ids - set(SCENES))
    if unknown:
        raise DatasetError(f"unknown ShanghaiTech scene ids {unknown}; scenes are {SCENES[0]}..{SCENES[-1]}")
    return ids


def load_shanghaitech(root: str | Path, scenes: Iterable[str | int] | None = None, labels: bool = True,
                      fps: float | None = 24.0) -> VideoDataset:
    """Read ShanghaiTech Campus in its official layout, optionally only some scenes.

    Args:
        root: folder holding ``training/`` and ``testing/``.
        scenes: scene ids to keep (``["01", 2]``); ``None`` keeps all 13.
        labels: read ``test_frame_mask`` (``False``: score-only use).
        fps: frame rate of frame folders (the videos are 24 fps).

    Each item's ``meta["scene"]`` is its scene id; ``mask_path`` is its ``test_pixel_mask`` file
    when present.

    Raises:
        DatasetError: listing every problem (missing folders or label files, scenes without
            videos, label / mask / frame count mismatches, unreadable frames).
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset folder not found: {root}")
    keep = _scene_ids(scenes)
    problems: list[str] = []
    ds = VideoDataset(name=root.name if keep is None else f"{root.name}[{','.join(sorted(keep))}]", root=root)
    for split, sub in (("train", "training"), ("test", "testing")):
        if not (root / sub).is_dir():
            problems.append(f"missing split folder {root / sub}/")
            continue
        items = []
        for path in _list_videos(root / sub):
            name = path.stem if path.is_file() else path.name
            scene = name.split("_", 1)[0]
            if keep is None or scene in keep:
                items.append(VideoItem(name, path, split, fps=fps, meta={"scene": scene}))
        if not items:
            problems.append(f"no videos{'' if keep is None else f' of scenes {sorted(keep)}'} in {root / sub}")
        setattr(ds, split, items)
    if labels:
        _attach_ground_truth(root, ds.test, problems)
    check_videos(ds.train + ds.test, problems)
    raise_problems(root, problems)
    return ds


def _attach_ground_truth(root: Path, items: list[VideoItem], problems: list[str]) -> None:
    if not (root / FRAME_MASKS).is_dir():
        problems.append(f"missing ground truth folder {root / FRAME_MASKS}/ (pass labels=False for score-only use)")
        return
    try:
        frame_labels = load_frame_labels(root / FRAME_MASKS)
    except (OSError, ValueError) as exc:
        problems.append(str(exc))
        return
    for item in items:
        item.labels = frame_labels.get(item.name)
        if item.labels is None:
            problems.append(f"test video {item.name!r}: label file not found: {root / FRAME_MASKS / item.name}.npy")
        pixel = root / PIXEL_MASKS / f"{item.name}.npy"
        item.mask_path = pixel if pixel.is_file() else None
