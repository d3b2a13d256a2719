"""UCSD Anomaly Detection Dataset, Ped1 and Ped2 (Mahadevan et al., CVPR 2010).

Official layout (``UCSD_Anomaly_Dataset.v1p2``; ``root`` may be that folder or one ``UCSDpedN``)::

    UCSDped2/Train/Train001/001.tif ...      normal training clips (frame files 1-based)
    UCSDped2/Test/Test001/001.tif ...        test clips
    UCSDped2/Test/Test001_gt/001.bmp ...     pixel masks, when present (Ped1: 10 of 36 videos)
    UCSDped2/Test/UCSDped2.m                 frame ground truth: 1-based inclusive intervals

Re-packaged layout (MNAD / HF2-VAD, as in ``../shared/data/ucsd_ped2``), read through
:func:`~stgraph.datasets.folders.load_video_folder`::

    training/frames/01/000.jpg ...           testing/frames/01/000.jpg ...
    ground_truth/frame_labels.npz            (or ground_truth/UCSDped2.m)
    ground_truth/pixel_masks/Test001/001.png (optional; video NN <-> Test0NN)

Example:
    >>> ds = load_ucsd("UCSD_Anomaly_Dataset.v1p2", subset="ped2")     # doctest: +SKIP
    >>> ds.test[0].name, ds.test[0].labels.sum(), ds.test[0].pixel_masks().shape  # doctest: +SKIP
    ('Test001', 120, (180, 240, 360))
"""
from __future__ import annotations

import re
from pathlib import Path

from stgraph.datasets.folders import (DatasetError, VideoDataset, VideoItem, check_videos, load_video_folder,
                                      raise_problems)
from stgraph.datasets.labels import intervals_to_labels, read_ucsd_m
from stgraph.io.frames import IMAGE_EXTENSIONS, natural_key

__all__ = ["load_ucsd", "is_ucsd", "video_number", "weak_split", "PED2_WEAK_TRAIN",
           "PED2_WEAK_TEST", "WEAK_PREFIX"]

SUBSETS = {"ped1": "UCSDped1", "ped2": "UCSDped2"}


def video_number(name: str) -> int | None:
    """Trailing number of a video name (``Test007`` -> 7, ``07`` -> 7), ``None`` without one."""
    match = re.search(r"(\d+)$", name)
    return int(match.group(1)) if match else None


def is_ucsd(root: Path) -> bool:
    """Whether ``root`` looks like a UCSD Ped1/Ped2 folder (official or re-packaged layout)."""
    if any((root / d).is_dir() for d in SUBSETS.values()):
        return True
    if (root / "Train").is_dir() and (root / "Test").is_dir() and any((root / "Test").glob("Test[0-9]*")):
        return True
    gt = root / "ground_truth"
    return (root / "testing").is_dir() and (any(gt.glob("UCSDped*.m")) or (gt / "pixel_masks").is_dir())


#: Ped2 weak split (issue 13): test videos whose video-level label "abnormal" is used for training.
PED2_WEAK_TRAIN = (1, 3, 5, 7, 9, 11)
#: Ped2 weak split: test videos scored at frame level (never seen in training).
PED2_WEAK_TEST = (2, 4, 6, 8, 10, 12)
#: Name prefix of the test videos moved to the weak training side (train and test names collide).
WEAK_PREFIX = "weak_"


def weak_split(ds: VideoDataset, train_numbers: tuple[int, ...] = PED2_WEAK_TRAIN,
               test_numbers: tuple[int, ...] = PED2_WEAK_TEST) -> VideoDataset:
    """The weakly supervised split of UCSD Ped2 (fixed, so that results compare).

    ``train``: every normal training video (``meta["video_label"] = 0``) plus test videos 01, 03,
    05, 07, 09, 11 (``meta["video_label"] = 1``, frame labels dropped, renamed ``weak_01`` ...
    because training and test names collide); ``test``: test videos 02, 04, 06, 08, 10, 12 with
    their frame labels. No test video is on both sides. Video labels for ``fit``:
    ``[v.meta["video_label"] for v in split.train]``.

    Raises:
        DatasetError: a listed test video is missing.
    """
    from dataclasses import replace

    by_number = {video_number(v.name): v for v in ds.test}
    missing = [n for n in (*train_numbers, *test_numbers) if n not in by_number]
    if missing:
        raise DatasetError(f"{ds.root}: the weak split needs test videos {missing}, not found")
    train = [replace(v, meta={**v.meta, "video_label": 0}) for v in ds.train]
    train += [replace(by_number[n], name=WEAK_PREFIX + by_number[n].name, labels=None,
                      split="train", meta={**by_number[n].meta, "video_label": 1})
              for n in train_numbers]
    test = [by_number[n] for n in test_numbers]
    return VideoDataset(f"{ds.name}-weak", ds.root, train, test)


