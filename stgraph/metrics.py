"""Frame-level evaluation: ROC AUC (micro and macro), equal error rate, Youden operating point.

Conventions used throughout:

- scores are raw, higher = more abnormal; labels are 0 (normal) / 1 (anomalous, the positive class);
- a frame is flagged anomalous when ``score >= threshold`` (as ``sklearn.metrics.roc_curve``);
- labels of a video are indexed by frame number (``labels[t]`` is frame t, as
  ``stgraph.datasets.folders.load_frame_labels`` returns them);
- **micro** AUC pools the frames of all videos into one ROC (the number usually reported for Ped2,
  Avenue, ShanghaiTech); **macro** AUC is the mean of the per-video AUCs. EER and the Youden
  operating point are taken on the pooled frames, since one threshold serves all videos.

Example:
    >>> report = evaluate_frames(table.frame_scores(smooth=5), labels)   # doctest: +SKIP
    >>> report["micro_auc"], report["eer"], report["youden"]["threshold"]  # doctest: +SKIP
"""
from __future__ import annotations

import warnings
from typing import Mapping, Union

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from stgraph.scores import FrameScores

__all__ = ["frame_auc", "micro_auc", "macro_auc", "roc_curve_points", "equal_error_rate", "youden",
           "evaluate_frames", "align_frame_labels"]

FrameScoresLike = Union[FrameScores, np.ndarray]


def _check_pair(scores: np.ndarray, labels: np.ndarray,
                where: str) -> tuple[np.ndarray, np.ndarray]:
    """(scores float64 [T], labels int64 [T]) after checking shapes, finiteness and 0/1 labels."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    if scores.ndim != 1 or labels.ndim != 1:
        raise ValueError(f"{where}: scores and labels must be 1-D, got shapes {scores.shape} "
                         f"and {labels.shape}")
    if scores.shape[0] != labels.shape[0]:
        raise ValueError(f"{where}: {scores.shape[0]} frame scores but {labels.shape[0]} "
                         f"frame labels")
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"{where}: frame scores contain NaN or inf (first at position "
                         f"{int(np.argmin(np.isfinite(scores)))})")
    if labels.size and not np.isin(labels, (0, 1)).all():
        raise ValueError(f"{where}: labels must be 0/1, found values "
                         f"{np.unique(labels)[:10].tolist()}")
    return scores, labels.astype(np.int64)


def _has_both_classes(labels: np.ndarray) -> bool:
    return bool(labels.size) and 0 < labels.sum() < labels.shape[0]


def _require_both_classes(labels: np.ndarray, where: str) -> None:
    if not _has_both_classes(labels):
        present = np.unique(labels).tolist()
        raise ValueError(f"{where}: ROC metrics need normal (0) and anomalous (1) frames, "
                         f"but the labels hold only {present}")


def align_frame_labels(frame_scores: Mapping[str, FrameScoresLike], labels: Mapping[str, np.ndarray]
                       ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Pair each video's frame scores with its labels.

    Args:
        frame_scores: video -> :class:`~stgraph.scores.FrameScores` (its ``frames`` select the
            labels, so unscored frames are left out) or a plain array [T] with one score per label.
        labels: video -> 0/1 array indexed by frame number.

    Returns:
        {video: (scores float64 [T], labels int64 [T])}, videos sorted.

    Raises:
        ValueError: the two mappings cover different videos (all differences listed), a length
            mismatch (names the video and both lengths), a scored frame beyond the labels, NaN/inf
            scores or labels other than 0/1 (each naming the video).
    """
    no_labels = sorted(set(frame_scores) - set(labels))
    no_scores = sorted(set(labels) - set(frame_scores))
    if no_labels or no_scores:
        raise ValueError("frame scores and labels must cover the same videos: "
                         f"videos without labels {no_labels}, videos without scores {no_scores}")
    pairs = {}
    for video in sorted(frame_scores):
        where = f"video {video!r}"
        video_labels = np.asarray(labels[video])
        if video_labels.ndim != 1:
            raise ValueError(f"{where}: labels must be 1-D (one per frame), "
                             f"got shape {video_labels.shape}")
        scores = frame_scores[video]
        if isinstance(scores, FrameScores):
            video_labels = scores.labels_at(video_labels, video)
            scores = scores.scores
        pairs[video] = _check_pair(scores, video_labels, where)
    return pairs


