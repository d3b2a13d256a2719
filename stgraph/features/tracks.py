"""Track-based motion features: a simple IoU tracker links boxes over frames, and each object gets
its velocity and acceleration along its track.

:class:`TrackFeatures` (stateful; ``reset()`` between videos) matches the boxes of each frame to
the tracks alive in the previous frame one to one, greedily by IoU (:func:`greedy_iou_match`),
and keeps each track's last ``history + 1`` box centres and heights. Columns (``h`` = the box
height in pixels, so speeds are in body heights per frame, perspective-free)::

    0  vx / h      mean centre velocity over the last ``history`` steps (0 for a new track)
    1  vy / h
    2  speed / h   |v|
    3  accel / h   |v(last step) - v(mean over the history)|: sudden starts, stops and turns
    4  age         frames the track has lived, capped at ``history``, divided by ``history``

Unlike :class:`~stgraph.features.geometry.GeometryFeatures`' one-step velocity, the mean over
several frames damps box jitter, and the acceleration column sees running starts and throws.
"""
from __future__ import annotations

from collections import deque

import numpy as np

from detectors.base import Detections
from stgraph.features.base import FeatureError, FeatureProducer, check_frame
from stgraph.region_metrics import box_iou

__all__ = ["TrackFeatures", "greedy_iou_match"]

COLUMNS = ("vx", "vy", "speed", "accel", "age")


def greedy_iou_match(boxes: np.ndarray, previous: np.ndarray, threshold: float) -> np.ndarray:
    """One-to-one matching by IoU, best pairs first: int64 [N], the row of ``previous`` matched
    to each box of ``boxes``, or -1 (no previous box with IoU >= ``threshold`` left).

    Args:
        boxes: float32 [N, 4] xyxy; previous: float32 [M, 4] xyxy.
    """
    n, m = len(boxes), len(previous)
    match = np.full(n, -1, np.int64)
    if n == 0 or m == 0:
        return match
    iou = box_iou(boxes, previous)                                    # [N, M]
    candidates = np.flatnonzero(iou.ravel() >= threshold)
    order = candidates[np.argsort(-iou.ravel()[candidates], kind="stable")]
    used_rows, used_cols = np.zeros(n, bool), np.zeros(m, bool)
    for flat in order:
        i, j = divmod(int(flat), m)
        if not used_rows[i] and not used_cols[j]:
            match[i] = j
            used_rows[i] = used_cols[j] = True
    return match


class TrackFeatures(FeatureProducer):
    """Velocity, acceleration and age of each object along its IoU track (module docstring).

    Args:
        iou_threshold: least IoU to continue a track from the previous frame.
        history: frames over which the velocity is averaged (and the age is capped).

    ``dim`` is 5. Only the boxes are used, so ``image`` may be None.

    Example:
        >>> import numpy as np
        >>> from detectors.base import Detections
        >>> producer = TrackFeatures()
        >>> a = Detections([[0, 0, 10, 20]], [1.0], [0])
        >>> b = Detections([[2, 0, 12, 20]], [1.0], [0], frame_index=1)
        >>> _ = producer.extract(None, a); producer.extract(None, b)[0, :3].tolist()
        [0.10000000149011612, 0.0, 0.10000000149011612]
    """

    dim = 5
    columns = COLUMNS

    def __init__(self, iou_threshold: float = 0.3, history: int = 5) -> None:
        self.iou_threshold = iou_threshold
        self.history = history
        self._boxes = np.zeros((0, 4), np.float32)
        self._tracks: list[deque] = []

    def reset(self) -> None:
        self._boxes = np.zeros((0, 4), np.float32)
        self._tracks = []

    def _check(self) -> None:
        if not 0 < float(self.iou_threshold) <= 1:
            raise FeatureError(f"TrackFeatures.iou_threshold must be in (0, 1], "
                               f"got {self.iou_threshold!r}")
        if isinstance(self.history, bool) or not isinstance(self.history, int) or self.history < 1:
            raise FeatureError(f"TrackFeatures.history must be an int >= 1, got {self.history!r}")

    def extract(self, image: np.ndarray | None, detections: Detections,
                previous: Detections | None = None) -> np.ndarray:
        """float32 [N, 5]; advances the tracks by one frame (``previous`` is unused: the producer
        keeps its own tracks)."""
        if image is not None or not isinstance(detections, Detections):
            check_frame(image, detections, "TrackFeatures")
        self._check()
        boxes = detections.boxes
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        heights = np.maximum(boxes[:, 3] - boxes[:, 1], 1.0)
        match = greedy_iou_match(boxes, self._boxes, float(self.iou_threshold))
        out = np.zeros((len(boxes), 5), np.float32)
        tracks: list[deque] = []
        for i, j in enumerate(match):
            track = (self._tracks[j] if j >= 0 else deque(maxlen=self.history + 1))
            track.append(centres[i].astype(np.float64))
            tracks.append(track)
            points = np.asarray(track)                       # [L, 2], L <= history + 1
            if len(points) >= 2:
                steps = np.diff(points, axis=0)              # [L - 1, 2]
                mean_v = steps.mean(axis=0) / heights[i]
                last_v = steps[-1] / heights[i]
                out[i, :2] = mean_v
                out[i, 2] = np.hypot(*mean_v)
                out[i, 3] = np.hypot(*(last_v - mean_v))
            out[i, 4] = min(len(points) - 1, self.history) / self.history
        self._boxes, self._tracks = boxes.copy(), tracks
        return out
