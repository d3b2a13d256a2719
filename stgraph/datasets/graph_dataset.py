"""``ObjectGraphDataset``: videos -> detections + features -> object graphs, as a cached PyG dataset.

``process()`` runs the detector and the feature producer over every video and builds one object
graph per video (or per window of ``window`` frames) with the builder. Results are stored under
``root`` keyed by every setting that changes them::

    root/detections/<key>.npz          per-video detections + features (stgraph.cache.DetectionCache,
                                       the same entries Pipeline(cache_dir=root/"detections") uses)
    root/processed/<key>/graphs.pt     all graphs of one setting (InMemoryDataset storage)
    root/processed/<key>/settings.json what the key stands for

A second construction with the same videos and settings loads ``graphs.pt`` without detecting
anything; a different detector, feature producer, resize or stride recomputes detections; a
different builder, window or ``pre_transform`` only rebuilds the graphs from the cached
detections; changed videos (size / modification time) or labels give a new key. The key also
holds :data:`GRAPH_DATASET_FORMAT`: graphs written by another version of the format (e.g. before
the edge order changed) are never read; they are rebuilt, and a log line says so.

Each graph is the builder's ``Data`` (``x`` [N, D], ``edge_index`` [2, E], ``edge_weight`` [E],
``edge_type`` [E], ``frame`` [N], ``box`` [N, 4], ...) plus ``video`` (str), ``frame_ids``
int64 [F] (the frames it covers) and ``frame_label`` int64 [F] (1 anomalous, 0 normal, -1 unknown).

Example:
    >>> from detectors.motion import MotionRegionDetector
    >>> from stgraph.features import GeometryFeatures
    >>> from stgraph.graphs import ObjectGraphBuilder
    >>> ds = load_dataset("../shared/data/ucsd_ped2")                        # doctest: +SKIP
    >>> graphs = ObjectGraphDataset(".cache/ped2_graphs", ds, MotionRegionDetector(), GeometryFeatures(),
    ...                             ObjectGraphBuilder(), split="test", window=21)  # doctest: +SKIP
    >>> graphs[0].x.shape, graphs[0].frame_label.shape                        # doctest: +SKIP
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

import stgraph._pyg  # noqa: F401  (imports torch_geometric without torch's jit.script notice)
from torch_geometric.data import Data, InMemoryDataset

from detectors.base import Detections
from stgraph.cache import callable_key, component_key, fingerprint, settings_key
from stgraph.datasets.folders import VideoDataset, VideoItem
from stgraph.fileio import atomic_path, atomic_write_text
from stgraph.pipeline import Pipeline, settings_of, video_name

__all__ = ["ObjectGraphDataset", "GRAPH_DATASET_FORMAT"]

logger = logging.getLogger(__name__)

#: Version of the processed graphs. 1: no version in the key (edge order of stgraph <= 0.1);
#: 2: version and ``pre_transform`` in the key, weight files by content digest.
GRAPH_DATASET_FORMAT = 2


def _as_items(videos: VideoDataset | Sequence[VideoItem | str | Path], split: str) -> list[VideoItem]:
    """Videos as :class:`VideoItem` (paths become unlabelled items named by :func:`video_name`)."""
    if isinstance(videos, VideoDataset):
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        items = list(getattr(videos, split))
    elif isinstance(videos, (str, Path, VideoItem)):
        items = [videos]
    else:
        items = list(videos)
    out = [v if isinstance(v, VideoItem) else VideoItem(video_name(v), Path(v), split) for v in items]
    if not out:
        raise ValueError("ObjectGraphDataset needs at least one video")
    names = [v.name for v in out]
    if len(set(names)) != len(names):
        raise ValueError(f"video names must be unique, got {names}")
    for v in out:
        if not v.path.exists():
            raise FileNotFoundError(f"video file or frame folder not found: {v.path}")
    return out


def _video_identity(item: VideoItem) -> dict:
    labels = None if item.labels is None else hashlib.sha1(np.ascontiguousarray(item.labels).tobytes()).hexdigest()
    return {"name": item.name, "video": fingerprint(item.path), "labels": labels}


class KeyedGraphDataset(InMemoryDataset):
    """PyG storage shared by the cached graph datasets: ``root/processed/<key>/graphs.pt`` plus a
    ``settings.json`` that describes it; ``key`` (set by the subclass before
    ``super().__init__``) digests every setting and video, so a change of either builds anew."""

    key: str

    @property
    def raw_file_names(self) -> list[str]:
        return []  # videos live where the user keeps them; nothing to download

    @property
    def processed_dir(self) -> str:
        return str(Path(self.root) / "processed" / self.key)

    @property
    def processed_file_names(self) -> list[str]:
        return ["graphs.pt"]

    def _store(self, graphs: list[Data], description: dict) -> None:
        """Apply ``pre_transform``, then write the graphs and ``settings.json`` atomically."""
        if self.pre_transform is not None:
            graphs = [self.pre_transform(g) for g in graphs]
        with atomic_path(self.processed_paths[0]) as tmp:
            self.save(graphs, str(tmp))
        atomic_write_text(Path(self.processed_dir) / "settings.json",
                          json.dumps({**description, "graphs": len(graphs)}, indent=1, default=str))


class ObjectGraphDataset(KeyedGraphDataset):
    """Object spatio-temporal graphs of a set of videos, computed once and cached (see the module doc).

    Args:
        root: cache folder (created).
        videos: a :class:`VideoDataset` (its ``split``), or video items / paths.
        detector: a detector with ``detect`` and ``get_params``.
        features: a feature producer with ``extract`` and ``get_params``.
        builder: a graph builder with ``build(list[Detections]) -> Data`` and ``get_params``
            (e.g. :class:`~stgraph.graphs.ObjectGraphBuilder`).
        split: which split of a :class:`VideoDataset` to use.
        window: frames per graph (consecutive, non-overlapping; the last may be shorter);
            ``None`` = one graph per video.
        resize: ``(W, H)`` to resize frames to before detection.
        stride: use every ``stride``-th frame.
        transform, pre_transform: as in PyG (``pre_transform`` is applied before caching).
        force_reload: recompute graphs even when cached (detections stay cached).
        progress: show a progress bar per video.
    """

    def __init__(self, root: str | Path, videos: VideoDataset | Sequence[VideoItem | str | Path], detector: Any,
                 features: Any, builder: Any, split: str = "train", window: int | None = None,
                 resize: tuple[int, int] | None = None, stride: int = 1, transform: Callable | None = None,
                 pre_transform: Callable | None = None, force_reload: bool = False, progress: bool = False):
        if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < 1):
            raise ValueError(f"window must be None or an integer >= 1, got {window!r}")
        self.items = _as_items(videos, split)
        self.detector, self.features, self.builder = detector, features, builder
        self.window, self.resize, self.stride, self.progress = window, resize, stride, progress
        self.settings = {"format": GRAPH_DATASET_FORMAT,
                         "detector": settings_of(detector), "features": settings_of(features),
                         "builder": settings_of(builder), "window": window,
                         "resize": None if resize is None else list(resize), "stride": stride,
                         "pre_transform": callable_key(pre_transform)}
        self.key = settings_key(component_key(self.settings),
                                [_video_identity(v) for v in self.items])
        self._log_older_formats(Path(root) / "processed")
        super().__init__(str(root), transform, pre_transform, log=False, force_reload=force_reload)
        self.load(self.processed_paths[0])

    def _log_older_formats(self, processed: Path) -> None:
        """Say so when this key is new but ``processed`` holds graphs of an older format."""
        if (processed / self.key / "graphs.pt").is_file() or not processed.is_dir():
            return
        older = []
        for entry in processed.iterdir():
            try:
                described = json.loads((entry / "settings.json").read_text())
            except (OSError, ValueError):
                described = {}
            version = described.get("format", 1)
            if (entry / "graphs.pt").is_file() and version != GRAPH_DATASET_FORMAT:
                older.append(entry.name)
        if older:
            logger.warning("ObjectGraphDataset: %d processed folder(s) in %s hold graphs of "
                           "another format than version %d and are not read (%s; delete them to "
                           "free space); building the graphs anew", len(older), processed,
                           GRAPH_DATASET_FORMAT, ", ".join(sorted(older)[:3]))

    @property
    def detection_cache_dir(self) -> Path:
        """Folder of the cached per-video detections + features."""
        return Path(self.root) / "detections"

    # ------------------------------------------------------------------ computation
    def process(self) -> None:
        pipe = Pipeline(self.detector, self.features, model=None, resize=self.resize, stride=self.stride,
                        cache_dir=self.detection_cache_dir, progress=self.progress)
        graphs: list[Data] = []
        for item in self.items:
            detections = pipe.extract(item)
            for chunk in self._windows(detections):
                graphs.append(self._graph(item, chunk))
        self._store(graphs, {**self.settings, "videos": [_video_identity(v) for v in self.items]})

    def _windows(self, detections: list[Detections]) -> list[list[Detections]]:
        size = self.window or len(detections)
        return [detections[i:i + size] for i in range(0, len(detections), size)]

    def _graph(self, item: VideoItem, frames: list[Detections]) -> Data:
        graph = self.builder.build(frames)
        frame_ids = torch.tensor([d.frame_index for d in frames], dtype=torch.long)
        if item.labels is None:
            frame_label = torch.full_like(frame_ids, -1)
        else:
            if int(frame_ids.max()) >= len(item.labels):
                raise ValueError(f"video {item.name!r}: frame {int(frame_ids.max())} has no label "
                                 f"({len(item.labels)} labels)")
            frame_label = torch.from_numpy(item.labels.astype(np.int64))[frame_ids]
        graph.video = item.name
        graph.frame_ids = frame_ids
        graph.frame_label = frame_label
        return graph

    @property
    def video_names(self) -> list[str]:
        """Names of the videos, in order."""
        return [v.name for v in self.items]

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(graphs={len(self)}, videos={len(self.items)}, window={self.window}, "
                f"key={self.key!r})")
