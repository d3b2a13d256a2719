"""Frame sources with one interface: video file, image folder, numpy array / iterator, camera.

Every source is iterable and yields :class:`Frame` objects::

    Frame(index: int, time_s: float, image: np.ndarray[H, W, 3] uint8 BGR)

``index`` is the position in the *original* stream (so with ``stride=2`` indices are 0, 2, 4, ...),
``time_s = index / fps``. ``len(source)`` is the number of frames the source will yield when that is
known (files, folders, arrays); camera and iterator sources raise ``TypeError`` from ``len``.

Use :func:`open_source` to get the right source from a path, an array or a camera index.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import cv2
import numpy as np

__all__ = [
    "Frame", "FrameSource", "VideoFileSource", "ImageFolderSource", "ArraySource", "CameraSource",
    "open_source", "natural_key", "IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS", "SourceError",
    "FrameWindow", "as_frame_source",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".avi", ".mp4", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".webm", ".wmv", ".flv")


class SourceError(IOError):
    """A frame source cannot be opened or read; the message names the path."""


@dataclass(frozen=True)
class Frame:
    """One video frame: position in the stream, time in seconds, H×W×3 uint8 BGR image."""

    index: int
    time_s: float
    image: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the image."""
        return int(self.image.shape[0]), int(self.image.shape[1])


def natural_key(name: str) -> list:
    """Sort key that orders ``2.jpg`` before ``10.jpg`` (digit runs compared as numbers)."""
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", name)]


def _to_bgr_uint8(image: np.ndarray, where: str) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.dtype == np.uint8 else np.repeat(image[..., None], 3, 2)
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    if image.ndim != 3 or image.shape[2] != 3:
        raise SourceError(f"{where}: expected H×W×3 (or H×W) images, got shape {image.shape}")
    if image.dtype != np.uint8:
        if np.issubdtype(image.dtype, np.floating):
            if not np.all(np.isfinite(image)):
                raise SourceError(f"{where}: image contains NaN or inf")
            scale = 255.0 if image.max(initial=0) <= 1.0 else 1.0
            image = np.clip(image * scale, 0, 255).astype(np.uint8)
        else:
            image = np.clip(image, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image)


def _capture_fps(cap: cv2.VideoCapture) -> float | None:
    """Frame rate an OpenCV capture reports, or ``None`` when it reports none (0, NaN, inf)."""
    rate = cap.get(cv2.CAP_PROP_FPS)
    return rate if rate and np.isfinite(rate) and rate > 0 else None


