"""Detectors: image -> :class:`~detectors.base.Detections`.

Only numpy and OpenCV are imported here; heavy backends (onnxruntime, ultralytics, torchvision,
detectron2) are imported lazily inside their adapters.
"""
from detectors.base import (BaseDetector, DetectionError, Detections, Detector, check_image,
                            iter_detect, run_detector)

__all__ = ["BaseDetector", "DetectionError", "Detections", "Detector", "check_image", "iter_detect",
           "run_detector"]