def frame_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC of one video: ``scores`` float [T] against 0/1 ``labels`` [T].

    Raises:
        ValueError: mismatched lengths, NaN scores, non-0/1 labels, or a single label class.
    """
    scores, labels = _check_pair(scores, labels, "frame_auc")
    _require_both_classes(labels, "frame_auc")
    return float(roc_auc_score(labels, scores))


def _per_video_auc(pairs: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """{video: AUC}, NaN for a video whose labels hold a single class."""
    return {video: float(roc_auc_score(lab, sc)) if _has_both_classes(lab) else float("nan")
            for video, (sc, lab) in pairs.items()}


def _mean_over_videos(per_video: Mapping[str, float]) -> float:
    """Mean of the defined per-video AUCs; warns naming the skipped (single-class) videos."""
    skipped = [video for video, auc in per_video.items() if np.isnan(auc)]
    if skipped and len(skipped) == len(per_video):
        warnings.warn(f"macro AUC is NaN: no video has both normal and anomalous frames "
                      f"({skipped})", UserWarning, stacklevel=3)
        return float("nan")
    if skipped:
        warnings.warn(f"macro AUC skips videos whose labels hold a single class: {skipped}",
                      UserWarning, stacklevel=3)
    return float(np.mean([auc for auc in per_video.values() if not np.isnan(auc)]))


def _pooled(pairs: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """All videos' (scores, labels) concatenated."""
    if not pairs:
        return np.zeros(0), np.zeros(0, np.int64)
    return (np.concatenate([sc for sc, _ in pairs.values()]),
            np.concatenate([lab for _, lab in pairs.values()]))


def micro_auc(scores: Mapping[str, FrameScoresLike], labels: Mapping[str, np.ndarray]) -> float:
    """ROC AUC of all frames of all videos pooled (inputs as in :func:`align_frame_labels`)."""
    pooled_scores, pooled_labels = _pooled(align_frame_labels(scores, labels))
    _require_both_classes(pooled_labels, "micro_auc (all videos pooled)")
    return float(roc_auc_score(pooled_labels, pooled_scores))


def macro_auc(scores: Mapping[str, FrameScoresLike], labels: Mapping[str, np.ndarray]) -> float:
    """Mean of the per-video ROC AUCs (inputs as in :func:`align_frame_labels`).

    A video whose labels hold a single class has no AUC: it is skipped with a ``UserWarning``
    naming it; when every video is skipped the result is NaN (with a warning).
    """
    return _mean_over_videos(_per_video_auc(align_frame_labels(scores, labels)))


