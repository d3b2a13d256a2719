"""On-disk cache of per-video detections + node features, keyed by the video and the settings.

A re-run with the same detector and feature settings on an unchanged video skips detection and
feature extraction; changing any setting (or the video file) gives a new key, so stale results are
never reused. Entries are ``<root>/<key>.npz`` files written atomically by
:func:`detectors.files.write_detections`, with a ``<key>.json`` describing what they hold.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Sequence

from detectors.base import Detections
from detectors.files import read_detections, write_detections
from stgraph.fileio import atomic_write_text

__all__ = ["DetectionCache", "fingerprint", "settings_key"]


def fingerprint(path: str | Path) -> dict[str, Any]:
    """Identity of a video on disk: absolute path, size and modification time (of every frame file
    for a frame folder). Cheap: no pixel is read."""
    path = Path(path).resolve()
    if path.is_dir():
        stats = [p.stat() for p in path.iterdir() if p.is_file()]
        return {"path": str(path), "files": len(stats), "bytes": sum(s.st_size for s in stats),
                "mtime_ns": max((s.st_mtime_ns for s in stats), default=0)}
    st = path.stat()
    return {"path": str(path), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def settings_key(*parts: Any) -> str:
    """Stable 16-hex-digit hash of JSON-serialisable parts (settings dicts, fingerprints)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha1(blob).hexdigest()[:16]


class DetectionCache:
    """Folder of cached per-video ``list[Detections]`` (with features).

    Example:
        >>> cache = DetectionCache(".cache/stgraph")                       # doctest: +SKIP
        >>> key = settings_key(fingerprint(video_path), detector.get_params())  # doctest: +SKIP
        >>> dets = cache.load(key) or cache.save(key, compute())           # doctest: +SKIP
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _npz(self, key: str) -> Path:
        return self.root / f"{key}.npz"

    def __contains__(self, key: str) -> bool:
        return self._npz(key).is_file()

    def load(self, key: str) -> list[Detections] | None:
        """Cached detections for ``key``, or ``None`` when absent (a corrupt entry is discarded)."""
        path = self._npz(key)
        if not path.is_file():
            return None
        try:
            return read_detections(path)
        except Exception:  # a truncated/corrupt entry is recomputed, never trusted
            path.unlink(missing_ok=True)
            return None

    def save(self, key: str, detections: Sequence[Detections], description: dict | None = None) -> list[Detections]:
        """Store ``detections`` under ``key`` (atomic; ``root`` is created) and return them."""
        write_detections(self._npz(key), detections)
        if description is not None:
            atomic_write_text(self.root / f"{key}.json", json.dumps(description, indent=1, default=str))
        return list(detections)
