"""Per-box optical-flow features: how fast each object moves, and in which direction (AI-VAD's
velocity features).

:class:`FlowFeatures` computes dense flow once per frame with the shared
:class:`~stgraph.features.flow.OpticalFlow` (DIS "fast" by default, from the previous frame to
this one) and pools it inside every box. Speeds are divided by the box height, so a walker far from
the camera and one close to it move alike (perspective-free "body heights per frame").

Columns (``B`` = ``bins`` orientations, ``S`` = ``len(speed_edges)``)::

    0            mean speed        mean |flow| in the box / box height (flow pixels)
    1, 2         mean dx, mean dy  mean flow vector / box height
    3            moving speed      mean |flow| / box height over the box's pixels with
                                   |flow| / height >= speed_edges[0] (0 when none)
    4 .. 4+B-1   orientation hist  |flow|-weighted histogram of flow angle, / (box area x height):
                                   the B columns sum to column 0 (AI-VAD's velocity histogram)
    4+B .. end   speed hist        fraction of the box's pixels with |flow|/h in
                                   [edge_i, edge_{i+1}) (the last bin is open); the pixels below
                                   edge 0 are left out

``dim = 4 + B + S``. Box sums use integral images (as
:func:`stgraph.models.frame_difference.box_means`), so the pooling costs ``O(H W (B + S) + N)`` per frame, independent of the number of boxes.

:func:`box_flow_features` pools a given flow field: the benchmarks feed it the cached per-video flow
of :func:`~stgraph.features.flow.video_flow`. The producer rounds its flow to float16 as the cache
stores it, so live features equal features from the cache.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from detectors.base import Detections
from stgraph.features.base import FeatureError, FeatureProducer, check_frame
from stgraph.features.flow import OpticalFlow

__all__ = ["FlowFeatures", "box_flow_features", "flow_feature_columns"]

#: Default speed-histogram edges, in box heights per frame.
SPEED_EDGES = (0.02, 0.05, 0.1, 0.2)


def flow_feature_columns(bins: int = 8, speed_edges: Sequence[float] = SPEED_EDGES) -> tuple[str, ...]:
    """Names of :class:`FlowFeatures`' columns, in order."""
    return (("speed", "dx", "dy", "moving_speed") + tuple(f"orient_{k}" for k in range(bins))
            + tuple(f"speed_ge_{e:g}" for e in speed_edges))