class FrameSource:
    """Base class: subclasses implement ``_raw_frames()`` yielding raw BGR images in order.

    Args:
        resize: ``(W, H)`` to resize every frame to, or ``None``.
        stride: keep every ``stride``-th frame (1 = all).
        fps: frames per second used for ``time_s`` (sources that know their rate override it).
    """

    name: str = "frames"

    def __init__(self, resize: tuple[int, int] | None = None, stride: int = 1, fps: float | None = None):
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        if resize is not None and (len(resize) != 2 or min(resize) <= 0):
            raise ValueError(f"resize must be (width, height) with positive values, got {resize}")
        self.resize = None if resize is None else (int(resize[0]), int(resize[1]))
        self.stride = int(stride)
        self._fps = fps

    @property
    def fps(self) -> float:
        """Frame rate of the underlying stream (default 25 when unknown)."""
        return float(self._fps) if self._fps else 25.0

    @property
    def known_fps(self) -> float | None:
        """The frame rate given or read from the container, ``None`` when unknown (where
        :attr:`fps` falls back to 25)."""
        return float(self._fps) if self._fps else None

    def _raw_frames(self) -> Iterator[np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _raw_length(self) -> int:
        raise TypeError(f"{type(self).__name__} has no known length")

    def __len__(self) -> int:
        n = self._raw_length()
        return (n + self.stride - 1) // self.stride

    def __iter__(self) -> Iterator[Frame]:
        for i, image in enumerate(self._raw_frames()):
            if i % self.stride:
                continue
            image = _to_bgr_uint8(image, self.name)
            if self.resize is not None and (image.shape[1], image.shape[0]) != self.resize:
                image = cv2.resize(image, self.resize, interpolation=cv2.INTER_AREA)
            yield Frame(index=i, time_s=i / self.fps, image=image)

    def read_all(self) -> list[Frame]:
        """All frames as a list (for short clips)."""
        return list(self)

    def __repr__(self) -> str:
        try:
            n = len(self)
        except TypeError:
            n = "?"
        return f"{type(self).__name__}({self.name!r}, frames={n}, fps={self.fps:g})"


class VideoFileSource(FrameSource):
    """Frames of a video file readable by OpenCV (avi, mp4, mkv, ...)."""

    def __init__(self, path: str | Path, resize: tuple[int, int] | None = None, stride: int = 1,
                 fps: float | None = None):
        super().__init__(resize=resize, stride=stride, fps=fps)
        self.path = Path(path)
        self.name = str(self.path)
        if not self.path.is_file():
            raise SourceError(f"video file not found: {self.path}")
        cap = cv2.VideoCapture(str(self.path))
        try:
            ok, first = cap.read() if cap.isOpened() else (False, None)
            if not ok or first is None:
                raise SourceError(f"cannot read video (not a video OpenCV can decode, or empty): {self.path}")
            self._count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            if self._fps is None:
                self._fps = _capture_fps(cap)
        finally:
            cap.release()

    def _raw_length(self) -> int:
        if self._count <= 0:
            raise TypeError(f"frame count of {self.path} is unknown")
        return self._count

    def _raw_frames(self) -> Iterator[np.ndarray]:
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            raise SourceError(f"cannot open video: {self.path}")
        try:
            while True:
                ok, image = cap.read()
                if not ok:
                    break
                yield image
        finally:
            cap.release()


class ImageFolderSource(FrameSource):
    """Frames stored as image files in one folder, sorted naturally (``2.jpg`` before ``10.jpg``)."""

    def __init__(self, path: str | Path, resize: tuple[int, int] | None = None, stride: int = 1,
                 fps: float | None = None, extensions: Sequence[str] = IMAGE_EXTENSIONS):
        super().__init__(resize=resize, stride=stride, fps=fps)
        self.path = Path(path)
        self.name = str(self.path)
        if not self.path.is_dir():
            raise SourceError(f"image folder not found: {self.path}")
        exts = tuple(e.lower() for e in extensions)
        self.files = sorted((p for p in self.path.iterdir() if p.suffix.lower() in exts),
                            key=lambda p: natural_key(p.name))
        if not self.files:
            raise SourceError(f"no images ({', '.join(exts)}) in folder: {self.path}")

    def _raw_length(self) -> int:
        return len(self.files)

    def _raw_frames(self) -> Iterator[np.ndarray]:
        for f in self.files:
            image = cv2.imread(str(f), cv2.IMREAD_COLOR)
            if image is None:
                raise SourceError(f"cannot read image: {f}")
            yield image


class ArraySource(FrameSource):
    """Frames from a numpy array [T, H, W, 3] / [T, H, W] or any iterable of images.

    Float images in [0, 1] are scaled to 0..255. Length is known for arrays and sequences.
    """

    def __init__(self, frames: np.ndarray | Iterable[np.ndarray], resize: tuple[int, int] | None = None,
                 stride: int = 1, fps: float | None = None, name: str = "array"):
        super().__init__(resize=resize, stride=stride, fps=fps)
        self.name = name
        if isinstance(frames, np.ndarray) and frames.ndim not in (3, 4):
            raise SourceError(f"{name}: expected an array [T, H, W, 3] or [T, H, W], got shape {frames.shape}")
        self.frames = frames

    def _raw_length(self) -> int:
        if hasattr(self.frames, "__len__"):
            return len(self.frames)  # type: ignore[arg-type]
        raise TypeError("iterator source has no known length")

    def _raw_frames(self) -> Iterator[np.ndarray]:
        yield from self.frames


class CameraSource(FrameSource):
    """Live frames from an OpenCV camera index (``0`` = default webcam). Length is unknown.

    Args:
        max_frames: stop after this many frames (``None`` = until the camera stops).
    """

    def __init__(self, index: int = 0, resize: tuple[int, int] | None = None, stride: int = 1,
                 fps: float | None = None, max_frames: int | None = None):
        super().__init__(resize=resize, stride=stride, fps=fps)
        self.index = int(index)
        self.name = f"camera:{self.index}"
        self.max_frames = max_frames

    def _raw_frames(self) -> Iterator[np.ndarray]:
        cap = cv2.VideoCapture(self.index)
        if not cap.isOpened():
            raise SourceError(f"cannot open camera {self.index}")
        if self._fps is None:
            self._fps = _capture_fps(cap)
        try:
            n = 0
            while self.max_frames is None or n < self.max_frames:
                ok, image = cap.read()
                if not ok:
                    break
                n += 1
                yield image
        finally:
            cap.release()


def open_source(source: "str | Path | int | np.ndarray | Iterable[np.ndarray] | FrameSource",
                resize: tuple[int, int] | None = None, stride: int = 1,
                fps: float | None = None) -> FrameSource:
    """Open anything that holds frames.

    * ``FrameSource`` -> returned unchanged;
    * ``int`` (or a digit string such as ``"0"``) -> :class:`CameraSource`;
    * a folder -> :class:`ImageFolderSource`; a file -> :class:`VideoFileSource`;
    * a numpy array or an iterable of images -> :class:`ArraySource`.

    Raises:
        SourceError: the path does not exist or cannot be read (the message names it).
    """
    if isinstance(source, FrameSource):
        return source
    if isinstance(source, (int, np.integer)) or (isinstance(source, str) and source.isdigit()):
        return CameraSource(int(source), resize=resize, stride=stride, fps=fps)
    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.is_dir():
            return ImageFolderSource(path, resize=resize, stride=stride, fps=fps)
        if path.is_file():
            return VideoFileSource(path, resize=resize, stride=stride, fps=fps)
        raise SourceError(f"no such video file or image folder: {path}")
    return ArraySource(source, resize=resize, stride=stride, fps=fps)


class FrameWindow(FrameSource):
    """The frames of ``source`` from index ``start`` on, at most ``count`` of them.

    Frame indices (and times) stay those of the original stream, so scores of a window line up
    with the whole video's labels. Frames before ``start`` are decoded and dropped.

    Args:
        source: any :class:`FrameSource`.
        start: first frame index (>= 0).
        count: most frames to yield (None: to the end; >= 1).

    Raises:
        ValueError: ``start`` negative or ``count`` < 1 (the message names the value).
    """

    def __init__(self, source: FrameSource, start: int = 0, count: int | None = None):
        if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or start < 0:
            raise ValueError(f"start must be a frame index >= 0, got {start!r}")
        if count is not None and (isinstance(count, bool) or not isinstance(count, (int, np.integer))
                                  or count < 1):
            raise ValueError(f"the number of frames must be >= 1, got {count!r}")
        super().__init__(stride=1, fps=source._fps)
        self.source, self.start, self.count = source, int(start), count
        self.name = source.name
        self.path = getattr(source, "path", None)
        self.resize, self.stride = source.resize, source.stride

    def __len__(self) -> int:
        after = sum(1 for i in range(0, self.start, self.source.stride))
        n = max(0, len(self.source) - after)
        return n if self.count is None else min(n, int(self.count))

    def __iter__(self) -> Iterator[Frame]:
        yielded = 0
        for frame in self.source:
            if frame.index < self.start:
                continue
            if self.count is not None and yielded >= self.count:
                return
            yielded += 1
            yield frame


def as_frame_source(video: "str | Path | np.ndarray | FrameSource") -> FrameSource:
    """A :class:`FrameSource` for what a frame-level model accepts as one video: a
    ``FrameSource`` (returned as is), a path (video file or frame folder), or a uint8 array
    ``[T, H, W, 3]`` in BGR (also a dataset item with ``.source()``).

    Raises:
        SourceError: a missing path or an array of the wrong shape.
    """
    if isinstance(video, FrameSource):
        return video
    if hasattr(video, "source") and callable(video.source):
        return video.source()
    if isinstance(video, np.ndarray) and (video.ndim != 4 or video.shape[-1] != 3):
        raise SourceError(f"a video array must be [T, H, W, 3] (BGR), got shape {video.shape}")
    if isinstance(video, (int, np.integer)):
        raise SourceError("a frame-level model scores a finite video; stream a camera with "
                          "Pipeline.stream instead")
    return open_source(video)