def load_ucsd(root: str | Path, subset: str | None = None, fps: float | None = 10.0,
              split: str | None = None) -> VideoDataset:
    """Read UCSD Ped1 or Ped2 in the official or the re-packaged layout (see the module docstring).

    Args:
        root: ``UCSD_Anomaly_Dataset.v1p2``, ``UCSDped1``/``UCSDped2``, or a re-packaged folder.
        subset: ``"ped1"`` or ``"ped2"``; needed only when ``root`` holds both.
        fps: frame rate of the frame folders (the clips are about 10 fps).
        split: ``None`` (official train / test) or ``"weak"`` (:func:`weak_split`: Ped2's weakly
            supervised split, video labels in ``meta["video_label"]``).

    Raises:
        DatasetError: listing every problem (missing folders or annotation, label / mask / frame
            count mismatches, unreadable frames).
    """
    if split not in (None, "weak"):
        raise DatasetError(f"unknown UCSD split {split!r}; choose None or 'weak'")
    if split == "weak":
        return weak_split(load_ucsd(root, subset, fps))
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset folder not found: {root}")
    present = [key for key, folder in SUBSETS.items() if (root / folder).is_dir()]
    if subset is not None and subset not in SUBSETS:
        raise DatasetError(f"unknown UCSD subset {subset!r}; choose one of {sorted(SUBSETS)}")
    if present:
        if subset is None and len(present) > 1:
            raise DatasetError(f"{root} holds {[SUBSETS[k] for k in present]}: pass subset='ped1' or 'ped2'")
        key = subset or present[0]
        if key not in present:
            raise DatasetError(f"UCSD subset folder not found: {root / SUBSETS[key]}")
        return _load_official(root / SUBSETS[key], fps)
    if (root / "Train").is_dir() or (root / "Test").is_dir():
        return _load_official(root, fps)
    return _load_repackaged(root, fps)


def _numbered_dirs(folder: Path, prefix: str, suffix: str = "") -> list[Path]:
    pattern = re.compile(rf"{prefix}\d+{suffix}$")
    return sorted((p for p in folder.iterdir() if p.is_dir() and pattern.match(p.name)),
                  key=lambda p: natural_key(p.name))


def _annotation(folders: list[Path]) -> Path | None:
    return next((m for f in folders if f.is_dir() for m in sorted(f.glob("UCSDped*.m"))), None)


def _attach_m_labels(items: list[VideoItem], m_file: Path, problems: list[str]) -> None:
    """Frame labels of test videos from ``UCSDpedN.m`` (entry k belongs to test video number k)."""
    try:
        intervals = read_ucsd_m(m_file)
    except (OSError, ValueError) as exc:
        problems.append(str(exc))
        return
    for item in items:
        number = video_number(item.name)
        if number is None or not 1 <= number <= len(intervals):
            problems.append(f"test video {item.name!r}: no gt_frame entry in {m_file} ({len(intervals)} entries)")
            continue
        try:
            item.labels = intervals_to_labels(intervals[number - 1], len(item), one_based=True)
        except (OSError, TypeError):
            continue  # unreadable video: reported by check_videos
        except ValueError as exc:
            problems.append(f"test video {item.name!r} in {m_file}: {exc}")


def _load_official(folder: Path, fps: float | None) -> VideoDataset:
    problems: list[str] = []
    ds = VideoDataset(name=folder.name, root=folder)
    for split, sub, prefix in (("train", "Train", "Train"), ("test", "Test", "Test")):
        split_dir = folder / sub
        if not split_dir.is_dir():
            problems.append(f"missing split folder {split_dir}/")
            continue
        dirs = _numbered_dirs(split_dir, prefix)
        if not dirs:
            problems.append(f"no {prefix}NNN frame folders in {split_dir}")
        setattr(ds, split, [VideoItem(d.name, d, split, fps=fps) for d in dirs])
    for item in ds.test:
        gt = item.path.with_name(f"{item.name}_gt")
        if gt.is_dir():
            item.mask_path = gt
    m_file = _annotation([folder / "Test", folder])
    if m_file is None:
        problems.append(f"frame annotation UCSDped*.m not found in {folder / 'Test'} or {folder}")
    elif ds.test:
        _attach_m_labels(ds.test, m_file, problems)
    check_videos(ds.train + ds.test, problems)
    raise_problems(folder, problems)
    return ds


def _load_repackaged(root: Path, fps: float | None) -> VideoDataset:
    ds = load_video_folder(root, fps=fps)
    problems: list[str] = []
    gt = root / "ground_truth"
    m_file = None if ds.labels else _annotation([gt, root])
    if m_file is not None:
        _attach_m_labels(ds.test, m_file, problems)
    mask_dirs = {}
    for parent in (gt / "pixel_masks", gt):
        if parent.is_dir():
            for d in parent.iterdir():
                if d.is_dir() and any(p.suffix.lower() in IMAGE_EXTENSIONS for p in d.iterdir()):
                    mask_dirs.setdefault(video_number(d.name.removesuffix("_gt")), d)
    for item in ds.test:
        item.mask_path = mask_dirs.get(video_number(item.name))
    if m_file is not None or mask_dirs:  # lengths of what was attached after load_video_folder
        check_videos(ds.test, problems)
    raise_problems(root, problems)
    return ds
