"""Object-level evaluation: RBDC and TBDC (Ramachandra & Jones, Street Scene, WACV 2020), and
pixel-level AUC.

**Inputs.** Detections are the scored boxes of a :class:`~stgraph.scores.ScoreTable` (one row per
object per frame: ``video, frame, x1..y2, score``). Ground truth is a :class:`GroundTruthRegions`:
anomalous regions as boxes, one row per region per frame, each with the id of the ground-truth
*track* (the same anomalous object across frames) it belongs to. Regions come from annotated
boxes, or from pixel masks: :func:`masks_to_regions` (connected components of a mask) and
:func:`link_tracks` (components overlapping in consecutive frames form one track);
:meth:`GroundTruthRegions.from_masks` does both.

**Definitions** (the paper, Sec. 4, with its parameters ``beta = 0.1`` and ``alpha = 0.1``). At a
threshold ``t`` every box with ``score >= t`` is a detected region. Then

* a ground-truth region is *detected* when a detected region of the same frame has IoU >= ``beta``
  with it;
* a detected region is a *false positive* when it has IoU >= ``beta`` with **no** ground-truth
  region of its frame (a second detection of an already detected region is not a false positive);
* RBDR(t) = detected ground-truth regions / all ground-truth regions;
* a ground-truth track is detected when at least a fraction ``alpha`` of its regions is detected
  (``n_detected / n_regions >= alpha``); TBDR(t) = detected tracks / all tracks;
* FPR(t) = false positives / number of evaluated frames (false positives *per frame*, which can
  exceed 1).

Sweeping ``t`` over every distinct detection score traces RBDR and TBDR against FPR; RBDC and
TBDC are the areas under those curves for FPR from 0 to ``max_fp_per_frame`` (1 in the paper),
divided by ``max_fp_per_frame`` so that a perfect detector scores 1.

**Choices made here** (the paper leaves them open; they agree with the evaluation code published
with Georgescu et al., TPAMI 2021, which most later papers use):

* the curve starts at (0, 0) (threshold above every score) and is integrated with the trapezoid
  rule; with distinct scores each step changes either FPR or the detection rate, so the area is
  that of the staircase. Detections with tied scores enter together (one curve point).
* where the curve passes ``max_fp_per_frame`` between two points it is cut by linear
  interpolation; where it ends before (all detections used) it is extended flat, at its last
  detection rate, up to ``max_fp_per_frame``.
* IoU of boxes in continuous pixel coordinates (``(x2 - x1) * (y2 - y1)``, no ``+1``); a mask
  component's box spans its pixels' edges: columns ``c0..c1`` give ``x1 = c0, x2 = c1 + 1``.
* the number of frames is, by default, the number of frames of all scored videos
  (``ScoreTable.video_frames``), frames without detections included.

**Which rows are regions.** Every row of the chosen kind is a candidate region
(:func:`region_candidates`): by default the table's object rows, else its patch rows, else its
frame rows. A frame row is the whole frame: a NaN box (image size unknown) stands for the whole
mask.

Pixel-level AUC (:func:`pixel_auc`, :class:`PixelAUC`) is the ROC AUC of all pixels of all frames
pooled, score map against mask (as anomalib/MVTec report it), computed exactly from per-value
counts so that thousands of frames never sit in memory. It is *not* the UCSD "pixel-level
criterion" (a frame counts as detected when >= 40 % of its anomalous pixels are flagged).
Score maps (:func:`score_maps`) are, per video, the table's **pixel maps** when it has them
(``ScoreTable.pixel_maps``: each map resized to the mask size, bilinearly, and kept in float16,
the precision it is stored in; a frame without a map takes the video's lowest pixel score), else
painted from the candidate regions' boxes (:func:`paint_score_map`, max over overlapping boxes).

Example:
    >>> gt = GroundTruthRegions.from_masks({"01": {0: mask0, 1: mask1}})        # doctest: +SKIP
    >>> rbdc_tbdc(table, gt)["rbdc"]                                              # doctest: +SKIP
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

from stgraph.scores import KINDS, PixelMaps, ScoreTable

__all__ = ["GroundTruthRegions", "RegionCurves", "box_iou", "masks_to_regions", "link_tracks",
           "region_candidates", "region_curves", "rbdc_tbdc", "area_under_fp_curve",
           "paint_score_map", "resize_score_map", "score_maps", "PixelAUC", "pixel_auc",
           "read_mask", "mask_files", "find_mask_folder", "evaluate_masks"]

MASK_EXTENSIONS = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff")


# ---------------------------------------------------------------------------- boxes and masks
def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every pair of boxes: ``a`` [N, 4], ``b`` [M, 4] xyxy -> float64 [N, M].

    Areas are ``(x2 - x1) * (y2 - y1)`` (continuous coordinates); a pair whose union is empty
    (two degenerate boxes) has IoU 0.
    """
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    low = np.maximum(a[:, None, :2], b[None, :, :2])    # [N, M, 2] intersection top-left
    high = np.minimum(a[:, None, 2:], b[None, :, 2:])   # [N, M, 2] intersection bottom-right
    inter = np.prod(np.clip(high - low, 0, None), axis=2)
    area_a = (a[:, 2] - a[:, 0]).clip(0) * (a[:, 3] - a[:, 1]).clip(0)
    area_b = (b[:, 2] - b[:, 0]).clip(0) * (b[:, 3] - b[:, 1]).clip(0)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def masks_to_regions(mask: np.ndarray, min_area: int = 1, connectivity: int = 8) -> np.ndarray:
    """Boxes of the connected components of a binary mask.

    Args:
        mask: [H, W], nonzero = anomalous pixel.
        min_area: components with fewer pixels are dropped (annotation specks).
        connectivity: 8 (diagonal neighbours join) or 4.

    Returns:
        float64 [K, 4] xyxy boxes spanning the components' pixel edges (a component over columns
        ``c0..c1`` and rows ``r0..r1`` gives ``(c0, r0, c1 + 1, r1 + 1)``), sorted by (y1, x1).
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"masks_to_regions: mask must be 2-D [H, W], got shape {mask.shape}")
    if connectivity not in (4, 8):
        raise ValueError(f"masks_to_regions: connectivity must be 4 or 8, got {connectivity}")
    structure = np.ones((3, 3), bool) if connectivity == 8 else None
    components, count = ndimage.label(mask != 0, structure=structure)
    if count == 0:
        return np.zeros((0, 4), np.float64)
    sizes = np.bincount(components.ravel(), minlength=count + 1)[1:]
    boxes = [(s[1].start, s[0].start, s[1].stop, s[0].stop)
             for s, size in zip(ndimage.find_objects(components), sizes) if size >= min_area]
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return boxes[np.lexsort((boxes[:, 0], boxes[:, 1]))]


def link_tracks(frames: np.ndarray, boxes: np.ndarray, min_iou: float = 0.0) -> np.ndarray:
    """Group the regions of one video into tracks: regions overlapping in consecutive frames.

    A region of frame ``t`` continues a track of frame ``t - 1`` when their boxes have IoU >
    ``min_iou`` (default: any overlap). Each track continues into at most one region and each
    region continues at most one track (one-to-one, the assignment maximising total IoU); other
    regions start new tracks. A frame without regions ends every track.

    Args:
        frames: int [M] frame index of each region.
        boxes: float [M, 4] xyxy.
        min_iou: linking threshold, in [0, 1).

    Returns:
        int64 [M] track ids 0..K-1, numbered in order of first appearance.
    """
    frames = np.asarray(frames, np.int64).reshape(-1)
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if frames.shape[0] != boxes.shape[0]:
        raise ValueError(f"link_tracks: {frames.shape[0]} frames but {boxes.shape[0]} boxes")
    if not 0.0 <= min_iou < 1.0:
        raise ValueError(f"link_tracks: min_iou must be in [0, 1), got {min_iou}")
    order = np.argsort(frames, kind="stable")
    unique_frames, starts = np.unique(frames[order], return_index=True)
    tracks = np.full(frames.shape[0], -1, np.int64)
    next_id = 0
    previous_rows, previous_frame = np.zeros(0, np.int64), None
    for frame, rows in zip(unique_frames, np.split(order, starts[1:])):  # rows of each frame
        if previous_frame == frame - 1 and previous_rows.size:
            iou = box_iou(boxes[previous_rows], boxes[rows])
            pick_prev, pick_cur = linear_sum_assignment(-iou)
            linked = iou[pick_prev, pick_cur] > min_iou
            tracks[rows[pick_cur[linked]]] = tracks[previous_rows[pick_prev[linked]]]
        for row in rows:
            if tracks[row] < 0:
                tracks[row], next_id = next_id, next_id + 1
        previous_rows, previous_frame = rows, frame
    return tracks


# ---------------------------------------------------------------------------- ground truth
@dataclass(frozen=True, eq=False)
class GroundTruthRegions:
    """Anomalous ground-truth regions, one row per region per frame.

    Attributes:
        video: str [M] video name.
        frame: int64 [M] frame index (0-based, as in the ScoreTable).
        boxes: float64 [M, 4] xyxy pixels.
        track: int64 [M] track id, unique within its video (a track never spans videos).
    """

    video: np.ndarray
    frame: np.ndarray
    boxes: np.ndarray
    track: np.ndarray

    def __post_init__(self) -> None:
        video = np.asarray(self.video, dtype=np.str_).reshape(-1)
        frame = np.asarray(self.frame).reshape(-1)
        boxes = np.asarray(self.boxes, np.float64).reshape(-1, 4)
        track = np.asarray(self.track).reshape(-1)
        lengths = {"video": video.shape[0], "frame": frame.shape[0], "boxes": boxes.shape[0],
                   "track": track.shape[0]}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"GroundTruthRegions fields must have one length, got {lengths}")
        if frame.size and (frame.dtype.kind not in "iu" or frame.min() < 0):
            raise ValueError("GroundTruthRegions.frame must hold non-negative integers")
        if track.size and track.dtype.kind not in "iu":
            raise ValueError(f"GroundTruthRegions.track must hold integers, got {track.dtype}")
        if not np.all(np.isfinite(boxes)):
            raise ValueError("GroundTruthRegions.boxes contain NaN or inf")
        if np.any(boxes[:, 2] < boxes[:, 0]) or np.any(boxes[:, 3] < boxes[:, 1]):
            raise ValueError("GroundTruthRegions.boxes must be xyxy with x2 >= x1 and y2 >= y1")
        object.__setattr__(self, "video", video)
        object.__setattr__(self, "frame", frame.astype(np.int64))
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "track", track.astype(np.int64))

    def __len__(self) -> int:
        return int(self.frame.shape[0])

    @property
    def videos(self) -> list[str]:
        """Names of the videos that have regions, sorted."""
        return sorted(set(self.video.tolist()))

    @property
    def n_tracks(self) -> int:
        """Number of distinct (video, track) pairs."""
        return len(set(zip(self.video.tolist(), self.track.tolist())))

    def track_keys(self) -> np.ndarray:
        """int64 [M]: a dense id 0..n_tracks-1 of each row's (video, track)."""
        pairs = np.rec.fromarrays([self.video, self.track])
        return np.unique(pairs, return_inverse=True)[1].reshape(-1).astype(np.int64)

    @classmethod
    def empty(cls) -> "GroundTruthRegions":
        return cls(np.zeros(0, np.str_), np.zeros(0, np.int64), np.zeros((0, 4)),
                   np.zeros(0, np.int64))

    @classmethod
    def concat(cls, parts: Sequence["GroundTruthRegions"]) -> "GroundTruthRegions":
        """Rows of all ``parts`` (track ids are kept: they are per video)."""
        parts = [part for part in parts if len(part)]
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(p, name) for p in parts])
                     for name in ("video", "frame", "boxes", "track")))

    @classmethod
    def from_video_masks(cls, video: str, masks: Iterable[tuple[int, np.ndarray]],
                         min_area: int = 1, link_iou: float = 0.0) -> "GroundTruthRegions":
        """Regions of one video from ``(frame, mask [H, W])`` pairs: components
        (:func:`masks_to_regions`) linked into tracks (:func:`link_tracks`). Masks are consumed
        one at a time, so an iterator that reads them lazily keeps memory flat."""
        frames, boxes = [], []
        for frame, mask in masks:
            regions = masks_to_regions(mask, min_area=min_area)
            frames.append(np.full(regions.shape[0], int(frame), np.int64))
            boxes.append(regions)
        if not frames:
            return cls.empty()
        frames_arr, boxes_arr = np.concatenate(frames), np.concatenate(boxes)
        return cls(np.full(frames_arr.shape[0], video), frames_arr, boxes_arr,
                   link_tracks(frames_arr, boxes_arr, link_iou))

    @classmethod
    def from_masks(cls, masks: Mapping[str, Mapping[int, np.ndarray]], min_area: int = 1,
                   link_iou: float = 0.0) -> "GroundTruthRegions":
        """Regions of several videos: ``masks[video][frame]`` is a binary mask [H, W]."""
        return cls.concat([
            cls.from_video_masks(video, sorted(per_frame.items()), min_area, link_iou)
            for video, per_frame in sorted(masks.items())])


