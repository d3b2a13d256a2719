"""``CompositeDetector``: the boxes of several detectors merged, later ones only where the earlier
ones saw nothing.

A COCO detector misses objects it has no class for or sees poorly (on UCSD Ped2, YOLOX-Nano boxes
covered the anomaly in 87.3% of the anomalous test frames); the motion region detector boxes
anything that moves. ``CompositeDetector([yolox, MotionRegionDetector()])`` keeps every YOLOX box
and adds the moving regions that no YOLOX box already explains::

    det = CompositeDetector([YoloxOnnxDetector("yolox_nano.onnx"), MotionRegionDetector()])
    d = det.detect(image, frame_index=7)    # boxes of both, class names of both

A box of detector ``k > 0`` is dropped when it overlaps an already kept box by at least
``overlap`` of the *smaller* of the two areas (a motion region around a detected walker, or a
walker's box inside a larger motion region). ``class_names`` is the union of the detectors'
names, in detector order; labels index it.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from detectors.base import BaseDetector, Detections, check_fraction, check_image

__all__ = ["CompositeDetector", "overlap_of_smaller"]


def overlap_of_smaller(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection area / smaller area of every pair: float64 [N, M] for boxes a [N, 4] and
    b [M, 4] (xyxy); pairs with an empty box get 0."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    wh = np.clip(np.minimum(a[:, None, 2:], b[None, :, 2:])
                 - np.maximum(a[:, None, :2], b[None, :, :2]), 0, None)
    inter = wh[..., 0] * wh[..., 1]
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    smaller = np.minimum(area_a[:, None], area_b[None, :])
    return np.divide(inter, smaller, out=np.zeros_like(inter), where=smaller > 0)


class CompositeDetector(BaseDetector):
    """Merge several detectors: the first one's boxes, then each next one's new boxes.

    Args:
        detectors: detectors in priority order (at least one), e.g. ``[YOLOX, motion regions]``.
        overlap: a later box overlapping a kept box by at least this fraction of the smaller
            area is a duplicate and is dropped.

    ``warmup_frames`` is the largest of the detectors'. Saved and loaded through the registry as
    ``CompositeDetector`` with its detectors nested.
    """

    def __init__(self, detectors: Sequence[Any], overlap: float = 0.5) -> None:
        self.detectors = list(detectors)
        self.overlap = overlap
        if not self.detectors:
            raise ValueError("CompositeDetector needs at least one detector")
        bad = [type(d).__name__ for d in self.detectors if not callable(getattr(d, "detect", None))]
        if bad:
            raise ValueError(f"CompositeDetector takes detectors with detect(), got {bad}")
        check_fraction(overlap, "overlap", "CompositeDetector")
        names: list[str] = []
        for d in self.detectors:
            names += [n for n in getattr(d, "class_names", ()) if n not in names]
        self.class_names = tuple(names)

    @property
    def warmup_frames(self) -> int:
        return max(int(getattr(d, "warmup_frames", 0) or 0) for d in self.detectors)

    def reset(self) -> None:
        for d in self.detectors:
            if hasattr(d, "reset"):
                d.reset()

    def detect(self, image: np.ndarray, frame_index: int = 0) -> Detections:
        """Boxes of every detector on ``image`` (H×W×3 uint8 BGR), duplicates removed."""
        image = check_image(image, "CompositeDetector")
        return self.merge([d.detect(image, frame_index=frame_index) for d in self.detectors],
                          frame_index, image.shape[:2])

    def merge(self, parts: Sequence[Detections], frame_index: int,
              image_size: tuple[int, int]) -> Detections:
        """Merge one frame's detections of each detector (in detector order) as :meth:`detect`
        does; useful for detections read from caches."""
        column = {name: k for k, name in enumerate(self.class_names)}
        boxes, scores, labels = [], [], []
        kept = np.zeros((0, 4), np.float32)
        for k, part in enumerate(parts):
            if len(part) == 0:
                continue
            keep = np.ones(len(part), bool)
            if k > 0 and len(kept):
                keep = overlap_of_smaller(part.boxes, kept).max(axis=1) < float(self.overlap)
            names = np.asarray(part.names, dtype=object)[keep]
            missing = sorted({str(n) for n in names} - set(column))
            if missing:
                raise ValueError(f"CompositeDetector: detector {k} gave classes {missing} that "
                                 "its class_names do not list")
            boxes.append(part.boxes[keep])
            scores.append(part.scores[keep])
            labels.append(np.array([column[n] for n in names], np.int64))
            kept = np.concatenate([kept, part.boxes[keep]])
        if not boxes:
            return Detections.empty(frame_index, image_size, self.class_names)
        return Detections(np.concatenate(boxes), np.concatenate(scores), np.concatenate(labels),
                          frame_index=frame_index, image_size=image_size,
                          class_names=self.class_names)

    def get_params(self) -> dict:
        from stgraph.registry import component_spec

        return {"detectors": [component_spec(d, "detector") for d in self.detectors],
                "overlap": self.overlap}

    def __repr__(self) -> str:
        return f"CompositeDetector([{', '.join(repr(d) for d in self.detectors)}], " \
               f"overlap={self.overlap})"
