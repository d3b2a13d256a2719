"""YOLOX detector from an ONNX export (e.g. COCO YOLOX-Nano), run by onnxruntime or OpenCV's dnn.

The model file is a path the user gives; nothing is downloaded. Pre- and post-processing follow
Megvii's YOLOX demo:

- input: BGR, 0..255 float, **no** mean/std normalisation; the frame is resized by
  ``r = min(S / h, S / w)`` and pasted at the top-left of an S×S canvas filled with 114;
- output: [1, M, 5 + C] raw rows, one per grid cell of strides 8, 16, 32
  (M = (S/8)² + (S/16)² + (S/32)²): ``x, y, w, h, objectness, C class probabilities``;
- decoding: ``xy = (p_xy + cell_xy) * stride``, ``wh = exp(p_wh) * stride`` (centre/size in canvas
  pixels), ``score = objectness × class probability`` of the best class, boxes divided by ``r``,
  then class-aware NMS (``cv2.dnn.NMSBoxesBatched``).
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Callable, Iterable, Sequence

import cv2
import numpy as np

from detectors.base import (BaseDetector, DetectionError, Detections, check_fraction, check_image,
                            check_positive_int)
from detectors.coco import COCO_CLASSES, class_filter_param, resolve_class_ids
from detectors.files import require_file

__all__ = ["YoloxOnnxDetector", "letterbox", "yolox_grid", "decode_yolox_outputs",
           "select_detections"]

YOLOX_STRIDES = (8, 16, 32)
PAD_VALUE = 114.0
_BACKENDS = ("auto", "onnxruntime", "opencv")


def letterbox(image: np.ndarray, input_size: int) -> tuple[np.ndarray, float]:
    """YOLOX input blob of one image.

    Args:
        image: H×W×3 uint8 BGR.
        input_size: side S of the square network input.

    Returns:
        ``(blob, r)``: float32 [1, 3, S, S] (BGR, 0..255, the resized image at the top-left of a
        114-filled canvas) and the resize ratio ``r = min(S / H, S / W)``.
    """
    height, width = image.shape[:2]
    ratio = min(input_size / height, input_size / width)
    new_w, new_h = int(width * ratio), int(height * ratio)
    canvas = np.full((input_size, input_size, 3), PAD_VALUE, np.float32)
    canvas[:new_h, :new_w] = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(canvas.transpose(2, 0, 1)[None]), ratio


def yolox_grid(input_size: int,
               strides: Sequence[int] = YOLOX_STRIDES) -> tuple[np.ndarray, np.ndarray]:
    """Cell offsets and strides of every output row, in YOLOX's order.

    Returns:
        ``(cells, row_strides)``: float32 [M, 2] cell (x, y) indices and float32 [M, 1] strides,
        rows ordered by stride, then by y, then by x (M = Σ (S / stride)²).
    """
    cells, row_strides = [], []
    for stride in strides:
        side = input_size // stride
        ys, xs = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
        cells.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
        row_strides.append(np.full((side * side, 1), stride))
    return np.concatenate(cells).astype(np.float32), np.concatenate(row_strides).astype(np.float32)


def decode_yolox_outputs(raw: np.ndarray, cells: np.ndarray, row_strides: np.ndarray,
                         ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """Raw YOLOX rows -> boxes in original-image pixels and per-class scores.

    Args:
        raw: float32 [M, 5 + C] network output for one image.
        cells, row_strides: from :func:`yolox_grid` ([M, 2], [M, 1]).
        ratio: the letterbox ratio ``r``.

    Returns:
        ``(boxes, class_scores)``: float32 [M, 4] xyxy (pixels of the original image) and
        float32 [M, C] ``objectness × class probability``.
    """
    centres = (raw[:, :2] + cells) * row_strides
    sizes = np.exp(raw[:, 2:4]) * row_strides
    boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1) / ratio
    return boxes.astype(np.float32), (raw[:, 4:5] * raw[:, 5:]).astype(np.float32)


def select_detections(boxes: np.ndarray, class_scores: np.ndarray, conf_threshold: float,
                      nms_threshold: float, keep_classes: Sequence[int] | None = None
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best class per box, score threshold, class filter and class-aware NMS.

    Args:
        boxes: float32 [M, 4] xyxy; class_scores: float32 [M, C].
        conf_threshold: minimum ``objectness × class probability``.
        nms_threshold: IoU above which a lower-scored box of the same class is dropped.
        keep_classes: class ids to keep (``None`` = all); applied after the best class is chosen,
            so a box keeps its most likely class.

    Returns:
        ``(boxes [N, 4], scores [N], labels [N] int64)``, by decreasing score.
    """
    labels = class_scores.argmax(axis=1)
    scores = class_scores[np.arange(len(labels)), labels]
    keep = scores >= conf_threshold
    if keep_classes is not None:
        keep &= np.isin(labels, keep_classes)
    boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1).astype(np.float64)
    kept = cv2.dnn.NMSBoxesBatched(xywh, scores.astype(np.float32), labels.astype(np.int32),
                                   conf_threshold, nms_threshold)
    order = np.asarray(kept, np.int64).reshape(-1)
    return boxes[order], scores[order], labels[order].astype(np.int64)


