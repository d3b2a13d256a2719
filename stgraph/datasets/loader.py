"""One entry point for every benchmark layout: :func:`load_dataset` (``kind="auto"`` detects it).

=================  =========================================================  ===========================
kind               recognised by                                              reader
=================  =========================================================  ===========================
``ucf_crime``      ``Temporal_Anomaly_Annotation_for_Testing_Videos.txt``     :func:`load_ucf_crime`
``shanghaitech``   ``testing/test_frame_mask/``                               :func:`load_shanghaitech`
``avenue``         ``training_videos/`` or ``testing_videos/``                :func:`load_avenue`
``ucsd``           ``UCSDped{1,2}/``, ``Train/`` + ``Test/TestNNN``, or        :func:`load_ucsd`
                   ``ground_truth/UCSDped*.m`` / ``ground_truth/pixel_masks``
``folder``         ``train(ing)/`` and ``test(ing)/`` (your own cameras)      :func:`load_video_folder`
=================  =========================================================  ===========================

Example:
    >>> ds = load_dataset("../shared/data/ucsd_ped2")          # doctest: +SKIP
    >>> ds = load_dataset("ShanghaiTech", kind="shanghaitech", scenes=["01"])  # doctest: +SKIP
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from stgraph.datasets.avenue import is_avenue, load_avenue
from stgraph.datasets.folders import SPLIT_NAMES, DatasetError, VideoDataset, load_video_folder
from stgraph.datasets.shanghaitech import is_shanghaitech, load_shanghaitech
from stgraph.datasets.ucf_crime import is_ucf_crime, load_ucf_crime
from stgraph.datasets.ucsd import is_ucsd, load_ucsd

__all__ = ["load_dataset", "detect_kind", "DATASET_READERS"]

DATASET_READERS: dict[str, Callable[..., VideoDataset]] = {
    "ucsd": load_ucsd, "avenue": load_avenue, "shanghaitech": load_shanghaitech,
    "ucf_crime": load_ucf_crime, "folder": load_video_folder,
}
"""Reader of each dataset kind (keyword arguments of :func:`load_dataset` go to it)."""


def _is_folder(root: Path) -> bool:
    return any((root / n).is_dir() for names in SPLIT_NAMES.values() for n in names)


# order matters: the specific layouts are tried before the generic folder
_DETECTORS: tuple[tuple[str, Callable[[Path], bool]], ...] = (
    ("shanghaitech", is_shanghaitech), ("avenue", is_avenue), ("ucsd", is_ucsd),
    ("folder", _is_folder), ("ucf_crime", is_ucf_crime),
)


def detect_kind(root: str | Path) -> str:
    """The dataset kind of folder ``root`` (a key of :data:`DATASET_READERS`).

    Raises:
        DatasetError: ``root`` is missing or matches no known layout (the message lists the
            layouts looked for).
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset folder not found: {root}")
    for kind, matches in _DETECTORS:
        if matches(root):
            return kind
    raise DatasetError(
        f"cannot tell the dataset layout of {root}: expected UCSD (UCSDped2/ or Train/ + Test/), Avenue "
        f"(training_videos/, testing_videos/), ShanghaiTech (testing/test_frame_mask/), UCF-Crime "
        f"(Temporal_Anomaly_Annotation_for_Testing_Videos.txt) or a folder with train/ and test/")


def load_dataset(root: str | Path, kind: str = "auto", **options: Any) -> VideoDataset:
    """Read a benchmark (or your own) dataset folder as a :class:`VideoDataset`.

    Args:
        root: the dataset folder, in the layout its authors distribute.
        kind: ``"auto"`` (detect, see the module table) or a key of :data:`DATASET_READERS`.
        **options: passed to the reader (``subset=`` for UCSD, ``scenes=`` for ShanghaiTech, ...).

    Raises:
        DatasetError: unknown kind, undetectable layout, or every problem the reader found.
    """
    if kind == "auto":
        kind = detect_kind(root)
    if kind not in DATASET_READERS:
        raise DatasetError(f"unknown dataset kind {kind!r}; choose 'auto' or one of {sorted(DATASET_READERS)}")
    return DATASET_READERS[kind](root, **options)
