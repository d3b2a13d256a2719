"""Adapter over ``ultralytics.YOLO`` (YOLOv8 / YOLO11 ... detection models).

Weights are a file the user gives (``.pt``, or an exported model ultralytics can load), or a model
``.yaml`` (a built-in name such as ``"yolov8n.yaml"`` or a path), which builds a randomly
initialised network offline: useful for tests and for training elsewhere. Nothing is downloaded:
a weights path that does not exist is an error here, before ultralytics would try to fetch it.
"""
from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from detectors.base import BaseDetector, Detections, check_fraction, check_image, check_positive_int
from detectors.coco import COCO_CLASSES, class_filter_param, resolve_class_ids
from detectors.files import require_file

__all__ = ["UltralyticsDetector"]

_CONFIG_SUFFIXES = (".yaml", ".yml")
#: What ultralytics raises for a file it cannot load as a model (it wraps torch.load's errors in a
#: TypeError whose text recommends downloading an official model; onnxruntime fails on its own).
_LOAD_ERRORS = (TypeError, ValueError, RuntimeError, KeyError, AttributeError, OSError, EOFError,
                IndexError, pickle.UnpicklingError, zipfile.BadZipFile)


def _import_yolo() -> Any:
    try:
        import torch  # noqa: F401  (ultralytics must see torch imported first)
        from ultralytics import YOLO
    except ImportError as exc:
        raise ImportError("UltralyticsDetector needs ultralytics: pip install ultralytics "
                          "(see the project Makefile for the pinned version)") from exc
    return YOLO


def _class_names(names: dict[int, str]) -> tuple[str, ...]:
    """Model names ordered by id; an untrained 80-class model (names '0'..'79') gets COCO's."""
    ordered = tuple(str(names[i]) for i in sorted(names))
    if ordered == tuple(str(i) for i in range(len(COCO_CLASSES))):
        return COCO_CLASSES
    return ordered


class UltralyticsDetector(BaseDetector):
    """An ultralytics YOLO detection model as a :class:`~detectors.base.Detector`.

    Args:
        weights: a ``.pt`` file (or another model file ultralytics loads), or a model ``.yaml``
            (built-in name or path) for a randomly initialised network.
        conf_threshold: minimum confidence, in (0, 1].
        classes: keep only these classes (names or ids); ``None`` keeps all.
        imgsz: inference size (pixels of the longer side, a multiple of 32; >= 1).
        device: ``"cpu"``, ``"cuda:0"``, ...
        random_state: seed of the random initialisation when ``weights`` is a ``.yaml``.

    The model is loaded on construction, so a wrong path fails at once. Fitted attributes:
    ``model_`` (the ``ultralytics.YOLO``), ``class_ids_`` (the resolved filter).
    ``detect_batch`` runs the images as one batch.
    """

    def __init__(self, weights: str | os.PathLike, conf_threshold: float = 0.25,
                 classes: Iterable[int | str] | None = None, imgsz: int = 640, device: str = "cpu",
                 random_state: int = 0):
        self.weights = weights
        self.conf_threshold = conf_threshold
        self.classes = classes
        self.imgsz = imgsz
        self.device = device
        self.random_state = random_state
        self._load()

    def _load(self) -> None:
        who = type(self).__name__
        check_fraction(self.conf_threshold, "conf_threshold", who)
        check_positive_int(self.imgsz, "imgsz", who)
        weights = Path(self.weights)
        is_config = weights.suffix.lower() in _CONFIG_SUFFIXES
        if not is_config:
            weights = require_file(weights, "ultralytics weights file")
        yolo = _import_yolo()
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.random_state)
            try:
                self.model_ = yolo(str(weights), task="detect", verbose=False)
                names = self.model_.names  # exported models (.onnx, ...) are loaded here
            except FileNotFoundError as exc:
                if not is_config:
                    raise
                raise FileNotFoundError(
                    f"ultralytics model config not found: {self.weights} "
                    f"(give a path or a built-in name such as 'yolov8n.yaml')") from exc
            except _LOAD_ERRORS as exc:
                kind = "model config" if is_config else "weights file"
                raise ValueError(
                    f"{who}: ultralytics cannot load the {kind} {weights} "
                    f"({type(exc).__name__}): not a YOLO model ultralytics reads (.pt checkpoint, "
                    "exported .onnx, ...), or a truncated or corrupt copy") from exc
        self.class_names = _class_names(names)
        self.class_ids_ = resolve_class_ids(self.classes, self.class_names, type(self).__name__)

    def detect_batch(self, images: Sequence[np.ndarray], start_index: int = 0) -> list[Detections]:
        """Detect on H×W×3 uint8 BGR images in one forward pass (frame ``start_index + i``)."""
        images = [check_image(image, type(self).__name__) for image in images]
        if not images:
            return []
        classes = None if self.class_ids_ is None else list(self.class_ids_)
        results = self.model_.predict(images, conf=self.conf_threshold, imgsz=self.imgsz,
                                      device=self.device, classes=classes, verbose=False)
        return [self._to_detections(result, start_index + i) for i, result in enumerate(results)]

    def detect(self, image: np.ndarray, frame_index: int = 0) -> Detections:
        """Objects in one H×W×3 uint8 BGR image; boxes in its pixels."""
        return self.detect_batch([image], start_index=frame_index)[0]

    def _to_detections(self, result: Any, frame_index: int) -> Detections:
        boxes = result.boxes
        return Detections(boxes.xyxy.cpu().numpy(), boxes.conf.cpu().numpy(),
                          boxes.cls.cpu().numpy(), frame_index=frame_index,
                          image_size=tuple(result.orig_shape), class_names=self.class_names)

    def get_params(self) -> dict:
        """Constructor arguments (JSON-serialisable)."""
        return {"weights": str(self.weights), "conf_threshold": self.conf_threshold,
                "classes": class_filter_param(self.classes), "imgsz": self.imgsz,
                "device": self.device, "random_state": self.random_state}

    def __repr__(self) -> str:
        return (f"UltralyticsDetector(weights={str(self.weights)!r}, "
                f"conf_threshold={self.conf_threshold}, classes={self.classes!r}, "
                f"imgsz={self.imgsz}, device={self.device!r})")