class YoloxOnnxDetector(BaseDetector):
    """YOLOX ONNX model as a :class:`~detectors.base.Detector`.

    Args:
        model_path: path of the ``.onnx`` file (e.g. ``shared/data/models/yolox_nano.onnx``).
        input_size: side of the square network input (416 for YOLOX-Nano/Tiny, 640 for S/M/L/X);
            must match the model when its input size is fixed.
        conf_threshold: minimum ``objectness × class probability``, in (0, 1].
        nms_threshold: IoU threshold of the class-aware NMS, in (0, 1].
        classes: keep only these classes (names or ids, e.g. ``("person", "bicycle", "car")``);
            ``None`` keeps all.
        backend: ``"onnxruntime"``, ``"opencv"`` (``cv2.dnn``) or ``"auto"`` (onnxruntime when it
            is installed, else OpenCV).
        num_threads: intra-op threads of onnxruntime, >= 1 (OpenCV's dnn uses OpenCV's own
            setting).
        class_names: names of the model's classes (``None`` = the 80 COCO classes).

    The model is loaded on construction, so a wrong path or a missing backend fails at once.
    Fitted attributes: ``backend_`` (the backend in use), ``class_ids_`` (the resolved filter).
    ``detect_batch`` (inherited) runs the images one by one: YOLOX exports have a fixed batch of 1.

    Example:
        >>> det = YoloxOnnxDetector("models/yolox_nano.onnx", classes=("person",))  # doctest: +SKIP
        >>> det.detect(frame, frame_index=0).boxes                                 # doctest: +SKIP
    """

    def __init__(self, model_path: str | os.PathLike, input_size: int = 416,
                 conf_threshold: float = 0.3, nms_threshold: float = 0.45,
                 classes: Iterable[int | str] | None = None, backend: str = "auto",
                 num_threads: int = 2, class_names: Sequence[str] | None = None):
        self.model_path = model_path
        self.input_size = input_size
        self.conf_threshold = conf_threshold
        self.nms_threshold = nms_threshold
        self.classes = classes
        self.backend = backend
        self.num_threads = num_threads
        self.class_names = tuple(COCO_CLASSES if class_names is None else class_names)
        self._load()

    # ------------------------------------------------------------------ loading
    def _check_params(self) -> None:
        who = type(self).__name__
        check_fraction(self.conf_threshold, "conf_threshold", who)
        check_fraction(self.nms_threshold, "nms_threshold", who)
        check_positive_int(self.num_threads, "num_threads", who)
        if self.backend not in _BACKENDS:
            raise ValueError(f"backend must be one of {_BACKENDS}, got {self.backend!r}")
        check_positive_int(self.input_size, "input_size", who)
        if self.input_size % max(YOLOX_STRIDES):
            raise ValueError(f"input_size must be a multiple of {max(YOLOX_STRIDES)}, "
                             f"got {self.input_size}")

    def _load(self) -> None:
        self._check_params()
        path = require_file(self.model_path, "YOLOX ONNX model")
        self.class_ids_ = resolve_class_ids(self.classes, self.class_names, type(self).__name__)
        use_ort = self.backend == "onnxruntime" or (
            self.backend == "auto" and importlib.util.find_spec("onnxruntime") is not None)
        self.backend_ = "onnxruntime" if use_ort else "opencv"
        self._infer = self._onnxruntime_runner(path) if use_ort else self._opencv_runner(path)
        self._cells, self._row_strides = yolox_grid(self.input_size)

    def _onnxruntime_runner(self, path: Path) -> Callable[[np.ndarray], np.ndarray]:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ImportError("YoloxOnnxDetector(backend='onnxruntime') needs onnxruntime: "
                              "pip install onnxruntime (or use backend='opencv')") from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.num_threads
        options.inter_op_num_threads = 1
        try:
            session = ort.InferenceSession(str(path), sess_options=options,
                                           providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise DetectionError(f"onnxruntime cannot load {path}: {exc}") from exc
        model_input = session.get_inputs()[0]
        self._check_input_shape(model_input.shape, path)
        return lambda blob: session.run(None, {model_input.name: blob})[0]

    def _opencv_runner(self, path: Path) -> Callable[[np.ndarray], np.ndarray]:
        try:
            net = cv2.dnn.readNetFromONNX(str(path))
        except cv2.error as exc:
            raise DetectionError(f"OpenCV dnn cannot load {path}: {exc}") from exc

        def infer(blob: np.ndarray) -> np.ndarray:
            net.setInput(blob)
            try:
                return net.forward()
            except cv2.error as exc:
                raise DetectionError(
                    f"OpenCV dnn failed to run {path} on a {blob.shape} input: {exc}") from exc
        return infer

    def _check_input_shape(self, shape: Sequence, path: Path) -> None:
        fixed = [dim for dim in shape[2:] if isinstance(dim, int)]
        if fixed and any(dim != self.input_size for dim in fixed):
            raise ValueError(f"{path} expects {shape[2:]} inputs but input_size={self.input_size}")

    # ------------------------------------------------------------------ inference
    def raw_outputs(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """Network output for one H×W×3 uint8 BGR image.

        Returns:
            ``(raw, r)``: float32 [M, 5 + C] rows (see the module docstring) and the letterbox
            ratio.
        """
        blob, ratio = letterbox(image, self.input_size)
        raw = np.asarray(self._infer(blob), np.float32)
        raw = raw.reshape(-1, raw.shape[-1])
        expected = (len(self._cells), 5 + len(self.class_names))
        if raw.shape != expected:
            raise DetectionError(
                f"{self.model_path} gave outputs of shape {raw.shape}, expected {expected} for "
                f"input_size={self.input_size} and {len(self.class_names)} classes")
        return raw, ratio

    def detect(self, image: np.ndarray, frame_index: int = 0) -> Detections:
        """Objects in one H×W×3 uint8 BGR image; boxes in its pixels."""
        image = check_image(image, type(self).__name__)
        raw, ratio = self.raw_outputs(image)
        boxes, class_scores = decode_yolox_outputs(raw, self._cells, self._row_strides, ratio)
        boxes, scores, labels = select_detections(boxes, class_scores, self.conf_threshold,
                                                  self.nms_threshold, self.class_ids_)
        return Detections(boxes, scores, labels, frame_index=frame_index,
                          image_size=image.shape[:2], class_names=self.class_names)

    # ------------------------------------------------------------------ settings
    def get_params(self) -> dict:
        """Constructor arguments (JSON-serialisable)."""
        return {"model_path": str(self.model_path), "input_size": self.input_size,
                "conf_threshold": self.conf_threshold, "nms_threshold": self.nms_threshold,
                "classes": class_filter_param(self.classes),
                "backend": self.backend, "num_threads": self.num_threads,
                "class_names": None if self.class_names == COCO_CLASSES else list(self.class_names)}

    def __repr__(self) -> str:
        return (f"YoloxOnnxDetector(model_path={str(self.model_path)!r}, "
                f"input_size={self.input_size}, conf_threshold={self.conf_threshold}, "
                f"nms_threshold={self.nms_threshold}, classes={self.classes!r}, "
                f"backend={self.backend_!r})")
