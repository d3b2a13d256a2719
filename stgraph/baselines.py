"""Naive frame-score baselines, so a graph model's value can be seen next to them.

* :func:`frame_difference_scores` — mean absolute grey-level difference to the previous frame
  (motion energy; no training, no detector).
* :func:`class_confidence_scores` — the highest detector confidence of any object whose class is
  not a "normal" class (e.g. anything but ``person`` on a pedestrian walkway; no training).

Both return one float64 score per frame, in the order the frames were given.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import cv2
import numpy as np

from detectors.base import Detections

__all__ = ["frame_difference_scores", "class_confidence_scores"]


def frame_difference_scores(frames: Iterable) -> np.ndarray:
    """Mean |gray_t − gray_{t−1}| per frame (0..255 scale); the first frame copies the second's.

    Args:
        frames: ``Frame`` objects (or H×W×3 uint8 BGR images) in time order.

    Returns:
        float64 [T].
    """
    scores: list[float] = []
    previous = None
    for frame in frames:
        image = getattr(frame, "image", frame)
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)
        scores.append(float(np.abs(gray - previous).mean()) if previous is not None else np.nan)
        previous = gray
    out = np.asarray(scores, np.float64)
    if out.size == 0:
        raise ValueError("frame_difference_scores got no frames")
    out[0] = out[1] if out.size > 1 else 0.0
    return out


def class_confidence_scores(detections: Sequence[Detections], normal_classes: Sequence[str] = ("person",)) -> np.ndarray:
    """Per frame, the highest confidence among objects whose class is not in ``normal_classes``
    (0 when a frame has none). Run the detector with a low confidence threshold and no class filter.

    Returns:
        float64 [T], one per ``Detections``.
    """
    out = np.zeros(len(detections), np.float64)
    for t, dets in enumerate(detections):
        if len(dets):
            mask = ~np.isin(np.asarray(dets.names), list(normal_classes))
            if mask.any():
                out[t] = float(dets.scores[mask].max())
    return out