# ---------------------------------------------------------------------------- curves
@dataclass(frozen=True)
class RegionCurves:
    """RBDR and TBDR against false positives per frame, one point per threshold.

    Attributes:
        thresholds: float64 [K + 1], ``inf`` first (nothing detected), then every distinct
            detection score, decreasing.
        fp_per_frame: float64 [K + 1] non-decreasing, starting at 0.
        rbdr: float64 [K + 1] region-based detection rate.
        tbdr: float64 [K + 1] track-based detection rate.
        n_frames, n_regions, n_tracks, n_detections: the counts behind the rates.
    """

    thresholds: np.ndarray
    fp_per_frame: np.ndarray
    rbdr: np.ndarray
    tbdr: np.ndarray
    n_frames: int
    n_regions: int
    n_tracks: int
    n_detections: int


def _track_thresholds(region_scores: np.ndarray, track_of: np.ndarray, n_tracks: int,
                      alpha: float) -> np.ndarray:
    """float64 [n_tracks]: the highest threshold at which each track counts as detected.

    A track of ``n`` regions is detected once ``k`` of them are, ``k`` the smallest integer with
    ``k / n >= alpha``; so its threshold is the ``k``-th highest detection score of its regions.
    """
    out = np.full(n_tracks, -np.inf)
    order = np.lexsort((-region_scores, track_of))
    sorted_tracks, sorted_scores = track_of[order], region_scores[order]
    starts = np.searchsorted(sorted_tracks, np.arange(n_tracks))
    sizes = np.bincount(track_of, minlength=n_tracks)
    for track in range(n_tracks):
        n = int(sizes[track])
        k = int(np.argmax(np.arange(1, n + 1) / n >= alpha)) + 1
        out[track] = sorted_scores[starts[track] + k - 1]
    return out


