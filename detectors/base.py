"""The ``Detections`` object every detector returns, and the ``Detector`` protocol.

Only numpy is needed to import this module: detectors must stay usable without torch.

A ``Detections`` holds all objects found in **one frame**::

    boxes     float32 [N, 4]  xyxy in pixels of the frame the detector saw
    scores    float32 [N]     confidence in [0, 1]
    labels    int64   [N]     class ids (indices into ``class_names`` when given)
    features  float32 [N, D]  optional per-object features (filled by ``stgraph.features``)

plus ``frame_index``, ``image_size`` (H, W) and ``class_names``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Protocol, Sequence, runtime_checkable

import numpy as np

__all__ = ["Detections", "Detector", "BaseDetector", "DetectionError", "check_image", "run_detector",
           "iter_detect", "check_fraction", "check_positive_int"]


class DetectionError(ValueError):
    """Raised when detections are malformed (bad shapes, NaNs, mismatched lengths)."""


def _as_array(value: Any, dtype: np.dtype, name: str) -> np.ndarray:
    """A private, writable copy of ``value`` (never a view of the caller's array)."""
    try:
        return np.array(value, dtype=dtype, copy=True)
    except (TypeError, ValueError) as exc:
        raise DetectionError(f"Detections.{name} cannot be converted to {np.dtype(dtype).name}: {exc}") from exc


@dataclass
class Detections:
    """Objects detected in one frame (see module docstring for shapes).

    Construction validates and normalises: shapes are checked, values must be finite, boxes are
    clipped to ``image_size`` when it is known and boxes whose corners are swapped are rejected.
    The arrays are copied on construction: the caller's arrays are never written to (read-only
    arrays are fine) and later changes to them do not reach the ``Detections``.

    Example:
        >>> d = Detections(boxes=[[10, 10, 50, 80]], scores=[0.9], labels=[0], frame_index=3,
        ...                image_size=(240, 360), class_names=("person",))
        >>> len(d), d.names
        (1, ['person'])
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    frame_index: int = 0
    image_size: tuple[int, int] | None = None  # (H, W)
    class_names: tuple[str, ...] = ()
    features: np.ndarray | None = None
    track_ids: np.ndarray | None = None  # optional, int64 [N]; -1 = untracked
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        boxes = _as_array(self.boxes, np.float32, "boxes")
        if boxes.size == 0:
            boxes = boxes.reshape(0, 4)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise DetectionError(f"Detections.boxes must have shape [N, 4] (xyxy), got {boxes.shape}")
        n = boxes.shape[0]
        scores = _as_array(self.scores, np.float32, "scores").reshape(-1)
        labels = _as_array(self.labels, np.int64, "labels").reshape(-1)
        if scores.shape[0] != n or labels.shape[0] != n:
            raise DetectionError(
                f"Detections has {n} boxes but {scores.shape[0]} scores and {labels.shape[0]} labels"
            )
        if not np.all(np.isfinite(boxes)):
            raise DetectionError(f"Detections.boxes of frame {self.frame_index} contain NaN or inf")
        if not np.all(np.isfinite(scores)):
            raise DetectionError(f"Detections.scores of frame {self.frame_index} contain NaN or inf")
        if n and np.any(boxes[:, 2:] < boxes[:, :2]):
            bad = int(np.argmax(np.any(boxes[:, 2:] < boxes[:, :2], axis=1)))
            raise DetectionError(
                f"Detections.boxes must be xyxy with x2 >= x1 and y2 >= y1; row {bad} is {boxes[bad].tolist()}"
            )
        if self.image_size is not None:
            h, w = (int(v) for v in self.image_size)
            if h <= 0 or w <= 0:
                raise DetectionError(f"Detections.image_size must be positive (H, W), got {self.image_size}")
            self.image_size = (h, w)
            boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, w)
            boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, h)
        if self.features is not None:
            features = _as_array(self.features, np.float32, "features")
            if features.ndim != 2 or features.shape[0] != n:
                raise DetectionError(f"Detections.features must have shape [{n}, D], got {features.shape}")
            if not np.all(np.isfinite(features)):
                raise DetectionError(f"Detections.features of frame {self.frame_index} contain NaN or inf")
            self.features = features
        if self.track_ids is not None:
            track_ids = _as_array(self.track_ids, np.int64, "track_ids").reshape(-1)
            if track_ids.shape[0] != n:
                raise DetectionError(f"Detections.track_ids must have length {n}, got {track_ids.shape[0]}")
            self.track_ids = track_ids
        self.boxes, self.scores, self.labels = boxes, scores, labels
        self.frame_index = int(self.frame_index)
        self.class_names = tuple(str(c) for c in self.class_names)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def empty(
        cls,
        frame_index: int = 0,
        image_size: tuple[int, int] | None = None,
        class_names: Sequence[str] = (),
        feature_dim: int | None = None,
    ) -> "Detections":
        """A frame without objects (a valid, documented result, never an error)."""
        features = None if feature_dim is None else np.zeros((0, feature_dim), np.float32)
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64),
                   frame_index=frame_index, image_size=image_size, class_names=tuple(class_names),
                   features=features)

    @classmethod
    def concat(cls, items: Sequence["Detections"]) -> "Detections":
        """Concatenate detections of the **same frame** (e.g. from two detectors).

        Frame index, image size and class names are taken from the first item; features are kept
        only if every item has them with the same width.
        """
        if not items:
            raise DetectionError("Detections.concat needs at least one Detections")
        first = items[0]
        feats = [d.features for d in items]
        features = None
        if all(f is not None for f in feats) and len({f.shape[1] for f in feats}) == 1:  # type: ignore[union-attr]
            features = np.concatenate(feats, axis=0)  # type: ignore[arg-type]
        tracks = [d.track_ids for d in items]
        track_ids = np.concatenate(tracks) if all(t is not None for t in tracks) else None
        return cls(
            np.concatenate([d.boxes for d in items]), np.concatenate([d.scores for d in items]),
            np.concatenate([d.labels for d in items]), frame_index=first.frame_index,
            image_size=first.image_size, class_names=first.class_names, features=features,
            track_ids=track_ids,
        )

    # ------------------------------------------------------------------ container protocol
    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def __getitem__(self, index: int | slice | np.ndarray | Sequence[int]) -> "Detections":
        """Select rows by int, slice, integer array or boolean mask; returns ``Detections``."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        idx = np.arange(len(self))[index]
        return Detections(
            self.boxes[idx], self.scores[idx], self.labels[idx], frame_index=self.frame_index,
            image_size=self.image_size, class_names=self.class_names,
            features=None if self.features is None else self.features[idx],
            track_ids=None if self.track_ids is None else self.track_ids[idx], meta=dict(self.meta),
        )

    def with_features(self, features: np.ndarray) -> "Detections":
        """A copy with ``features`` [N, D] attached (validated)."""
        return Detections(self.boxes, self.scores, self.labels, frame_index=self.frame_index,
                          image_size=self.image_size, class_names=self.class_names,
                          features=features, track_ids=self.track_ids, meta=dict(self.meta))

    def filter(self, min_score: float = 0.0, classes: Iterable[int | str] | None = None) -> "Detections":
        """Keep rows with ``score >= min_score`` and (optionally) a class among ``classes`` (ids or names)."""
        keep = self.scores >= min_score
        if classes is not None:
            ids = {self.class_names.index(c) if isinstance(c, str) else int(c) for c in classes
                   if not isinstance(c, str) or c in self.class_names}
            keep &= np.isin(self.labels, list(ids))
        return self[keep]

    # ------------------------------------------------------------------ derived views
    @property
    def names(self) -> list[str]:
        """Class name of each row (``str(label)`` when no names are known)."""
        return [self.class_names[i] if 0 <= i < len(self.class_names) else str(i) for i in self.labels]

    @property
    def centers(self) -> np.ndarray:
        """[N, 2] box centres (x, y) in pixels."""
        return (self.boxes[:, :2] + self.boxes[:, 2:]) / 2

    @property
    def areas(self) -> np.ndarray:
        """[N] box areas in pixels²."""
        wh = self.boxes[:, 2:] - self.boxes[:, :2]
        return wh[:, 0] * wh[:, 1]

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict:
        """JSON-serialisable dict (lists of floats/ints); inverse of :meth:`from_dict`."""
        out = {
            "frame_index": self.frame_index,
            "image_size": None if self.image_size is None else list(self.image_size),
            "class_names": list(self.class_names),
            "boxes": self.boxes.round(3).tolist(),
            "scores": self.scores.round(6).tolist(),
            "labels": self.labels.tolist(),
        }
        if self.features is not None:
            out["features"] = self.features.tolist()
            out["feature_dim"] = int(self.features.shape[1])  # keeps [0, D] for frames without objects
        if self.track_ids is not None:
            out["track_ids"] = self.track_ids.tolist()
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "Detections":
        missing = [k for k in ("boxes", "scores", "labels") if k not in data]
        if missing:
            raise DetectionError(f"detections record lacks keys {missing}")
        size = data.get("image_size")
        features = data.get("features")
        if features is not None and "feature_dim" in data:
            features = np.asarray(features, np.float32).reshape(-1, int(data["feature_dim"]))
        return cls(
            np.asarray(data["boxes"], np.float32).reshape(-1, 4), data["scores"], data["labels"],
            frame_index=data.get("frame_index", 0), image_size=None if size is None else tuple(size),
            class_names=tuple(data.get("class_names", ())), features=features,
            track_ids=data.get("track_ids"),
        )

    def __repr__(self) -> str:
        feat = "" if self.features is None else f", features={self.features.shape[1]}-d"
        return f"Detections(frame={self.frame_index}, n={len(self)}{feat})"


@runtime_checkable
class Detector(Protocol):
    """Anything with ``detect(image, frame_index) -> Detections`` and ``detect_batch``.

    ``image`` is H×W×3 uint8 BGR (as OpenCV gives). Detectors that keep state across frames
    (e.g. the motion detector) document it and reset it in ``reset()``.
    """

    def detect(self, image: np.ndarray, frame_index: int = 0) -> Detections: ...

    def detect_batch(self, images: Sequence[np.ndarray], start_index: int = 0) -> list[Detections]: ...


class BaseDetector:
    """Convenience base: subclasses write ``detect``; batching, ``reset`` and ``__call__`` come free."""

    class_names: tuple[str, ...] = ()

    def detect(self, image: np.ndarray, frame_index: int = 0) -> Detections:  # pragma: no cover
        raise NotImplementedError

    def detect_batch(self, images: Sequence[np.ndarray], start_index: int = 0) -> list[Detections]:
        """Detect on each image in order; frame indices are ``start_index + i``."""
        return [self.detect(im, frame_index=start_index + i) for i, im in enumerate(images)]

    def reset(self) -> None:
        """Forget state carried between frames (no-op for stateless detectors)."""

    def __call__(self, image: np.ndarray, frame_index: int = 0) -> Detections:
        return self.detect(image, frame_index=frame_index)


def check_fraction(value: Any, name: str, who: str) -> float:
    """``value`` as a float in ``(0, 1]`` (a confidence or IoU threshold), else a ``ValueError``
    naming ``who.name`` and the value."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise ValueError(f"{who}: {name} must be a number in (0, 1], got {value!r}")
    if not 0 < float(value) <= 1:
        raise ValueError(f"{who}: {name} must be in (0, 1], got {value}")
    return float(value)


def check_positive_int(value: Any, name: str, who: str) -> int:
    """``value`` as an int >= 1, else a ``ValueError`` naming ``who.name`` and the value."""
    if (isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer))
            or int(value) < 1):
        raise ValueError(f"{who}: {name} must be an integer >= 1, got {value!r}")
    return int(value)


def check_image(image: np.ndarray, who: str) -> np.ndarray:
    """Validate an H×W×3 uint8 BGR image (H×W grayscale is promoted); raise a clear error otherwise."""
    if not isinstance(image, np.ndarray):
        raise DetectionError(f"{who} expects a numpy image (H×W×3 uint8 BGR), got {type(image).__name__}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise DetectionError(f"{who} expects an H×W×3 image, got shape {image.shape}")
    if image.dtype != np.uint8:
        raise DetectionError(f"{who} expects a uint8 image, got dtype {image.dtype}")
    return image


def run_detector(detector: Detector, frames: Iterable[Any], progress: bool = True,
                 desc: str = "detect") -> list[Detections]:
    """Run ``detector`` over a frame source (anything yielding objects with ``.index``/``.image``).

    Shows a tqdm progress bar when ``progress`` (length taken from ``len(frames)`` when known).
    Returns one ``Detections`` per frame, in order.
    """
    from tqdm.auto import tqdm

    if hasattr(detector, "reset"):
        detector.reset()
    total = len(frames) if hasattr(frames, "__len__") else None  # type: ignore[arg-type]
    out: list[Detections] = []
    for frame in tqdm(frames, total=total, desc=desc, disable=not progress, unit="frame"):
        out.append(detector.detect(frame.image, frame_index=frame.index))
    return out


def iter_detect(detector: Detector, frames: Iterable[Any]) -> Iterator[tuple[Any, Detections]]:
    """Lazily yield ``(frame, detections)`` pairs (for streaming use)."""
    for frame in frames:
        yield frame, detector.detect(frame.image, frame_index=frame.index)
