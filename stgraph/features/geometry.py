"""Box geometry node features: where an object is, how big, what shape, and how it moves.

Columns of :class:`GeometryFeatures` (``W``, ``H`` = image width and height in pixels; a box is
``x1, y1, x2, y2`` with centre ``(cx, cy)``, width ``w`` and height ``h``)::

    0  cx / W              centre x, in [0, 1]
    1  cy / H              centre y, in [0, 1]
    2  w / W               width
    3  h / H               height
    4  log(h / w)          aspect (w, h clipped to >= 1 px); 0 = square, > 0 = tall (standing)
    5  dx / W              velocity x: centre shift since the matched box of the previous frame
    6  dy / H              velocity y (image y grows downwards)
    7  hypot(5, 6)         speed, in the same normalised units per frame

Columns 5-7 exist only with ``velocity=True``; they are 0 for an object with no match in the
previous frame (or when there is no previous frame).
"""
from __future__ import annotations

import numpy as np
import torch
from torchvision.ops import box_iou

from detectors.base import Detections
from stgraph.features.base import FeatureError, FeatureProducer, check_frame

__all__ = ["GeometryFeatures", "match_previous"]

COLUMNS = ("cx", "cy", "w", "h", "log_aspect", "vx", "vy", "speed")


def match_previous(boxes: np.ndarray, previous_boxes: np.ndarray, gate: float,
                   track_ids: np.ndarray | None = None,
                   previous_track_ids: np.ndarray | None = None) -> np.ndarray:
    """Row in ``previous_boxes`` matched to each box, or -1: int64 [N].

    Args:
        boxes: float32 [N, 4] xyxy pixels (current frame).
        previous_boxes: float32 [M, 4] xyxy pixels (previous frame).
        gate: a box that overlaps no previous box takes the previous box with the nearest centre
            when that centre is closer than ``gate`` times the box's diagonal.
        track_ids, previous_track_ids: int64 [N] / [M]; when both are given, boxes are matched by
            equal non-negative track id instead of by geometry.

    The best-IoU previous box wins; several current boxes may match the same previous box.
    """
    n, m = len(boxes), len(previous_boxes)
    if n == 0 or m == 0:
        return np.full(n, -1, np.int64)
    if track_ids is not None and previous_track_ids is not None:
        same = (track_ids[:, None] == previous_track_ids[None, :]) & (track_ids[:, None] >= 0)
        return np.where(same.any(axis=1), same.argmax(axis=1), -1).astype(np.int64)
    iou = box_iou(torch.from_numpy(boxes), torch.from_numpy(previous_boxes)).numpy()  # [N, M]
    best_iou = iou.argmax(axis=1)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    prev_centres = (previous_boxes[:, :2] + previous_boxes[:, 2:]) / 2
    dist = np.linalg.norm(centres[:, None, :] - prev_centres[None, :, :], axis=2)  # [N, M] pixels
    nearest = dist.argmin(axis=1)
    diagonal = np.linalg.norm(boxes[:, 2:] - boxes[:, :2], axis=1)
    within_gate = dist[np.arange(n), nearest] < gate * diagonal
    overlaps = iou.max(axis=1) > 0
    return np.where(overlaps, best_iou, np.where(within_gate, nearest, -1)).astype(np.int64)


class GeometryFeatures(FeatureProducer):
    """Normalised centre, size, aspect and (optionally) velocity of each box (see module docstring).

    Args:
        velocity: add the velocity and speed columns (5-7), measured against the previous frame's
            ``Detections`` (matched by track id when both frames have ``track_ids``, else by best
            IoU, else by nearest centre within ``gate`` box diagonals).
        gate: matching gate for boxes that overlap nothing in the previous frame, in units of the
            box's own diagonal.

    ``dim`` is 8 with velocity, 5 without. Needs ``detections.image_size``.

    Example:
        >>> from detectors.base import Detections
        >>> import numpy as np
        >>> d = Detections([[0, 0, 10, 20]], [1.0], [0], image_size=(100, 200))
        >>> f = GeometryFeatures().extract(np.zeros((100, 200, 3), np.uint8), d)
        >>> [round(float(v), 3) for v in f[0]]
        [0.025, 0.1, 0.05, 0.2, 0.693, 0.0, 0.0, 0.0]
    """

    def __init__(self, velocity: bool = True, gate: float = 1.0):
        self.velocity = velocity
        self.gate = gate

    @property
    def dim(self) -> int:  # type: ignore[override]
        return 8 if self.velocity else 5

    @property
    def columns(self) -> tuple[str, ...]:
        """Names of the output columns, in order."""
        return COLUMNS[: self.dim]

    def extract(self, image: np.ndarray | None, detections: Detections,
                previous: Detections | None = None) -> np.ndarray:
        """float32 [N, dim]: the columns listed in the module docstring.

        Only the boxes and ``detections.image_size`` are used, so ``image`` may be ``None`` (e.g.
        for detections read from a file, without the video).
        """
        if image is not None or not isinstance(detections, Detections):
            check_frame(image, detections, "GeometryFeatures")
        if detections.image_size is None:
            raise FeatureError(
                f"GeometryFeatures needs detections.image_size to normalise boxes "
                f"(frame {detections.frame_index} has none)"
            )
        if self.gate < 0:
            raise FeatureError(f"GeometryFeatures.gate must be >= 0, got {self.gate}")
        h_img, w_img = detections.image_size
        scale = np.array([w_img, h_img], np.float32)
        boxes = detections.boxes
        centres = detections.centers
        sizes = boxes[:, 2:] - boxes[:, :2]
        clipped = np.maximum(sizes, 1.0)
        log_aspect = np.log(clipped[:, 1] / clipped[:, 0])
        columns = [centres / scale, sizes / scale, log_aspect[:, None]]
        if self.velocity:
            velocity = self._velocity(detections, previous, centres) / scale
            columns += [velocity, np.hypot(velocity[:, 0], velocity[:, 1])[:, None]]
        return np.concatenate(columns, axis=1).astype(np.float32)

    def _velocity(self, detections: Detections, previous: Detections | None,
                  centres: np.ndarray) -> np.ndarray:
        """[N, 2] centre shift in pixels since the matched previous box (0 when unmatched)."""
        velocity = np.zeros_like(centres)
        if previous is None or len(previous) == 0 or len(detections) == 0:
            return velocity
        match = match_previous(detections.boxes, previous.boxes, self.gate,
                               detections.track_ids, previous.track_ids)
        matched = match >= 0
        velocity[matched] = centres[matched] - previous.centers[match[matched]]
        return velocity