def _box_sums(maps: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sums [N, C] of maps [H, W, C] inside boxes [N, 4] (pixels of the maps), and box areas [N].

    Boxes are clipped to the map and are at least one pixel wide and tall (as
    :func:`stgraph.models.frame_difference.box_means`).
    """
    h, w, c = maps.shape
    integral = cv2.integral(np.ascontiguousarray(maps, np.float64)).reshape(h + 1, w + 1, c)
    x1 = np.clip(np.floor(boxes[:, 0]), 0, w - 1).astype(np.int64)
    y1 = np.clip(np.floor(boxes[:, 1]), 0, h - 1).astype(np.int64)
    x2 = np.clip(np.ceil(boxes[:, 2]), x1 + 1, w).astype(np.int64)
    y2 = np.clip(np.ceil(boxes[:, 3]), y1 + 1, h).astype(np.int64)
    sums = integral[y2, x2] - integral[y1, x2] - integral[y2, x1] + integral[y1, x1]
    return sums, ((x2 - x1) * (y2 - y1)).astype(np.float64)


def box_flow_features(flow: np.ndarray, boxes: np.ndarray, image_size: tuple[int, int],
                      bins: int = 8, speed_edges: Sequence[float] = SPEED_EDGES) -> np.ndarray:
    """Flow features of boxes (module docstring): float32 [N, 4 + bins + len(speed_edges)].

    Args:
        flow: float [h, w, 2] (dx, dy) in pixels of the flow's own resolution.
        boxes: float [N, 4] xyxy in pixels of the image (size ``image_size`` = (H, W)); they are
            scaled to the flow's resolution.
        image_size: (H, W) of the image the boxes live in.
        bins: orientation bins over [0, 2 pi).
        speed_edges: increasing speed-histogram edges (box heights per frame), at least one.
    """
    edges = np.asarray(speed_edges, np.float64)
    if edges.ndim != 1 or edges.size < 1 or np.any(np.diff(edges) <= 0) or edges[0] <= 0:
        raise FeatureError(f"speed_edges must be positive and increasing, got {list(speed_edges)}")
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise FeatureError(f"bins must be an int >= 1, got {bins!r}")
    flow = np.asarray(flow, np.float32)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise FeatureError(f"flow must be [h, w, 2], got {flow.shape}")
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    n, dim = len(boxes), 4 + int(bins) + edges.size
    if n == 0:
        return np.zeros((0, dim), np.float32)
    fh, fw = flow.shape[:2]
    sx, sy = fw / float(image_size[1]), fh / float(image_size[0])
    scaled = boxes * np.array([sx, sy, sx, sy], np.float32)
    heights = np.maximum(scaled[:, 3] - scaled[:, 1], 1.0).astype(np.float64)  # flow pixels
    magnitude = np.hypot(flow[..., 0], flow[..., 1])
    # bin k is centred on the angle 2 pi k / bins (bin 0: rightwards, image y grows downwards)
    angle = np.mod(np.arctan2(flow[..., 1], flow[..., 0]) + np.pi / bins, 2 * np.pi)
    orient = np.minimum((angle * (bins / (2 * np.pi))).astype(np.int64), bins - 1)
    # maps: |flow|, dx, dy, then |flow| per orientation bin
    maps = np.zeros((fh, fw, 3 + bins), np.float32)
    maps[..., 0], maps[..., 1], maps[..., 2] = magnitude, flow[..., 0], flow[..., 1]
    np.put_along_axis(maps[..., 3:], orient[..., None], magnitude[..., None], axis=2)
    sums, area = _box_sums(maps, scaled)
    per_height = sums / (area * heights)[:, None]
    # speed histogram: the thresholds (edge x box height) differ per box, so count in each crop
    speed_hist = np.zeros((n, edges.size), np.float64)
    moving_speed = np.zeros(n, np.float64)
    x1 = np.clip(np.floor(scaled[:, 0]), 0, fw - 1).astype(np.int64)
    y1 = np.clip(np.floor(scaled[:, 1]), 0, fh - 1).astype(np.int64)
    x2 = np.clip(np.ceil(scaled[:, 2]), x1 + 1, fw).astype(np.int64)
    y2 = np.clip(np.ceil(scaled[:, 3]), y1 + 1, fh).astype(np.int64)
    for i in range(n):
        relative = magnitude[y1[i]:y2[i], x1[i]:x2[i]].ravel() / heights[i]
        counts = np.searchsorted(edges, relative, side="right")  # 0: below edge 0
        hist = np.bincount(counts, minlength=edges.size + 1)[1:]
        speed_hist[i] = hist / relative.size
        moving = relative[counts > 0]
        moving_speed[i] = moving.mean() if moving.size else 0.0
    out = np.concatenate([per_height[:, :3], moving_speed[:, None], per_height[:, 3:],
                          speed_hist], axis=1)
    return out.astype(np.float32)


class FlowFeatures(FeatureProducer):
    """Optical-flow speed and direction inside each box (see the module docstring for columns).

    Args:
        bins: orientation-histogram bins.
        speed_edges: speed-histogram edges in box heights per frame.
        method, preset, size: the :class:`~stgraph.features.flow.OpticalFlow` settings (DIS
            "fast" at native size by default).

    Stateful: it keeps the previous frame's grey image (``reset()`` between videos); the first
    frame of a video has zero flow. Boxes may come from any detector (``image_size`` is taken from
    the image).

    Example:
        >>> import numpy as np
        >>> from detectors.base import Detections
        >>> producer = FlowFeatures()
        >>> d = Detections([[0, 0, 10, 20]], [1.0], [0], image_size=(32, 32))
        >>> producer.extract(np.zeros((32, 32, 3), np.uint8), d).shape
        (1, 16)
    """

    def __init__(self, bins: int = 8, speed_edges: Sequence[float] = SPEED_EDGES,
                 method: str = "dis", preset: str = "fast",
                 size: Sequence[int] | None = None) -> None:
        self.bins = bins
        self.speed_edges = speed_edges
        self.method = method
        self.preset = preset
        self.size = size
        self._flow: OpticalFlow | None = None
        self._previous: np.ndarray | None = None

    @property
    def dim(self) -> int:  # type: ignore[override]
        return 4 + int(self.bins) + len(tuple(self.speed_edges))

    @property
    def columns(self) -> tuple[str, ...]:
        return flow_feature_columns(self.bins, tuple(self.speed_edges))

    def optical_flow(self) -> OpticalFlow:
        """The flow settings as an :class:`OpticalFlow` (for :func:`video_flow` caches)."""
        size = None if self.size is None else tuple(int(v) for v in self.size)
        return OpticalFlow(self.method, self.preset, size)

    def get_params(self) -> dict:
        params = super().get_params()
        params["speed_edges"] = [float(e) for e in self.speed_edges]
        params["size"] = None if self.size is None else [int(v) for v in self.size]
        return params

    def reset(self) -> None:
        self._previous = None

    def flow_to(self, image: np.ndarray) -> np.ndarray:
        """Flow [h, w, 2] from the previous frame to ``image`` (zeros for the first frame),
        rounded to float16 as :func:`~stgraph.features.flow.video_flow` caches it; remembers
        ``image`` as the next previous frame."""
        if self._flow is None:
            self._flow = self.optical_flow()
        gray = self._flow.gray(image)
        if self._previous is None or self._previous.shape != gray.shape:
            field = np.zeros((*gray.shape, 2), np.float32)
        else:
            field = self._flow.compute_gray(self._previous, gray)
        self._previous = gray
        return field.astype(np.float16).astype(np.float32)

    def extract(self, image: np.ndarray, detections: Detections,
                previous: Detections | None = None) -> np.ndarray:
        """float32 [N, dim]; advances the flow state by one frame (also for frames without boxes)."""
        image = check_frame(image, detections, "FlowFeatures")
        field = self.flow_to(image)
        return box_flow_features(field, detections.boxes, image.shape[:2], int(self.bins),
                                 tuple(self.speed_edges))
