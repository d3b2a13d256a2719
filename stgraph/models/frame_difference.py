"""``FrameDifference``: the naive frame-level baseline as an estimator (``consumes = "frames"``).

The score of frame t is the mean absolute grey-level difference to frame t-1 (motion energy, on
the 0..255 scale); its pixel map is that difference, block-averaged by ``map_stride``; an object
row (when a detector's boxes are given) scores the mean difference inside its box. Frame 0 has no
previous frame, so it gets no row (the table still knows it; ``frame_scores`` gives it the
video's lowest score). Nothing is learned but the training-score quantiles, which set the
default alarm threshold.

It is the frame-level path in its simplest form, and the naive baseline every method is compared
with under the same post-processing::

    model = FrameDifference().fit(["train/01.avi"])
    table = model.score("test/01.avi", video="01")      # frame rows + pixel maps
    for result in Pipeline(model=model).stream("test/01.avi"):
        print(result.frame_index, result.frame_score)   # equal to the table's frame scores
"""
from __future__ import annotations

from typing import Any, ClassVar, Mapping, Sequence

import cv2
import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from detectors.base import Detections
from stgraph.io.frames import as_frame_source
from stgraph.models.base import BaseEstimator, ScoreQuantiles, check_int, normal_training_videos
from stgraph.registry import register
from stgraph.scores import ScoreTable
from stgraph.stream import FrameOutput, StepwiseFrameScoring

__all__ = ["FrameDifference"]


def _gray(image: np.ndarray) -> np.ndarray:
    """float32 [H, W] grey levels 0..255 of a BGR uint8 frame."""
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)


def box_means(values: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Mean of ``values`` [H, W] inside each box [N, 4] (xyxy pixels, clipped): float64 [N].

    Uses an integral image, so the cost is O(H W + N). A box of zero area inside the image gets
    the value of its nearest pixel.
    """
    h, w = values.shape
    integral = cv2.integral(values.astype(np.float64))
    x1 = np.clip(np.floor(boxes[:, 0]), 0, w - 1).astype(np.int64)
    y1 = np.clip(np.floor(boxes[:, 1]), 0, h - 1).astype(np.int64)
    x2 = np.clip(np.ceil(boxes[:, 2]), x1 + 1, w).astype(np.int64)
    y2 = np.clip(np.ceil(boxes[:, 3]), y1 + 1, h).astype(np.int64)
    sums = integral[y2, x2] - integral[y1, x2] - integral[y2, x1] + integral[y1, x1]
    return sums / ((x2 - x1) * (y2 - y1))


@register("model", "frame_difference")
class FrameDifference(StepwiseFrameScoring, BaseEstimator):
    """Mean absolute frame difference as an anomaly score (no training, a naive baseline).

    Args:
        map_stride: the pixel map is the absolute difference averaged over blocks of
            ``map_stride`` x ``map_stride`` pixels ([H / s, W / s]); pixel AUC resizes it to the
            mask size.
        progress: show a progress bar over frames.

    Learned attributes: ``train_scores_`` (quantiles of the training frames' scores) and
    ``n_train_frames_``.
    """

    consumes: ClassVar[str] = "frames"
    supervision: ClassVar[str] = "none"
    streams_exactly: ClassVar[bool] = True
    fitted_attributes = ("train_scores_", "n_train_frames_")
    format_version = 1

    def __init__(self, map_stride: int = 4, progress: bool = True) -> None:
        self.map_stride = map_stride
        self.progress = progress

    @classmethod
    def contract_params(cls) -> dict[str, Any]:
        return {"map_stride": 2, "progress": False}

    # ------------------------------------------------------------------ one frame
    def score_next_frame(self, state: np.ndarray | None, image: np.ndarray,
                         detections: Detections | None = None
                         ) -> tuple[np.ndarray, FrameOutput | None]:
        """One step of the stream: ``(new state, output)``; output None for a video's first frame.

        Args:
            state: the previous frame's grey levels [H, W] (None at the start of a video).
            image: the BGR frame [H, W, 3] uint8.
            detections: the frame's boxes (object rows score the mean difference inside each).
        """
        gray = _gray(image)
        if state is None:
            return gray, None
        if state.shape != gray.shape:
            raise ValueError(f"frame size changed within a video: {state.shape} -> {gray.shape}")
        diff = np.abs(gray - state)
        stride = int(self.map_stride)
        h, w = diff.shape
        pixel_map = cv2.resize(diff, (max(1, w // stride), max(1, h // stride)),
                               interpolation=cv2.INTER_AREA)
        boxes = detections.boxes if detections is not None and len(detections) else None
        objects = box_means(diff, boxes) if boxes is not None else np.zeros(0)
        return gray, FrameOutput(float(diff.mean()), objects, pixel_map.astype(np.float32))

    def _frame_outputs(self, video: Any, detections: Sequence[Detections] | None = None
                       ) -> tuple[list[int], list[FrameOutput | None], tuple[int, int], Any]:
        source = as_frame_source(video)
        by_frame = {d.frame_index: d for d in detections} if detections is not None else {}
        state, indices, outputs, hw = None, [], [], None
        for frame in tqdm(source, desc="frame difference", unit="frame",
                          disable=not self.progress, leave=False):
            state, output = self.score_next_frame(state, frame.image, by_frame.get(frame.index))
            indices.append(frame.index)
            outputs.append(output)
            hw = frame.image.shape[:2]
        if not indices:
            raise ValueError(f"video {getattr(source, 'name', 'video')!r} has no frames")
        return indices, outputs, hw, source

    # ------------------------------------------------------------------ estimator
    def fit(self, X: Sequence[Any], y: Any = None) -> "FrameDifference":
        """Record the training frames' scores (quantiles, for the alarm threshold); returns self.

        Args:
            X: normal training videos (paths, frame folders, ``FrameSource`` s or uint8 arrays
                [T, H, W, 3]).
            y: None, or all-zero labels (normal videos only).
        """
        check_int("map_stride", self.map_stride, 1)
        videos = normal_training_videos(X, y, "FrameDifference")
        scores = [o.frame_score for video in videos for o in self._frame_outputs(video)[1]
                  if o is not None]
        if not scores:
            raise ValueError("the training videos need at least 2 frames each to score a "
                             "frame difference")
        self.train_scores_ = ScoreQuantiles.from_scores(np.asarray(scores))
        self.n_train_frames_ = len(scores)
        return self

    def _check_score(self) -> None:
        check_int("map_stride", self.map_stride, 1)

    # ------------------------------------------------------------------ persistence
    def _fitted_config(self) -> dict[str, Any]:
        return {"n_train_frames": self.n_train_frames_,
                "train_score_count": self.train_scores_.count}

    def _fitted_state(self) -> dict[str, Tensor]:
        return {"train_score_quantiles": torch.from_numpy(self.train_scores_.values)}

    def _restore(self, fitted_config: Mapping[str, Any], state: Mapping[str, Tensor]) -> None:
        self.train_scores_ = ScoreQuantiles(state["train_score_quantiles"].numpy(),
                                            int(fitted_config["train_score_count"]))
        self.n_train_frames_ = int(fitted_config["n_train_frames"])
