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

``dim = 4 + B + S``. Each box pools its own crop of the flow (boxes are clipped to the frame
and are at least one flow pixel wide and tall), so the cost is the boxes' total area.

:func:`box_flow_features` pools a given flow field: the benchmarks feed it the cached per-video flow
of :func:`~stgraph.features.flow.video_flow`. The producer rounds its flow to float16 as the cache
stores it, so live features equal features from the cache.
"""
from __future__ import annotations

from typing import Sequence

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
    x1 = np.clip(np.floor(scaled[:, 0]), 0, fw - 1).astype(np.int64)
    y1 = np.clip(np.floor(scaled[:, 1]), 0, fh - 1).astype(np.int64)
    x2 = np.clip(np.ceil(scaled[:, 2]), x1 + 1, fw).astype(np.int64)
    y2 = np.clip(np.ceil(scaled[:, 3]), y1 + 1, fh).astype(np.int64)
    heights = np.maximum(scaled[:, 3] - scaled[:, 1], 1.0).astype(np.float64)  # flow pixels
    out = np.zeros((n, dim), np.float64)
    for i in range(n):
        crop = flow[y1[i]:y2[i], x1[i]:x2[i]].reshape(-1, 2).astype(np.float64) / heights[i]
        speed = np.hypot(crop[:, 0], crop[:, 1])               # box heights per frame
        # bin k is centred on the angle 2 pi k / bins (bin 0: rightwards; image y points down)
        angle = np.arctan2(crop[:, 1], crop[:, 0]) + np.pi / bins
        orient = (np.mod(angle, 2 * np.pi) * (bins / (2 * np.pi))).astype(np.int64) % bins
        counts = np.searchsorted(edges, speed, side="right")    # 0: below edges[0]
        moving = counts > 0
        out[i, 0] = speed.mean()
        out[i, 1:3] = crop.mean(axis=0)
        out[i, 3] = speed[moving].mean() if moving.any() else 0.0
        out[i, 4:4 + bins] = np.bincount(orient, weights=speed, minlength=bins) / speed.size
        out[i, 4 + bins:] = np.bincount(counts, minlength=edges.size + 1)[1:] / speed.size
    return out.astype(np.float32)


class FlowFeatures(FeatureProducer):
    """Optical-flow speed and direction inside each box (see the module docstring for columns).

    Args:
        bins: orientation-histogram bins.
        speed_edges: speed-histogram edges in box heights per frame.
        method, preset, size: the :class:`~stgraph.features.flow.OpticalFlow` settings (DIS
            "fast" at native size by default).
        keep: names of the columns to output, in this order (None: all; see
            :func:`flow_feature_columns`). ``keep=["speed"]`` is the CLI's ``speed`` feature group.

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
                 size: Sequence[int] | None = None, keep: Sequence[str] | None = None) -> None:
        self.bins = bins
        self.speed_edges = speed_edges
        self.method = method
        self.preset = preset
        self.size = size
        self.keep = keep
        self._flow: OpticalFlow | None = None
        self._previous: np.ndarray | None = None

    def _kept(self) -> np.ndarray:
        """Indices of the output columns among all columns."""
        names = flow_feature_columns(int(self.bins), tuple(self.speed_edges))
        if self.keep is None:
            return np.arange(len(names))
        unknown = [k for k in self.keep if k not in names]
        if unknown or not len(self.keep) or isinstance(self.keep, str):
            raise FeatureError(f"FlowFeatures.keep must name columns of {list(names)}, "
                               f"got {self.keep!r}")
        return np.array([names.index(k) for k in self.keep], np.int64)

    @property
    def dim(self) -> int:  # type: ignore[override]
        return len(self._kept())

    @property
    def columns(self) -> tuple[str, ...]:
        names = flow_feature_columns(int(self.bins), tuple(self.speed_edges))
        return tuple(names[i] for i in self._kept())

    def optical_flow(self) -> OpticalFlow:
        """The flow settings as an :class:`OpticalFlow` (for :func:`video_flow` caches)."""
        size = None if self.size is None else tuple(int(v) for v in self.size)
        return OpticalFlow(self.method, self.preset, size)

    def get_params(self) -> dict:
        params = super().get_params()
        params["speed_edges"] = [float(e) for e in self.speed_edges]
        params["size"] = None if self.size is None else [int(v) for v in self.size]
        params["keep"] = None if self.keep is None else [str(k) for k in self.keep]
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
        kept = self._kept()
        features = box_flow_features(field, detections.boxes, image.shape[:2], int(self.bins),
                                     tuple(self.speed_edges))
        return features if self.keep is None else features[:, kept]
