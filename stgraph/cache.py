"""On-disk cache of per-video detections + node features, keyed by the video and the settings.

A re-run with the same detector and feature settings on an unchanged video skips detection and
feature extraction; changing any setting (or the video file) gives a new key, so stale results are
never reused. Entries are ``<root>/<key>.v<N>.npz`` files written atomically by
:func:`detectors.files.write_detections` (``N`` = :data:`CACHE_FORMAT_VERSION`: entries of
another format are never read), with a ``<key>.v<N>.json`` describing what they hold.

Keys name files by their **content**: :func:`component_key` replaces every parameter of a
component spec that names an existing file (detector weights, a backbone) by the file's SHA-256
(:func:`file_digest`), so the same weights reached through another path share the cache, and
new weights under the same path get a new key.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any, Sequence

from detectors.base import Detections
from detectors.files import NPZ_READ_ERRORS, read_detections, write_detections
from stgraph.fileio import atomic_write_text

__all__ = ["DetectionCache", "fingerprint", "settings_key", "file_digest", "component_key",
           "callable_key", "CACHE_FORMAT_VERSION", "CACHE_READ_ERRORS"]

logger = logging.getLogger(__name__)

#: Format of detection cache entries. 1: keys without a version; 2: keys with it, weight files by
#: content digest. Bump it when what an entry holds, or how it is computed, changes.
CACHE_FORMAT_VERSION = 2
#: What reading a damaged cache entry may raise (truncated, corrupt or half-written files):
#: such entries are dropped with a warning and recomputed. Anything else propagates.
CACHE_READ_ERRORS = NPZ_READ_ERRORS

_DIGEST_CHUNK = 1 << 20
_digests: dict[tuple[str, int, int], str] = {}


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


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file's content, read in 1 MiB chunks.

    Memoised per process by (absolute path, size, modification time): asking again for an
    unchanged file costs one ``stat``; a rewritten file is hashed again.

    Raises:
        FileNotFoundError: ``path`` is not a file.
    """
    resolved = Path(path).expanduser().resolve()
    if not resolved.is_file():
        raise FileNotFoundError(f"cannot digest {path}: no such file")
    st = resolved.stat()
    memo = (str(resolved), st.st_size, st.st_mtime_ns)
    if memo not in _digests:
        sha = hashlib.sha256()
        with open(resolved, "rb") as handle:
            for chunk in iter(lambda: handle.read(_DIGEST_CHUNK), b""):
                sha.update(chunk)
        _digests[memo] = sha.hexdigest()
    return _digests[memo]


def _names_file(value: Any) -> bool:
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        return False
    try:
        return Path(value).expanduser().is_file()
    except (OSError, ValueError):  # names too long for the file system, NUL bytes, ...
        return False


def component_key(spec: Any) -> Any:
    """``spec`` with every value that names an existing file replaced by ``{"sha256": digest}``.

    Walks dicts, lists and tuples recursively (keys stay as they are); other values are returned
    unchanged. Use it on component specs (``{"class": ..., "params": {...}}``) before hashing them
    with :func:`settings_key`, so that cache keys depend on the weights' content, not on the path
    as typed.

    Example:
        >>> component_key({"class": "YoloxOnnxDetector",
        ...                "params": {"model_path": "models/yolox_nano.onnx"}})  # doctest: +SKIP
        {'class': 'YoloxOnnxDetector', 'params': {'model_path': {'sha256': '6d4f...'}}}
    """
    if isinstance(spec, dict):
        return {key: component_key(value) for key, value in spec.items()}
    if isinstance(spec, (list, tuple)):
        return [component_key(value) for value in spec]
    if _names_file(spec):
        return {"sha256": file_digest(spec)}
    return spec


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def callable_key(fn: Any) -> Any:
    """A stable, JSON-serialisable identity of a callable (e.g. a PyG ``pre_transform``).

    * ``None`` -> ``None``;
    * an object with ``get_params()`` -> its class and parameters (through :func:`component_key`);
    * a function -> its qualified name and a digest of its bytecode and constants (editing the
      function's body changes the key);
    * any other object -> its ``repr`` without memory addresses, plus its attributes when the
      ``repr`` is Python's default one (``<Foo object>``), so that parameters still count.
    """
    if fn is None:
        return None
    kind = f"{type(fn).__module__}.{type(fn).__qualname__}"
    if hasattr(fn, "get_params"):
        return {"class": kind, "params": component_key(fn.get_params())}
    code = getattr(fn, "__code__", None)
    if code is not None:
        consts = _ADDRESS.sub("", repr(code.co_consts))  # nested code objects print addresses
        body = hashlib.sha1(code.co_code + consts.encode()).hexdigest()[:16]
        return {"function": f"{fn.__module__}.{fn.__qualname__}", "code": body}
    text = _ADDRESS.sub("", repr(fn))
    if text.startswith("<") and hasattr(fn, "__dict__"):
        attributes = {k: _ADDRESS.sub("", repr(v)) for k, v in sorted(vars(fn).items())}
        return {"class": kind, "attributes": attributes}
    return {"class": kind, "repr": text}


def settings_key(*parts: Any) -> str:
    """Stable 16-hex-digit hash of JSON-serialisable parts (settings dicts, fingerprints)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha1(blob).hexdigest()[:16]


class DetectionCache:
    """Folder of cached per-video ``list[Detections]`` (with features).

    Example:
        >>> cache = DetectionCache(".cache/stgraph")                       # doctest: +SKIP
        >>> key = settings_key(fingerprint(video_path), component_key(spec))  # doctest: +SKIP
        >>> dets = cache.load(key) or cache.save(key, compute())           # doctest: +SKIP
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _entry(self, key: str, suffix: str) -> Path:
        return self.root / f"{key}.v{CACHE_FORMAT_VERSION}{suffix}"

    def __contains__(self, key: str) -> bool:
        return self._entry(key, ".npz").is_file()

    def load(self, key: str) -> list[Detections] | None:
        """Cached detections for ``key``, or ``None`` when absent.

        A damaged entry (truncated, corrupt: :data:`CACHE_READ_ERRORS`) is deleted with a warning
        naming the file, and ``None`` is returned so that the caller recomputes it.
        """
        path = self._entry(key, ".npz")
        if not path.is_file():
            return None
        try:
            return read_detections(path)
        except CACHE_READ_ERRORS as exc:
            logger.warning("dropping unreadable detection cache entry %s (%s); recomputing",
                           path, exc)
            path.unlink(missing_ok=True)
            return None

    def save(self, key: str, detections: Sequence[Detections],
             description: dict | None = None) -> list[Detections]:
        """Store ``detections`` under ``key`` (atomic; ``root`` is created) and return them."""
        write_detections(self._entry(key, ".npz"), detections)
        if description is not None:
            atomic_write_text(self._entry(key, ".json"),
                              json.dumps(description, indent=1, default=str))
        return list(detections)
