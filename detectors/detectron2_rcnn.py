"""Optional adapter over detectron2's ``DefaultPredictor``.

It takes yacs ``.yaml`` configs, e.g. the model zoo's
``COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml`` with its ``model_final_*.pkl`` weights.

detectron2 is not on PyPI; constructing the detector without it raises an ``ImportError`` that says
how to install it. Config and weights are files the user gives (nothing is downloaded). LazyConfig
(``.py``) configs are not supported.
"""
from __future__ import annotations

import os
from typing import Any, Iterable, Sequence

import numpy as np

from detectors.base import BaseDetector, Detections, check_fraction, check_image
from detectors.coco import COCO_CLASSES, class_filter_param, resolve_class_ids
from detectors.files import require_file

__all__ = ["Detectron2Detector", "DETECTRON2_INSTALL"]

DETECTRON2_INSTALL = "pip install 'git+https://github.com/facebookresearch/detectron2.git'"


def _import_detectron2() -> tuple[Any, Any]:
    try:
        import torch  # noqa: F401  (detectron2 needs torch first)
        from detectron2.config import get_cfg
        from detectron2.engine import DefaultPredictor
    except ImportError as exc:
        raise ImportError(f"Detectron2Detector needs detectron2, which is not on PyPI; install "
                          f"it with {DETECTRON2_INSTALL} (see "
                          "https://detectron2.readthedocs.io/en/latest/tutorials/install.html)"
                          ) from exc
    return get_cfg, DefaultPredictor


class Detectron2Detector(BaseDetector):
    """A detectron2 model (config + weights files) as a :class:`~detectors.base.Detector`.

    Args:
        config_file: path of a detectron2 yacs ``.yaml`` config (its ``_BASE_`` files next to it).
        weights: path of the weights file (``.pkl`` or ``.pth``).
        conf_threshold: minimum score, in (0, 1] (sets the ``MODEL.ROI_HEADS`` and
            ``MODEL.RETINANET`` test thresholds).
        classes: keep only these classes (names or ids); ``None`` keeps all.
        device: ``"cpu"``, ``"cuda"``, ...
        class_names: names by class id (``None`` = COCO's 80 when the model has 80 classes, else
            ``"0"``, ``"1"``, ...).

    The predictor is built on construction (input format and test-time resize come from the
    config). Fitted attributes: ``predictor_``, ``class_ids_``.
    """

    def __init__(self, config_file: str | os.PathLike, weights: str | os.PathLike,
                 conf_threshold: float = 0.5, classes: Iterable[int | str] | None = None,
                 device: str = "cpu", class_names: Sequence[str] | None = None):
        self.config_file = config_file
        self.weights = weights
        self.conf_threshold = conf_threshold
        self.classes = classes
        self.device = device
        self.class_names = None if class_names is None else tuple(class_names)
        self._load()

    def _load(self) -> None:
        check_fraction(self.conf_threshold, "conf_threshold", type(self).__name__)
        get_cfg, default_predictor = _import_detectron2()
        config_path = require_file(self.config_file, "detectron2 config file")
        weights_path = require_file(self.weights, "detectron2 weights file")
        cfg = get_cfg()
        cfg.merge_from_file(str(config_path))
        cfg.MODEL.WEIGHTS = str(weights_path)
        cfg.MODEL.DEVICE = self.device
        cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = self.conf_threshold
        cfg.MODEL.RETINANET.SCORE_THRESH_TEST = self.conf_threshold
        cfg.freeze()
        is_retinanet = cfg.MODEL.META_ARCHITECTURE == "RetinaNet"
        num_classes = (cfg.MODEL.RETINANET if is_retinanet else cfg.MODEL.ROI_HEADS).NUM_CLASSES
        if self.class_names is None:
            self.class_names = (COCO_CLASSES if num_classes == len(COCO_CLASSES)
                                else tuple(str(i) for i in range(num_classes)))
        self.class_ids_ = resolve_class_ids(self.classes, self.class_names, type(self).__name__)
        self.predictor_ = default_predictor(cfg)

    def detect(self, image: np.ndarray, frame_index: int = 0) -> Detections:
        """Objects in one H×W×3 uint8 BGR image; boxes in its pixels."""
        image = check_image(image, type(self).__name__)
        instances = self.predictor_(image)["instances"].to("cpu")  # DefaultPredictor takes BGR
        detections = Detections(instances.pred_boxes.tensor.numpy(), instances.scores.numpy(),
                                instances.pred_classes.numpy(), frame_index=frame_index,
                                image_size=image.shape[:2], class_names=self.class_names)
        return detections if self.class_ids_ is None else detections.filter(classes=self.class_ids_)

    def get_params(self) -> dict:
        """Constructor arguments (JSON-serialisable)."""
        return {"config_file": str(self.config_file), "weights": str(self.weights),
                "conf_threshold": self.conf_threshold, "classes": class_filter_param(self.classes),
                "device": self.device, "class_names": list(self.class_names)}

    def __repr__(self) -> str:
        return (f"Detectron2Detector(config_file={str(self.config_file)!r}, "
                f"weights={str(self.weights)!r}, conf_threshold={self.conf_threshold}, "
                f"classes={self.classes!r}, device={self.device!r})")
