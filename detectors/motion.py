"""Moving-region detector: STRL's Algorithm 1 ("fast extraction of moving object regions").

No weights, no training: boxes come from pixel differences over the last ``clip_length`` frames.
With grayscale frames ``I_1 .. I_k`` as float in [0, 1] (resized to ``work_size``):

1. acceleration map ``A = Σ_i |(I_{i+2} − I_{i+1}) − (I_{i+1} − I_i)|`` (second-order differences,
   which stay small for the smooth, uniform pixel motion of a moving camera);
2. ``A`` is blurred (Gaussian 5×5) and its edges taken with a 5×5 Sobel operator; the magnitude
   ``E`` is normalised so that a linear ramp of slope ``s`` gives ``E = s`` (accumulated intensity
   per pixel);
3. motion mask ``B = Σ_i |I_{i+1} − I_i| > motion_threshold``: the threshold is in units of the
   accumulated absolute difference of [0, 1] intensities over the clip's ``k − 1`` steps, so the
   default 0.1 means "10 % of the intensity range changed in total over the clip";
4. edge mask ``E > edge_threshold`` (this binarisation is not in the paper, which leaves the
   float map ``E * B``; thresholding drops the faint Sobel response that surrounds every moving
   pixel and would merge neighbouring objects), combined with ``B``;
5. morphology: a closing with a ``closing_size`` square (joins the fragmented edges of one
   object; 0 disables it and gives the paper's exact step), then the paper's erosion and dilation
   with an ``opening_size`` square of ones (8×8), which removes specks and thin noise;
6. 8-connected components; those wider and taller than ``min_size`` pixels are kept, and each box is
   the component's bounding box enlarged ``box_scale`` times (1.5) about its centre, clipped.

Sizes in steps 5-6 are in pixels of the working image (the paper works at 256×256). Boxes are mapped
back to the original frame. The score of a box is its **motion energy**: the mean, over the pixels
of its component, of the per-frame absolute intensity change ``B / (k − 1)``, which lies in [0, 1].
Every box has label 0, class name ``"moving"``.

The detector is stateful: it keeps a ring buffer of the last ``clip_length`` frames, so it is used
frame by frame; the boxes returned for frame ``t`` describe the motion in frames ``t − k + 1 .. t``.
Frames before the buffer is full give empty detections. Call :meth:`reset` between videos.
"""
from __future__ import annotations

from collections import deque

import cv2
import numpy as np

from detectors.base import BaseDetector, DetectionError, Detections, check_image

__all__ = ["MotionRegionDetector", "motion_maps", "moving_region_mask", "region_boxes"]

#: Gain of OpenCV's 5×5 Sobel kernel on a unit ramp (derivative taps Σ j·d_j = 8, smoothing Σ = 16).
_SOBEL5_GAIN = 128.0
_WORK_SIZE_ERROR = "work_size must be None, a positive int or (W, H), got {!r}"


