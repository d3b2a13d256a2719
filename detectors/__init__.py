"""Detectors: image -> :class:`~detectors.base.Detections`.

Importing this package loads only numpy (``detectors.base``). The adapters are loaded on first
use of their name, and their heavy backends (onnxruntime, ultralytics, torchvision, detectron2)
only when a detector is created::

    from detectors import MotionRegionDetector, YoloxOnnxDetector, read_detections

=========================  ====================================================================
``MotionRegionDetector``   moving regions, STRL Algorithm 1 (no weights; any video)
``YoloxOnnxDetector``      YOLOX ONNX model (e.g. COCO YOLOX-nano), onnxruntime or OpenCV DNN
``UltralyticsDetector``    ``ultralytics.YOLO`` with a user-supplied weights file
``TorchvisionDetector``    torchvision Faster R-CNN (weights file optional)
``Detectron2Detector``     detectron2 predictor (optional dependency)
``write_detections`` ...   detections files (JSON lines / npz) for detections from any tool
=========================  ====================================================================
"""
from __future__ import annotations

import importlib
from typing import Any

from detectors.base import (BaseDetector, DetectionError, Detections, Detector, check_image,
                            iter_detect, run_detector)

#: public name -> module that defines it (imported on first access).
_LAZY = {
    "MotionRegionDetector": "detectors.motion",
    "YoloxOnnxDetector": "detectors.yolox_onnx",
    "UltralyticsDetector": "detectors.ultralytics_yolo",
    "TorchvisionDetector": "detectors.torchvision_rcnn",
    "Detectron2Detector": "detectors.detectron2_rcnn",
    "write_detections": "detectors.files",
    "read_detections": "detectors.files",
    "read_header": "detectors.files",
    "detections_from_records": "detectors.files",
    "COCO_CLASSES": "detectors.coco",
    "COCO_91_CATEGORIES": "detectors.coco",
}

__all__ = ["BaseDetector", "DetectionError", "Detections", "Detector", "check_image", "iter_detect",
           "run_detector", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'detectors' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