def _frame_keys(video: np.ndarray, frame: np.ndarray, names: list[str]) -> np.ndarray:
    """int64 [R]: one key per (video, frame), comparable across arrays given the same ``names``."""
    code = np.searchsorted(np.asarray(names, dtype=np.str_), video)
    return (code.astype(np.int64) << 32) + frame


def _match(det_keys: np.ndarray, det_boxes: np.ndarray, det_scores: np.ndarray,
           gt_keys: np.ndarray, gt_boxes: np.ndarray,
           iou_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(det_is_fp bool [N], region_score float64 [M]): whether each detection overlaps no region
    of its frame, and the highest score among the detections overlapping each region (-inf)."""
    det_is_fp = np.ones(det_keys.shape[0], bool)
    region_score = np.full(gt_keys.shape[0], -np.inf)
    keys = np.intersect1d(det_keys, gt_keys)
    det_order, gt_order = np.argsort(det_keys, kind="stable"), np.argsort(gt_keys, kind="stable")
    det_sorted, gt_sorted = det_keys[det_order], gt_keys[gt_order]
    bounds = zip(*(np.searchsorted(ordered, keys, side) for ordered in (det_sorted, gt_sorted)
                   for side in ("left", "right")))
    for det_lo, det_hi, gt_lo, gt_hi in bounds:  # one frame with detections and regions
        det_rows, gt_rows = det_order[det_lo:det_hi], gt_order[gt_lo:gt_hi]
        hit = box_iou(det_boxes[det_rows], gt_boxes[gt_rows]) >= iou_threshold  # [n, m]
        det_is_fp[det_rows] = ~hit.any(axis=1)
        region_score[gt_rows] = np.where(hit, det_scores[det_rows, None], -np.inf).max(axis=0)
    return det_is_fp, region_score


def region_candidates(table: ScoreTable, kind: str | None = None,
                      image_hw: Mapping[str, tuple[int, int]] | None = None
                      ) -> tuple[ScoreTable, str]:
    """The rows of ``table`` that are candidate regions, and their kind.

    Args:
        table: any score table.
        kind: ``"object"``, ``"patch"`` or ``"frame"``; None: object rows when the table has
            any, else patch rows, else frame rows.
        image_hw: {video: (H, W)}: NaN boxes of that video's rows (frame rows of unknown image
            size) become the whole frame ``[0, 0, W, H]``.

    Raises:
        ValueError: an unknown kind, or a kind the table has no row of (while it has rows).
    """
    if kind is None:
        kind = next((k for k in ("object", "patch", "frame") if k in table.kinds), "object")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {list(KINDS)} or None, got {kind!r}")
    if len(table) and kind not in table.kinds:
        raise ValueError(f"the score table has no {kind} rows (it has {list(table.kinds)} rows)")
    rows = table.select(kind=kind)
    if not image_hw or not any(np.isnan(rows[name]).any() for name in ("x1", "y1", "x2", "y2")):
        return rows, kind
    columns = {name: np.array(rows[name]) for name in rows.columns}
    for video, (height, width) in image_hw.items():
        here = columns["video"] == video
        for name, whole in (("x1", 0), ("y1", 0), ("x2", width), ("y2", height)):
            columns[name][here & np.isnan(columns[name])] = whole
    return ScoreTable(columns, rows.video_frames, rows.pixel_maps), kind


def region_curves(table: ScoreTable, gt: GroundTruthRegions, iou_threshold: float = 0.1,
                  alpha: float = 0.1, n_frames: int | None = None) -> RegionCurves:
    """RBDR/TBDR-vs-FPR curves of the scored boxes of ``table`` against ``gt`` (module docstring).

    Args:
        table: scored boxes; every row is a candidate region (pass the rows of one kind:
            :func:`region_candidates`).
        gt: ground-truth regions; every video with regions must be in ``table``.
        iou_threshold: ``beta``, IoU for a detection to hit a region.
        alpha: fraction of a track's regions that must be detected for the track to be.
        n_frames: frames the false positives are spread over; default: all frames of all videos
            of ``table`` (``video_frames``).

    Raises:
        ValueError: no ground-truth region, regions in videos the table lacks, parameters out of
            range.
    """
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    if len(gt) == 0:
        raise ValueError("RBDC/TBDC need at least one ground-truth region; there is none")
    unscored = sorted(set(gt.videos) - set(table.videos))
    if unscored:
        raise ValueError(f"ground-truth regions in videos the score table lacks: {unscored}; "
                         f"the table has {table.videos}")
    if n_frames is None:
        n_frames = sum(int(f.shape[0]) for f in table.video_frames.values())
    if n_frames <= 0:
        raise ValueError(f"n_frames must be positive, got {n_frames}")

    names = table.videos
    det_keys = _frame_keys(table["video"], table["frame"], names)
    det_boxes = np.stack([table[c] for c in ("x1", "y1", "x2", "y2")], axis=1).astype(np.float64)
    det_scores = np.asarray(table["score"], np.float64)
    gt_keys = _frame_keys(gt.video, gt.frame, names)
    det_is_fp, region_score = _match(det_keys, det_boxes, det_scores, gt_keys, gt.boxes,
                                     iou_threshold)
    track_of = gt.track_keys()
    n_tracks = int(track_of.max()) + 1
    track_score = _track_thresholds(region_score, track_of, n_tracks, alpha)

    thresholds = np.unique(det_scores)[::-1]

    def count_at_or_above(values: np.ndarray) -> np.ndarray:
        ascending = np.sort(values)
        return values.shape[0] - np.searchsorted(ascending, thresholds, side="left")

    zero = np.zeros(1)
    return RegionCurves(
        thresholds=np.concatenate([[np.inf], thresholds]),
        fp_per_frame=np.concatenate([zero, count_at_or_above(det_scores[det_is_fp]) / n_frames]),
        rbdr=np.concatenate([zero, count_at_or_above(region_score) / len(gt)]),
        tbdr=np.concatenate([zero, count_at_or_above(track_score) / n_tracks]),
        n_frames=int(n_frames), n_regions=len(gt), n_tracks=n_tracks,
        n_detections=int(det_scores.shape[0]))


def area_under_fp_curve(fp_per_frame: np.ndarray, rate: np.ndarray,
                        max_fp_per_frame: float = 1.0) -> float:
    """Area under ``rate`` [K] vs ``fp_per_frame`` [K] (non-decreasing, from 0) for FP per frame
    in [0, ``max_fp_per_frame``], divided by ``max_fp_per_frame`` (a perfect curve gives 1).

    Trapezoid rule; the curve is cut at ``max_fp_per_frame`` by linear interpolation, or extended
    flat at its last rate when it ends before.
    """
    x = np.asarray(fp_per_frame, np.float64).reshape(-1)
    y = np.asarray(rate, np.float64).reshape(-1)
    if x.shape != y.shape or x.size == 0:
        raise ValueError(f"area_under_fp_curve: need two arrays of one non-zero length, "
                         f"got {x.shape} and {y.shape}")
    if max_fp_per_frame <= 0:
        raise ValueError(f"max_fp_per_frame must be positive, got {max_fp_per_frame}")
    if np.any(np.diff(x) < 0):
        raise ValueError("area_under_fp_curve: fp_per_frame must be non-decreasing")
    inside = x <= max_fp_per_frame
    xs, ys = x[inside], y[inside]
    if xs.size < x.size:  # the curve goes past the limit: interpolate on the crossing segment
        i = int(np.argmin(inside))
        x0, y0 = x[i - 1], y[i - 1]
        y_cut = y0 + (y[i] - y0) * (max_fp_per_frame - x0) / (x[i] - x0)
        xs, ys = np.append(xs, max_fp_per_frame), np.append(ys, y_cut)
    elif xs[-1] < max_fp_per_frame:
        xs, ys = np.append(xs, max_fp_per_frame), np.append(ys, ys[-1])
    return float(np.sum(np.diff(xs) * (ys[1:] + ys[:-1]) / 2) / max_fp_per_frame)


def rbdc_tbdc(table: ScoreTable, gt: GroundTruthRegions, iou_threshold: float = 0.1,
              alpha: float = 0.1, max_fp_per_frame: float = 1.0,
              n_frames: int | None = None) -> dict:
    """RBDC and TBDC of ``table``'s scored boxes against ``gt`` (arguments: :func:`region_curves`).

    Returns:
        dict(rbdc, tbdc, iou_threshold, alpha, max_fp_per_frame, n_frames, n_regions, n_tracks,
        n_detections) of plain Python numbers.
    """
    curves = region_curves(table, gt, iou_threshold, alpha, n_frames)
    return {
        "rbdc": area_under_fp_curve(curves.fp_per_frame, curves.rbdr, max_fp_per_frame),
        "tbdc": area_under_fp_curve(curves.fp_per_frame, curves.tbdr, max_fp_per_frame),
        "iou_threshold": float(iou_threshold), "alpha": float(alpha),
        "max_fp_per_frame": float(max_fp_per_frame), "n_frames": curves.n_frames,
        "n_regions": curves.n_regions, "n_tracks": curves.n_tracks,
        "n_detections": curves.n_detections,
    }


# ---------------------------------------------------------------------------- pixel level
def _winning_box(boxes: np.ndarray, scores: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """int64 [H, W]: row of the highest-scored box covering each pixel, -1 where none does.
    A NaN coordinate (a frame row of unknown image size) reaches the frame's edge."""
    height, width = int(shape[0]), int(shape[1])
    out = np.full((height, width), -1, np.int64)
    boxes = np.where(np.isnan(boxes), np.array([0, 0, width, height], np.float64), boxes)
    x1 = np.clip(np.floor(boxes[:, 0]), 0, width).astype(np.int64)
    y1 = np.clip(np.floor(boxes[:, 1]), 0, height).astype(np.int64)
    x2 = np.clip(np.ceil(boxes[:, 2]), 0, width).astype(np.int64)
    y2 = np.clip(np.ceil(boxes[:, 3]), 0, height).astype(np.int64)
    for k in np.argsort(scores, kind="stable"):  # ascending, so higher scores are written last
        out[y1[k]:y2[k], x1[k]:x2[k]] = k
    return out