def roc_curve_points(scores: np.ndarray,
                     labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC of one score array: (fpr [K], tpr [K], thresholds [K]), one point per distinct score.

    Points run from the strictest threshold (``thresholds[0] = inf``: nothing flagged, (0, 0)) to
    the loosest (everything flagged, (1, 1)). Needs both label classes.
    """
    scores, labels = _check_pair(scores, labels, "roc_curve_points")
    _require_both_classes(labels, "roc_curve_points")
    fpr, tpr, thresholds = roc_curve(labels, scores, drop_intermediate=False)
    return fpr, tpr, thresholds


def equal_error_rate(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Equal error rate and its threshold: the point of the ROC where FPR = 1 - TPR (= FNR).

    FPR - FNR grows along the ROC from -1 at (0, 0) to +1 at (1, 1); the EER is where it crosses
    zero, linearly interpolated on the ROC segment that contains the crossing. The threshold is
    interpolated the same way between the segment's two thresholds (when the segment starts at the
    ``inf`` threshold, the other end's threshold is returned).

    Returns:
        (eer in [0, 1], threshold in score units).
    """
    return _eer_on_roc(*roc_curve_points(scores, labels))


def _eer_on_roc(fpr: np.ndarray, tpr: np.ndarray, thresholds: np.ndarray) -> tuple[float, float]:
    """:func:`equal_error_rate` on a ROC [K] from :func:`roc_curve_points`."""
    gap = fpr - (1.0 - tpr)
    after = int(np.argmax(gap >= 0))  # first ROC point at or past the crossing (gap[0] = -1 < 0)
    before = after - 1
    t = -gap[before] / (gap[after] - gap[before])
    eer = fpr[before] + t * (fpr[after] - fpr[before])
    if t == 1.0 or not np.isfinite(thresholds[before]):
        return float(eer), float(thresholds[after])
    return float(eer), float(thresholds[before] + t * (thresholds[after] - thresholds[before]))


def youden(scores: np.ndarray, labels: np.ndarray) -> dict:
    """Operating point maximising Youden's J = TPR - FPR, with its confusion counts.

    This is the test-time threshold the Ano-Graph paper reports TP/FP/TN/FN and accuracy at (ADOC).
    Among thresholds with the same J the highest (fewest alarms) is taken.

    Returns:
        dict(threshold, tpr, fpr, tp, fp, tn, fn, accuracy): frames with ``score >= threshold``
        are flagged; counts are ints, rates and accuracy floats.
    """
    scores, labels = _check_pair(scores, labels, "youden")
    return _youden_on_roc(scores, labels, *roc_curve_points(scores, labels))


def _youden_on_roc(scores: np.ndarray, labels: np.ndarray, fpr: np.ndarray, tpr: np.ndarray,
                   thresholds: np.ndarray) -> dict:
    """:func:`youden` of checked ``scores`` float64 [T] / ``labels`` int64 [T], given their ROC."""
    best = 1 + int(np.argmax((tpr - fpr)[1:]))  # skip the inf threshold (nothing flagged)
    flagged = scores >= thresholds[best]
    anomalous = labels == 1
    tp, fp = int(np.sum(flagged & anomalous)), int(np.sum(flagged & ~anomalous))
    fn, tn = int(np.sum(~flagged & anomalous)), int(np.sum(~flagged & ~anomalous))
    return {"threshold": float(thresholds[best]), "tpr": float(tpr[best]), "fpr": float(fpr[best]),
            "tp": tp, "fp": fp, "tn": tn, "fn": fn, "accuracy": (tp + tn) / labels.shape[0]}


def evaluate_frames(frame_scores: Mapping[str, FrameScoresLike],
                    labels: Mapping[str, np.ndarray]) -> dict:
    """Every frame-level metric at once (inputs as in :func:`align_frame_labels`).

    Returns:
        A dict of plain Python types (``json.dumps`` takes it; an undefined AUC is NaN)::

            micro_auc, macro_auc        floats (macro skips single-class videos, with a warning)
            eer, eer_threshold          pooled equal error rate and its threshold
            youden                      the dict of :func:`youden` on the pooled frames
            per_video                   {video: {"auc": float (NaN if single-class),
                                                 "frames": int, "anomalous": int}}
            n_videos, n_frames, n_anomalous, n_normal

    Raises:
        ValueError: see :func:`align_frame_labels`; also when the pooled labels hold one class only.
    """
    pairs = align_frame_labels(frame_scores, labels)
    per_video_auc = _per_video_auc(pairs)
    scores, pooled_labels = _pooled(pairs)
    _require_both_classes(pooled_labels, "evaluate_frames (all videos pooled)")
    roc = roc_curve(pooled_labels, scores, drop_intermediate=False)  # computed once, used twice
    eer, eer_threshold = _eer_on_roc(*roc)
    n_anomalous = int(pooled_labels.sum())
    return {
        "micro_auc": float(roc_auc_score(pooled_labels, scores)),
        "macro_auc": _mean_over_videos(per_video_auc),
        "eer": eer,
        "eer_threshold": eer_threshold,
        "youden": _youden_on_roc(scores, pooled_labels, *roc),
        "per_video": {video: {"auc": per_video_auc[video], "frames": int(lab.shape[0]),
                              "anomalous": int(lab.sum())} for video, (_, lab) in pairs.items()},
        "n_videos": len(pairs),
        "n_frames": int(pooled_labels.shape[0]),
        "n_anomalous": n_anomalous,
        "n_normal": int(pooled_labels.shape[0]) - n_anomalous,
    }


# Object-level (RBDC/TBDC) and pixel-level metrics live in their own module; re-exported here so
# that ``from stgraph.metrics import rbdc_tbdc`` works like the frame-level metrics.
from stgraph.region_metrics import (GroundTruthRegions, evaluate_masks, pixel_auc,  # noqa: E402
                                    rbdc_tbdc, region_curves)

__all__ += ["GroundTruthRegions", "rbdc_tbdc", "region_curves", "pixel_auc", "evaluate_masks"]