def motion_maps(clip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Acceleration edges and accumulated motion of a clip (steps 1-3 before thresholding).

    Args:
        clip: float32 [k, H, W] grayscale frames in [0, 1], oldest first, ``k >= 3``.

    Returns:
        ``(E, B)``: float32 [H, W] Sobel magnitude of the blurred second-order difference map
        (intensity per pixel) and float32 [H, W] accumulated absolute first-order difference
        (in [0, k − 1]).
    """
    first = np.diff(clip, axis=0)
    accumulated_motion = np.abs(first).sum(axis=0)
    acceleration = np.abs(np.diff(first, axis=0)).sum(axis=0)
    acceleration = cv2.GaussianBlur(acceleration, (5, 5), 0)
    gx = cv2.Sobel(acceleration, cv2.CV_32F, 1, 0, ksize=5, scale=1.0 / _SOBEL5_GAIN)
    gy = cv2.Sobel(acceleration, cv2.CV_32F, 0, 1, ksize=5, scale=1.0 / _SOBEL5_GAIN)
    return cv2.magnitude(gx, gy), accumulated_motion


def moving_region_mask(edges: np.ndarray, motion: np.ndarray, motion_threshold: float,
                       edge_threshold: float, closing_size: int, opening_size: int) -> np.ndarray:
    """Binary uint8 [H, W] mask of moving regions (steps 3-5).

    ``(B > motion_threshold) & (E > edge_threshold)``, then a closing and an opening with squares of
    ones of the given sides (0 skips a step).
    """
    mask = ((motion > motion_threshold) & (edges > edge_threshold)).astype(np.uint8)
    for operation, side in ((cv2.MORPH_CLOSE, closing_size), (cv2.MORPH_OPEN, opening_size)):
        if side > 0:
            mask = cv2.morphologyEx(mask, operation, np.ones((side, side), np.uint8))
    return mask


def region_boxes(mask: np.ndarray, energy: np.ndarray, min_size: int,
                 box_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Boxes and scores of the 8-connected regions of ``mask`` (step 6).

    Args:
        mask: uint8 [H, W] binary mask.
        energy: float32 [H, W] per-pixel motion energy in [0, 1]; a box's score is its mean over
            the region's pixels.
        min_size: regions must be wider **and** taller than this many pixels.
        box_scale: each region's bounding box is scaled by this factor about its centre.

    Returns:
        ``(boxes, scores)``: float32 [N, 4] xyxy in mask pixels (clipped to the mask) and
        float32 [N].
    """
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    energy_sums = np.bincount(labels.ravel(), weights=energy.ravel(), minlength=count)[1:]
    x, y, w, h, area = (stats[1:, i].astype(np.float32) for i in range(5))
    keep = (w > min_size) & (h > min_size)
    centre_x, centre_y = x + w / 2, y + h / 2
    half_w, half_h = w * box_scale / 2, h * box_scale / 2
    boxes = np.stack([centre_x - half_w, centre_y - half_h, centre_x + half_w, centre_y + half_h],
                     axis=1)[keep]
    height, width = mask.shape
    boxes = np.clip(boxes, 0, [width, height, width, height]).astype(np.float32)
    scores = np.clip(energy_sums[keep] / area[keep], 0.0, 1.0).astype(np.float32)
    return boxes, scores


class MotionRegionDetector(BaseDetector):
    """Boxes around moving regions (STRL Algorithm 1, see the module docstring for every step).

    Args:
        clip_length: number of frames ``k`` per clip (>= 3; 5 by default, a short window that reacts
            within half a second at Ped2's 10 fps; the paper leaves ``k`` open).
        work_size: ``None`` to work at the frame's size, an int ``S`` for S×S (the paper's 256), or
            ``(W, H)``. Thresholds and sizes below are in working pixels.
        motion_threshold: threshold on the accumulated absolute difference ``B`` (0.1, the paper's).
        edge_threshold: threshold on the normalised edge magnitude ``E`` (intensity per pixel);
            boxes on Ped2 and on synthetic scenes barely change between 0.005 and 0.02.
        closing_size: side of the square closing that joins fragments of an object (0 = off);
            objects closer than this merge into one region (the paper's "group pattern").
        opening_size: side of the paper's erosion-then-dilation square (8).
        min_size: regions must be wider and taller than this (8, the paper's).
        box_scale: enlargement of each region's bounding box about its centre (1.5, the paper's).

    Example:
        >>> det = MotionRegionDetector(work_size=256)
        >>> boxes = [det.detect(frame.image, frame.index) for frame in source]  # doctest: +SKIP
    """

    class_names = ("moving",)

    def __init__(self, clip_length: int = 5, work_size: int | tuple[int, int] | None = None,
                 motion_threshold: float = 0.1, edge_threshold: float = 0.01, closing_size: int = 5,
                 opening_size: int = 8, min_size: int = 8, box_scale: float = 1.5):
        self.clip_length = clip_length
        self.work_size = work_size
        self.motion_threshold = motion_threshold
        self.edge_threshold = edge_threshold
        self.closing_size = closing_size
        self.opening_size = opening_size
        self.min_size = min_size
        self.box_scale = box_scale
        self._check_params()
        self._clip: deque[np.ndarray] = deque(maxlen=clip_length)
        self._frame_size: tuple[int, int] | None = None

    def _check_params(self) -> None:
        if int(self.clip_length) != self.clip_length or self.clip_length < 3:
            raise ValueError("clip_length must be an integer >= 3 (second-order differences), "
                             f"got {self.clip_length}")
        for name in ("closing_size", "opening_size", "min_size"):
            value = getattr(self, name)
            if int(value) != value or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value}")
        if self.box_scale <= 0 or self.motion_threshold < 0 or self.edge_threshold < 0:
            raise ValueError("box_scale must be > 0 and the thresholds >= 0")
        if min(self._work_wh((1, 1))) <= 0:
            raise ValueError(_WORK_SIZE_ERROR.format(self.work_size))

    def _work_wh(self, frame_size: tuple[int, int]) -> tuple[int, int]:
        """Working (W, H) for a frame of (H, W) ``frame_size``."""
        if self.work_size is None:
            return frame_size[1], frame_size[0]
        if isinstance(self.work_size, (int, np.integer)):
            return int(self.work_size), int(self.work_size)
        if len(self.work_size) != 2:
            raise ValueError(_WORK_SIZE_ERROR.format(self.work_size))
        return int(self.work_size[0]), int(self.work_size[1])

    def _to_gray(self, image: np.ndarray) -> np.ndarray:
        """H×W×3 uint8 BGR -> float32 [h, w] in [0, 1] at the working size."""
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        work_wh = self._work_wh(gray.shape)
        if work_wh != (gray.shape[1], gray.shape[0]):
            gray = cv2.resize(gray, work_wh, interpolation=cv2.INTER_AREA)
        return gray.astype(np.float32) * np.float32(1 / 255)

    def detect(self, image: np.ndarray, frame_index: int = 0) -> Detections:
        """Push ``image`` (H×W×3 uint8 BGR) into the clip and return the moving regions of the clip.

        Returns empty detections until ``clip_length`` frames have been seen. All frames of a
        clip must have the same size (call :meth:`reset` between videos).
        """
        image = check_image(image, type(self).__name__)
        frame_size = (int(image.shape[0]), int(image.shape[1]))
        if self._clip and frame_size != self._frame_size:
            raise DetectionError(
                f"MotionRegionDetector: frame {frame_index} has size {frame_size} but the clip "
                f"holds frames of size {self._frame_size}; call reset() between videos")
        self._frame_size = frame_size
        self._clip.append(self._to_gray(image))
        if len(self._clip) < self.clip_length:
            return Detections.empty(frame_index, frame_size, self.class_names)
        edges, motion = motion_maps(np.stack(self._clip))
        mask = moving_region_mask(edges, motion, self.motion_threshold, self.edge_threshold,
                                  int(self.closing_size), int(self.opening_size))
        energy = motion / np.float32(self.clip_length - 1)
        boxes, scores = region_boxes(mask, energy, int(self.min_size), self.box_scale)
        work_h, work_w = mask.shape
        boxes *= np.array([frame_size[1] / work_w, frame_size[0] / work_h] * 2, np.float32)
        return Detections(boxes, scores, np.zeros(len(boxes), np.int64), frame_index=frame_index,
                          image_size=frame_size, class_names=self.class_names)

    @property
    def warmup_frames(self) -> int:
        """Frames the detector must see before it can box anything (``clip_length - 1``): a
        pipeline that starts mid-video feeds it these earlier frames first."""
        return max(0, int(self.clip_length) - 1)

    def reset(self) -> None:
        """Empty the clip buffer (start of a new video)."""
        self._clip.clear()
        self._frame_size = None

    def get_params(self) -> dict:
        """Constructor arguments (JSON-serialisable)."""
        work_size = self.work_size
        if isinstance(work_size, (tuple, list)):
            work_size = [int(side) for side in work_size]
        return {"clip_length": self.clip_length, "work_size": work_size,
                "motion_threshold": self.motion_threshold, "edge_threshold": self.edge_threshold,
                "closing_size": self.closing_size, "opening_size": self.opening_size,
                "min_size": self.min_size, "box_scale": self.box_scale}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"MotionRegionDetector({params})"
