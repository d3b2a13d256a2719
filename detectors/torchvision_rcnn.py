"""Adapter over torchvision's R-CNN detectors (Faster / Mask / Keypoint R-CNN).

The network is always built with ``weights=None, weights_backbone=None`` (no hub download); trained
weights come from a ``state_dict`` file the user gives, loaded with ``weights_only=True``. A
detector without weights is refused: an untrained R-CNN finds nothing meaningful, and would do so
in silence. ``allow_random=True`` builds a randomly initialised (seeded) network on purpose, for
tests and for pipelines that train it later. Labels follow torchvision's COCO numbering
(:data:`detectors.coco.COCO_91_CATEGORIES`, 1 = person) when ``num_classes == 91``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from detectors.base import BaseDetector, Detections, check_fraction, check_image, check_positive_int
from detectors.coco import COCO_91_CATEGORIES, class_filter_param, resolve_class_ids
from detectors.files import require_file
from detectors.weights import load_torch_state

__all__ = ["TorchvisionDetector", "supported_archs"]


def _import_torchvision() -> tuple[Any, Any]:
    try:
        import torch
        import torchvision
    except ImportError as exc:
        raise ImportError("TorchvisionDetector needs torch and torchvision: "
                          "pip install torch torchvision") from exc
    return torch, torchvision


def supported_archs() -> tuple[str, ...]:
    """torchvision detection builders this adapter accepts (the R-CNN family, which takes
    ``min_size``, ``max_size`` and ``box_score_thresh``)."""
    _, torchvision = _import_torchvision()
    builders = torchvision.models.list_models(module=torchvision.models.detection)
    return tuple(name for name in builders if "rcnn" in name)


class TorchvisionDetector(BaseDetector):
    """A torchvision R-CNN detector as a :class:`~detectors.base.Detector`.

    Args:
        weights: path of a ``state_dict`` file (a plain ``state_dict`` or a checkpoint dict with a
            ``"model"`` entry, as torchvision's reference scripts save). Required unless
            ``allow_random``.
        arch: builder name, one of :func:`supported_archs`.
        conf_threshold: minimum box score, in (0, 1].
        classes: keep only these classes (names or ids of ``class_names``); ``None`` keeps all.
        min_size, max_size: the network resizes each image so its short side is ``min_size`` and
            its long side at most ``max_size`` (boxes come back in original pixels).
        num_classes: number of outputs including background (91 for COCO).
        device: torch device string.
        class_names: names indexed by label id (``None`` = COCO's 91 categories when
            ``num_classes == 91``, else ``"0"``, ``"1"``, ...).
        random_state: seed of the random initialisation.
        allow_random: with ``weights=None``, build an untrained, randomly initialised network
            (tests, networks trained later) instead of refusing.

    The network is built on construction. Fitted attributes: ``model_`` (the ``nn.Module`` in eval
    mode), ``class_ids_``. ``detect_batch`` runs the images as one batch.
    """

    def __init__(self, weights: str | os.PathLike | None = None,
                 arch: str = "fasterrcnn_mobilenet_v3_large_fpn", conf_threshold: float = 0.5,
                 classes: Iterable[int | str] | None = None, min_size: int = 240,
                 max_size: int = 360, num_classes: int = 91, device: str = "cpu",
                 class_names: Sequence[str] | None = None, random_state: int = 0,
                 allow_random: bool = False):
        self.weights = weights
        self.arch = arch
        self.conf_threshold = conf_threshold
        self.classes = classes
        self.min_size = min_size
        self.max_size = max_size
        self.num_classes = num_classes
        self.device = device
        self.class_names = tuple(self._default_names() if class_names is None else class_names)
        self.random_state = random_state
        self.allow_random = allow_random
        self._load()

    def _default_names(self) -> tuple[str, ...]:
        if self.num_classes == len(COCO_91_CATEGORIES):
            return COCO_91_CATEGORIES
        return tuple(str(i) for i in range(self.num_classes))

    def _check_params(self) -> None:
        who = type(self).__name__
        check_fraction(self.conf_threshold, "conf_threshold", who)
        for name in ("min_size", "max_size", "num_classes"):
            check_positive_int(getattr(self, name), name, who)
        archs = supported_archs()
        if self.arch not in archs:
            raise ValueError(f"{who}: unknown arch {self.arch!r}; choose one of {archs}")
        if len(self.class_names) != self.num_classes:
            raise ValueError(f"{who}: {len(self.class_names)} class_names for "
                             f"num_classes={self.num_classes}")
        if self.weights is None and not self.allow_random:
            raise ValueError(f"{who}: no weights file given; an untrained {self.arch} finds "
                             "nothing meaningful. Pass weights=<a state_dict .pt file> (CLI: "
                             "--weights), or allow_random=True for a random network on purpose")
        if self.weights is not None:
            require_file(self.weights, "torchvision weights file")  # before building the network

    def _load(self) -> None:
        self._check_params()
        torch, torchvision = _import_torchvision()
        self.class_ids_ = resolve_class_ids(self.classes, self.class_names, type(self).__name__)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.random_state)
            model = torchvision.models.get_model(
                self.arch, weights=None, weights_backbone=None, num_classes=self.num_classes,
                min_size=self.min_size, max_size=self.max_size,
                box_score_thresh=self.conf_threshold)
        if self.weights is not None:
            self._load_weights(model, Path(self.weights).expanduser())
        self.model_ = model.to(self.device).eval()

    def _load_weights(self, model: Any, path: Path) -> None:
        state = load_torch_state(path, "torchvision weights file")
        if isinstance(state, dict) and isinstance(state.get("model"), dict):
            state = state["model"]  # a checkpoint of torchvision's reference training scripts
        try:
            model.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as exc:
            first_line = str(exc).strip().splitlines()[0]
            raise ValueError(f"{path} is not a state_dict of {self.arch} with "
                             f"num_classes={self.num_classes}: {first_line}") from exc

    def detect_batch(self, images: Sequence[np.ndarray], start_index: int = 0) -> list[Detections]:
        """Detect on H×W×3 uint8 BGR images in one forward pass (frame ``start_index + i``)."""
        import torch

        images = [check_image(image, type(self).__name__) for image in images]
        if not images:
            return []
        # BGR uint8 [H, W, 3] -> RGB float [3, H, W] in [0, 1]
        tensors = [torch.from_numpy(np.ascontiguousarray(image[:, :, ::-1])).to(self.device)
                   .permute(2, 0, 1).float().div_(255) for image in images]
        with torch.inference_mode():
            outputs = self.model_(tensors)
        return [self._to_detections(output, image.shape[:2], start_index + i)
                for i, (output, image) in enumerate(zip(outputs, images))]

    def detect(self, image: np.ndarray, frame_index: int = 0) -> Detections:
        """Objects in one H×W×3 uint8 BGR image; boxes in its pixels."""
        return self.detect_batch([image], start_index=frame_index)[0]

    def _to_detections(self, output: dict, image_size: tuple[int, int],
                       frame_index: int) -> Detections:
        detections = Detections(output["boxes"].cpu().numpy(), output["scores"].cpu().numpy(),
                                output["labels"].cpu().numpy(), frame_index=frame_index,
                                image_size=image_size, class_names=self.class_names)
        return detections if self.class_ids_ is None else detections.filter(classes=self.class_ids_)

    def get_params(self) -> dict:
        """Constructor arguments (JSON-serialisable)."""
        custom_names = self.class_names != self._default_names()
        return {"weights": None if self.weights is None else str(self.weights), "arch": self.arch,
                "conf_threshold": self.conf_threshold, "classes": class_filter_param(self.classes),
                "min_size": self.min_size, "max_size": self.max_size,
                "num_classes": self.num_classes, "device": self.device,
                "class_names": list(self.class_names) if custom_names else None,
                "random_state": self.random_state, "allow_random": self.allow_random}

    def __repr__(self) -> str:
        weights = None if self.weights is None else str(self.weights)
        return (f"TorchvisionDetector(arch={self.arch!r}, weights={weights!r}, "
                f"conf_threshold={self.conf_threshold}, classes={self.classes!r}, "
                f"min_size={self.min_size}, max_size={self.max_size}, "
                f"num_classes={self.num_classes})")