def _check_boxes_scores(boxes: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    if boxes.shape[0] != scores.shape[0]:
        raise ValueError(f"paint_score_map: {boxes.shape[0]} boxes but {scores.shape[0]} scores")
    return boxes, scores


def paint_score_map(boxes: np.ndarray, scores: np.ndarray, shape: tuple[int, int],
                    background: float = -np.inf) -> np.ndarray:
    """Score map of one frame: each pixel takes the highest score of the boxes covering it.

    Args:
        boxes: float [K, 4] xyxy pixels; a box covers pixel columns ``floor(x1) .. ceil(x2) - 1``
            (rows likewise), clipped to the frame; a NaN coordinate reaches the frame's edge.
        scores: float [K].
        shape: (H, W) of the map.
        background: value of pixels no box covers (default ``-inf``: below every box).

    Returns:
        float64 [H, W].
    """
    boxes, scores = _check_boxes_scores(boxes, scores)
    winner = _winning_box(boxes, scores, shape)
    return np.append(scores, float(background))[winner]  # index -1 picks the background


def _resize_float16(score_map: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """float16 [H, W]: :func:`resize_score_map` before the cast to float64."""
    import cv2

    score_map = np.asarray(score_map, np.float32)
    height, width = int(shape[0]), int(shape[1])
    if score_map.shape != (height, width):
        score_map = cv2.resize(score_map, (width, height), interpolation=cv2.INTER_LINEAR)
    return score_map.astype(np.float16)


def resize_score_map(score_map: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A score map [h, w] resized to ``shape`` (H, W) bilinearly (OpenCV ``INTER_LINEAR``: pixel
    centres aligned, edges clamped), in float16 (the precision pixel maps are stored in, so
    that a video's maps hold at most 65,536 distinct values); returned as float64 [H, W]."""
    return _resize_float16(score_map, shape).astype(np.float64)


#: float64 [65536]: the value of every float16 bit pattern (indexed by its uint16 code).
_FLOAT16_VALUES = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16
                                                                               ).astype(np.float64)


class _MapPainter:
    """The pixel maps of one video, resized to each mask; a frame without a map gets the video's
    lowest pixel score (as ``frame_scores(empty="min")`` does for frames)."""

    def __init__(self, maps: PixelMaps):
        self.maps = maps
        self.fill = float(maps.maps.min())

    def paint(self, frame: int, shape: tuple[int, int]) -> np.ndarray:
        score_map = self.maps.map_of(frame)
        if score_map is None:
            return np.full((int(shape[0]), int(shape[1])), self.fill)
        return resize_score_map(score_map, shape)

    def add_to(self, accumulator: "PixelAUC", frame: int, mask: np.ndarray) -> None:
        """``accumulator.update(self.paint(frame, mask.shape), mask)``, counting pixels per
        float16 bit pattern (no per-pixel sort)."""
        score_map = self.maps.map_of(frame)
        if score_map is None:
            accumulator.update(self.paint(frame, mask.shape), mask)
            return
        codes = _resize_float16(score_map, mask.shape).view(np.uint16).ravel()
        total = np.bincount(codes, minlength=1 << 16)
        positive = np.bincount(codes, weights=np.asarray(mask).ravel() != 0, minlength=1 << 16)
        present = np.flatnonzero(total)
        accumulator.add_counts(_FLOAT16_VALUES[present], positive[present],
                               total[present] - positive[present])


def _pixel_painter(table: ScoreTable, video: str, kind: str | None = None,
                   background: float = -np.inf) -> "_MapPainter | _BoxPainter":
    """The video's pixel maps when the table has them, else its candidate regions' boxes."""
    if video in table.pixel_maps:
        return _MapPainter(table.pixel_maps[video])
    return _BoxPainter(region_candidates(table.select(video), kind)[0], video, background)


class _BoxPainter:
    """The scored boxes of one video of a table, ready to paint frame by frame."""

    def __init__(self, table: ScoreTable, video: str, background: float = -np.inf):
        rows = table.select(video)
        self.frames = rows["frame"]
        self.boxes = np.stack([rows[c] for c in ("x1", "y1", "x2", "y2")], axis=1)
        self.scores = rows["score"]
        self.background = background

    def _rows(self, frame: int) -> slice:
        return slice(int(np.searchsorted(self.frames, frame, "left")),
                     int(np.searchsorted(self.frames, frame, "right")))

    def paint(self, frame: int, shape: tuple[int, int]) -> np.ndarray:
        rows = self._rows(frame)
        return paint_score_map(self.boxes[rows], self.scores[rows], shape, self.background)

    def add_to(self, accumulator: "PixelAUC", frame: int, mask: np.ndarray) -> None:
        """``accumulator.update(self.paint(frame, mask.shape), mask)``, without the per-pixel sort:
        the map's values are the frame's box scores and the background."""
        rows = self._rows(frame)
        scores = np.append(self.scores[rows], self.background)
        winner = _winning_box(self.boxes[rows], self.scores[rows], mask.shape)
        accumulator.add_counts(scores, *_label_counts(winner, mask, scores.shape[0]))


def score_maps(table: ScoreTable, video: str, shape: tuple[int, int],
               frames: Sequence[int] | None = None, background: float = -np.inf,
               kind: str | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """``(frame, score map float64 [H, W])`` of each frame of ``video`` (default: all its frames
    in the table): its pixel maps resized to ``shape`` (:func:`resize_score_map`) when the table
    has them, else painted from the boxes of its candidate regions of ``kind``
    (:func:`region_candidates`) by :func:`paint_score_map` (``background`` where no box is)."""
    painter = _pixel_painter(table, video, kind, background)
    for frame in table.video_frames[video] if frames is None else frames:
        yield int(frame), painter.paint(int(frame), shape)


class PixelAUC:
    """Exact pooled pixel ROC AUC, accumulated frame by frame in memory proportional to the
    number of distinct score values (painted maps have few).

    Example:
        >>> acc = PixelAUC()
        >>> acc.update(np.array([[0.9, 0.1], [0.5, 0.5]]), np.array([[1, 0], [0, 1]]))
        >>> acc.auc()
        0.875
    """

    #: Pending per-frame counts are merged once they hold this many values, so memory stays
    #: proportional to the number of distinct values overall.
    COMPACT_AT = 1 << 20

    def __init__(self) -> None:
        self._values: list[np.ndarray] = []
        self._positives: list[np.ndarray] = []
        self._negatives: list[np.ndarray] = []
        self._pending = 0

    def update(self, score_map: np.ndarray, mask: np.ndarray) -> None:
        """Add one frame: ``score_map`` float [H, W] (no NaN; ``-inf`` allowed) and ``mask``
        [H, W] (nonzero = anomalous pixel)."""
        score_map = np.asarray(score_map, np.float64)
        mask = np.asarray(mask)
        if score_map.shape != mask.shape:
            raise ValueError(f"PixelAUC: score map shape {score_map.shape} differs from mask "
                             f"shape {mask.shape}")
        if np.isnan(score_map).any():
            raise ValueError("PixelAUC: score map contains NaN")
        values, inverse = np.unique(score_map.ravel(), return_inverse=True)
        self.add_counts(values, *_label_counts(inverse, mask, values.size))

    def add_counts(self, values: np.ndarray, positives: np.ndarray, negatives: np.ndarray) -> None:
        """Add pixel counts directly: ``positives[i]`` anomalous and ``negatives[i]`` normal
        pixels scored ``values[i]`` (three float arrays [V])."""
        self._values.append(np.asarray(values, np.float64))
        self._positives.append(np.asarray(positives, np.float64))
        self._negatives.append(np.asarray(negatives, np.float64))
        self._pending += self._values[-1].shape[0]
        if self._pending >= self.COMPACT_AT:
            self._compact()

    def _compact(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Merge the counts so far into one (values ascending and distinct, positives,
        negatives) triple, and return it."""
        values, inverse = np.unique(np.concatenate(self._values), return_inverse=True)
        inverse = inverse.reshape(-1)
        positive, negative = (np.bincount(inverse, weights=np.concatenate(counts),
                                          minlength=values.size)
                              for counts in (self._positives, self._negatives))
        self._values, self._positives, self._negatives = [values], [positive], [negative]
        self._pending = values.shape[0]
        return values, positive, negative

    def auc(self) -> float:
        """ROC AUC of all pixels so far (ties count one half, as ``sklearn.metrics.roc_auc_score``).

        Raises:
            ValueError: no anomalous or no normal pixel seen.
        """
        if not self._values:
            raise ValueError("PixelAUC: no frame was added")
        values, positive, negative = self._compact()
        n_pos, n_neg = positive.sum(), negative.sum()
        if n_pos == 0 or n_neg == 0:
            raise ValueError(f"pixel AUC needs anomalous and normal pixels; got {int(n_pos)} "
                             f"anomalous and {int(n_neg)} normal")
        negatives_below = np.cumsum(negative) - negative  # values are ascending
        return float(np.sum(positive * (negatives_below + 0.5 * negative)) / (n_pos * n_neg))


def _label_counts(index: np.ndarray, mask: np.ndarray,
                  n_values: int) -> tuple[np.ndarray, np.ndarray]:
    """(anomalous [V], normal [V]) pixel counts per value index (``index`` [H, W] in 0..V-1, or
    -1 for the last value)."""
    flat = np.asarray(index).ravel() % n_values
    positive = np.bincount(flat, weights=(np.asarray(mask).ravel() != 0), minlength=n_values)
    return positive, np.bincount(flat, minlength=n_values) - positive


def pixel_auc(score_maps_: Iterable[np.ndarray], masks: Iterable[np.ndarray]) -> float:
    """Pooled pixel ROC AUC of paired score maps [H, W] and masks [H, W] (see :class:`PixelAUC`)."""
    accumulator = PixelAUC()
    for score_map, mask in zip(score_maps_, masks, strict=True):
        accumulator.update(score_map, mask)
    return accumulator.auc()


# ---------------------------------------------------------------------------- mask folders
def read_mask(path: str | Path) -> np.ndarray:
    """bool [H, W] mask of an image file (nonzero = anomalous; colour images: any channel)."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise FileNotFoundError(f"cannot read mask image: {path}")
    return image.any(axis=2) if image.ndim == 3 else image != 0


def mask_files(folder: str | Path, index_base: int | str = "auto") -> dict[int, Path]:
    """Mask files of one video by 0-based frame index.

    File names carry the frame number (``001.png``, ``frame001.bmp``; the last digits count).
    ``index_base`` is the number of the first frame in the names: 1 for the official UCSD masks
    (``001.png`` is frame 0), 0 for 0-based names; ``"auto"`` takes the smallest number found
    when it is 0 or 1.

    Raises:
        FileNotFoundError: no such folder, or no mask image in it.
        ValueError: a name without digits, a repeated number, or ``"auto"`` with a smallest number
            other than 0 or 1.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"mask folder not found: {folder}")
    numbered: dict[int, Path] = {}
    for path in folder.iterdir():
        if path.suffix.lower() not in MASK_EXTENSIONS:
            continue
        digits = re.findall(r"\d+", path.stem)
        if not digits:
            raise ValueError(f"mask file name has no frame number: {path}")
        number = int(digits[-1])
        if number in numbered:
            raise ValueError(f"two mask files for frame number {number}: {numbered[number]} "
                             f"and {path}")
        numbered[number] = path
    if not numbered:
        raise FileNotFoundError(f"no mask images ({', '.join(MASK_EXTENSIONS)}) in {folder}")
    if index_base == "auto":
        index_base = min(numbered)
        if index_base not in (0, 1):
            raise ValueError(f"{folder}: mask numbers start at {index_base}; pass index_base")
    return {number - int(index_base): path for number, path in sorted(numbered.items())}


def find_mask_folder(root: str | Path, video: str) -> Path:
    """The sub-folder of ``root`` holding ``video``'s masks: named ``video``, or ending in the same
    number (``Test001`` or ``Test001_gt`` for video ``01``).

    Raises:
        FileNotFoundError: none or several match (the message lists the folders).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"mask root folder not found: {root}")
    if (root / video).is_dir():
        return root / video
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    number = re.findall(r"\d+", video)
    matches = []
    if number:
        for folder in folders:
            digits = re.findall(r"\d+", folder.name)
            if digits and int(digits[-1]) == int(number[-1]):
                matches.append(folder)
    if len(matches) != 1:
        found = "several: " + ", ".join(p.name for p in matches) if matches else "none"
        raise FileNotFoundError(f"no unique mask folder for video {video!r} in {root} ({found}); "
                                f"folders there: {[p.name for p in folders][:20]}")
    return matches[0]


def evaluate_masks(table: ScoreTable, mask_root: str | Path, videos: Sequence[str] | None = None,
                   iou_threshold: float = 0.1, alpha: float = 0.1, max_fp_per_frame: float = 1.0,
                   min_area: int = 1, index_base: int | str = "auto",
                   kind: str | None = None) -> dict:
    """RBDC, TBDC and pixel AUC of ``table`` against mask folders, in one pass over the masks.

    ``mask_root/<folder>/<NNN>.png`` as in the UCSD layout (:func:`find_mask_folder`,
    :func:`mask_files`). Only frames of ``table.video_frames`` are evaluated (with strided scoring
    the unscored frames' masks are skipped); a scored frame without a mask file is an error.
    Candidate regions are the rows of ``kind`` (:func:`region_candidates`); boxes must be in mask
    pixels. Pixel scores come from the table's pixel maps where a video has them, else from the
    candidate boxes painted with background ``-inf`` (:func:`score_maps`).

    Returns:
        ``rbdc_tbdc``'s dict plus ``pixel_auc``, ``kind`` (of the candidate rows),
        ``pixel_scores`` ({video: "maps" or "boxes"}) and ``image_hw`` ({video: [H, W] of its
        masks}), all JSON-ready, and ``regions`` (the :class:`GroundTruthRegions`, for plots;
        not JSON). ``region_curves(region_candidates(table, kind, image_hw)[0], regions, ...)``
        gives the curves behind the numbers.
    """
    videos = table.videos if videos is None else list(videos)
    candidates, kind = region_candidates(table.select(videos), kind)
    pixel = PixelAUC()
    parts, image_hw, sources = [], {}, {}
    for video in videos:
        files = mask_files(find_mask_folder(mask_root, video), index_base)
        frames = table.video_frames[video]
        missing = [int(f) for f in frames if int(f) not in files]
        if missing:
            raise ValueError(f"video {video!r}: no mask file for scored frames {missing[:10]} "
                             f"(masks cover frames {min(files)}..{max(files)})")
        masks = ((frame, read_mask(files[int(frame)])) for frame in frames)
        painter = _pixel_painter(table, video, kind)
        sources[video] = "maps" if isinstance(painter, _MapPainter) else "boxes"

        def scored(pairs: Iterable[tuple[int, np.ndarray]], video: str = video
                   ) -> Iterator[tuple[int, np.ndarray]]:
            for frame, mask in pairs:  # pixel AUC on the way, so each mask is read once
                image_hw.setdefault(video, mask.shape)
                painter.add_to(pixel, frame, mask)
                yield frame, mask

        parts.append(GroundTruthRegions.from_video_masks(video, scored(masks), min_area))
    regions = GroundTruthRegions.concat(parts)
    candidates, _ = region_candidates(candidates, kind, image_hw)  # whole-frame NaN boxes
    curves = region_curves(candidates, regions, iou_threshold, alpha)
    result = {
        "rbdc": area_under_fp_curve(curves.fp_per_frame, curves.rbdr, max_fp_per_frame),
        "tbdc": area_under_fp_curve(curves.fp_per_frame, curves.tbdr, max_fp_per_frame),
        "iou_threshold": float(iou_threshold), "alpha": float(alpha),
        "max_fp_per_frame": float(max_fp_per_frame), "n_frames": curves.n_frames,
        "n_regions": curves.n_regions, "n_tracks": curves.n_tracks,
        "n_detections": curves.n_detections, "kind": kind, "pixel_auc": pixel.auc(),
        "pixel_scores": sources,
        "image_hw": {video: [int(h), int(w)] for video, (h, w) in image_hw.items()},
        "regions": regions,
    }
    return result
