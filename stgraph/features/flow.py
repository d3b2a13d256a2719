"""Dense optical flow from OpenCV, computed once per frame and cached: the one flow module that
motion features (per-box flow histograms), STM-AE's motion stream and the benchmarks share.

FlowNet weights are not available offline, so flow comes from OpenCV: DIS (dense inverse search,
the default: about 2-4 ms per 360x240 frame on one core at the ``"fast"`` preset) or Farneback.
Flow is an *input* to the models, never differentiated through.

Conventions::

    flow[t]  float32 [H, W, 2]  (dx, dy) in pixels of the flow resolution, from frame t-1 to frame t
                                 (backward-looking, so frame t's motion is known when t arrives);
                                 flow[0] = 0 (no previous frame)

:func:`video_flow` returns ``[T, H, W, 2]`` for a whole video (float16 in the cache, float32 out),
computed at ``size`` (W, H) when given; with ``cache_dir`` it is stored in
``<cache_dir>/<key>.npz`` keyed by the video's fingerprint and the flow settings, written
atomically, so a second call reads it back.

Example:
    >>> flow = OpticalFlow(size=(180, 120))
    >>> field = flow.compute(previous_bgr, current_bgr)        # doctest: +SKIP
    >>> video = video_flow("ped2/testing/frames/01", flow, cache_dir=".cache/flow")  # doctest: +SKIP
    >>> video.shape                                              # doctest: +SKIP
    (180, 120, 180, 2)
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable

import cv2
import numpy as np

from stgraph.fileio import atomic_path

__all__ = ["OpticalFlow", "video_flow", "FLOW_METHODS", "FLOW_CACHE_VERSION"]

logger = logging.getLogger(__name__)

#: Flow algorithms :class:`OpticalFlow` knows.
FLOW_METHODS = ("dis", "farneback")
#: Version of the cached flow files; part of every cache key.
FLOW_CACHE_VERSION = 1
_DIS_PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
                "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}


class OpticalFlow:
    """Dense optical flow between two BGR frames (OpenCV DIS or Farneback).

    Args:
        method: ``"dis"`` (default) or ``"farneback"``.
        preset: DIS preset, ``"ultrafast"``, ``"fast"`` (default) or ``"medium"``.
        size: ``(W, H)`` to resize frames to before computing flow (None: native size). Flow
            vectors are in pixels of this size.
    """

    def __init__(self, method: str = "dis", preset: str = "fast",
                 size: tuple[int, int] | None = None) -> None:
        self.method = method
        self.preset = preset
        self.size = size
        self._dis = None

    def _check(self) -> None:
        if self.method not in FLOW_METHODS:
            raise ValueError(f"flow method must be one of {FLOW_METHODS}, got {self.method!r}")
        if self.method == "dis" and self.preset not in _DIS_PRESETS:
            raise ValueError(f"DIS preset must be one of {sorted(_DIS_PRESETS)}, "
                             f"got {self.preset!r}")
        if self.size is not None:
            size = tuple(self.size)
            if len(size) != 2 or not all(isinstance(v, (int, np.integer)) and v >= 8 for v in size):
                raise ValueError(f"flow size must be (W, H) with both >= 8 pixels, got {self.size!r}")

    def gray(self, image: np.ndarray) -> np.ndarray:
        """The frame as the flow sees it: uint8 [H, W] grey, resized to ``size``."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"optical flow needs H x W x 3 uint8 BGR frames, got "
                             f"{image.dtype} {image.shape}")
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        if self.size is not None:
            gray = cv2.resize(gray, tuple(int(v) for v in self.size), interpolation=cv2.INTER_AREA)
        return gray

    def compute_gray(self, previous: np.ndarray, current: np.ndarray) -> np.ndarray:
        """Flow float32 [H, W, 2] from grey frame ``previous`` to grey frame ``current``."""
        self._check()
        if previous.shape != current.shape:
            raise ValueError(f"flow frames differ in size: {previous.shape} and {current.shape}")
        if self.method == "dis":
            if self._dis is None:
                self._dis = cv2.DISOpticalFlow_create(_DIS_PRESETS[self.preset])
            return self._dis.calc(previous, current, None)
        return cv2.calcOpticalFlowFarneback(previous, current, None, 0.5, 3, 15, 3, 5, 1.2, 0)

    def compute(self, previous: np.ndarray, current: np.ndarray) -> np.ndarray:
        """Flow float32 [H, W, 2] from BGR frame ``previous`` to BGR frame ``current``."""
        return self.compute_gray(self.gray(previous), self.gray(current))

    def get_params(self) -> dict[str, Any]:
        return {"method": self.method, "preset": self.preset,
                "size": list(self.size) if self.size is not None else None}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"OpticalFlow({args})"


def _flow_of_frames(frames: Iterable[Any], flow: OpticalFlow) -> np.ndarray:
    """``[T, H, W, 2]`` float16 flow of frames (objects with ``.image`` or BGR arrays)."""
    fields: list[np.ndarray] = []
    previous = None
    for frame in frames:
        gray = flow.gray(getattr(frame, "image", frame))
        if previous is None:
            fields.append(np.zeros((*gray.shape, 2), np.float16))
        else:
            fields.append(flow.compute_gray(previous, gray).astype(np.float16))
        previous = gray
    if not fields:
        raise ValueError("optical flow: the video has no frames")
    return np.stack(fields)


def video_flow(video: Any, flow: OpticalFlow | None = None,
               cache_dir: str | Path | None = None) -> np.ndarray:
    """Flow of every frame of ``video``: float32 [T, H, W, 2] (``flow[0] = 0``).

    Args:
        video: anything :func:`stgraph.io.open_source` opens (path, frame folder, array), or a
            ``FrameSource``.
        flow: the flow settings (default ``OpticalFlow()``: DIS "fast" at native size).
        cache_dir: cache folder; the key is the video's fingerprint (path, size, mtime; see
            :func:`stgraph.cache.fingerprint`) plus the flow settings. Sources without a path
            (arrays, cameras) are never cached.
    """
    from stgraph.cache import CACHE_READ_ERRORS, fingerprint, settings_key
    from stgraph.io.frames import open_source

    flow = flow or OpticalFlow()
    flow._check()
    source = video if hasattr(video, "_raw_frames") else open_source(video)
    path = getattr(source, "path", None)
    cache_file = None
    if cache_dir is not None and path is not None:
        key = settings_key("flow", FLOW_CACHE_VERSION, fingerprint(path), flow.get_params(),
                           getattr(source, "resize", None), getattr(source, "stride", 1))
        cache_file = Path(cache_dir) / f"flow-{key}.npz"
        if cache_file.is_file():
            try:
                with np.load(cache_file) as stored:
                    return stored["flow"].astype(np.float32)
            except CACHE_READ_ERRORS as exc:
                logger.warning("ignoring unreadable flow cache %s (%s); recomputing", cache_file, exc)
    fields = _flow_of_frames(source, flow)
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cache_file) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, flow=fields)
    return fields.astype(np.float32)
