"""Evaluation report folder: metrics JSON, a Markdown summary and the pictures behind the numbers.

:func:`write_report` writes, into one folder::

    metrics.json            the metrics dict given (frame level, plus "region" when masks were used)
    summary.md              the numbers as Markdown tables, with the pictures linked
    roc.png                 ROC of all frames pooled, with the AUC and the EER point
    region_curves.png       RBDR / TBDR against false positives per frame (with GT regions)
    curves/<video>.png      frame score per video, ground-truth anomalous frames shaded
    examples/*.png          worst false positives (highest-scored normal frames) and missed
                            anomalies (lowest-scored anomalous frames) as frame crops with the
                            scored boxes (and ground-truth regions in magenta) -- only for videos
                            whose frames are given
    heatmaps/<video>.png    for a table with pixel maps: the map of the video's peak frame (the
                            highest frame score among frames with a map), over the frame when
                            its frames are given, with a colour bar

Example frames are chosen on the (reduced, smoothed) frame scores, at most one per ``min_gap``
frames of a video so that a single event does not fill the list. The boxes drawn are the object
rows of the table (all of them), else its patch rows (the ``top_patches`` highest of the frame);
frame rows have no box to draw, so a frame-level table's examples show the whole frame, with its
pixel map blended in when the table has one. Boxes are drawn in the frame coordinates the table
holds: frames must be those that were scored (same size, no resize). Every file is written
atomically.

Example:
    >>> write_report("report/", table, frame_scores, labels, metrics,               # doctest: +SKIP
    ...              videos={"01": "ped2/testing/frames/01"})
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from stgraph.fileio import atomic_write_bytes, atomic_write_text
from stgraph.metrics import align_frame_labels, roc_curve_points
from stgraph.region_metrics import (GroundTruthRegions, RegionCurves, region_candidates,
                                    region_curves)
from stgraph.scores import FrameScores, PixelMaps, ScoreTable

__all__ = ["write_report", "pick_examples", "Example", "read_frames", "crop_window", "crop_around",
           "peak_map_frame"]

GT_COLOR = (255, 0, 255)  # BGR magenta: ground-truth regions in example crops


def _frames_of(scores, n: int) -> np.ndarray:
    """Frame indices [n] of a FrameScores, or 0..n-1 for a plain score array."""
    return scores.frames if isinstance(scores, FrameScores) else np.arange(n)


@dataclass(frozen=True)
class Example:
    """One frame shown in the report: ``kind`` is ``"false_positive"`` or ``"missed"``."""

    kind: str
    video: str
    frame: int
    score: float


def pick_examples(frame_scores: Mapping[str, FrameScores], labels: Mapping[str, np.ndarray],
                  n: int = 5, min_gap: int = 10) -> tuple[list[Example], list[Example]]:
    """The ``n`` worst false positives and the ``n`` worst missed anomalies over all videos.

    False positives are normal frames by decreasing score, missed anomalies anomalous frames by
    increasing score; a frame within ``min_gap`` frames of one already picked in the same video
    (and of the same kind) is skipped.

    Returns:
        (false_positives, missed), each a list of up to ``n`` :class:`Example`.
    """
    pairs = align_frame_labels(frame_scores, labels)
    if not pairs:
        return [], []
    scores = np.concatenate([s for s, _ in pairs.values()])
    truth = np.concatenate([lab for _, lab in pairs.values()])
    videos = np.concatenate([np.full(len(s), v) for v, (s, _) in pairs.items()])
    frames = np.concatenate([_frames_of(frame_scores[v], len(s)) for v, (s, _) in pairs.items()])

    def pick(kind: str, label: int, descending: bool) -> list[Example]:
        rows = np.flatnonzero(truth == label)
        rows = rows[np.argsort(-scores[rows] if descending else scores[rows], kind="stable")]
        chosen: list[Example] = []
        for row in rows:
            if len(chosen) == n:
                break
            video, frame = str(videos[row]), int(frames[row])
            if any(e.video == video and abs(e.frame - frame) < min_gap for e in chosen):
                continue
            chosen.append(Example(kind, video, frame, float(scores[row])))
        return chosen

    return pick("false_positive", 0, True), pick("missed", 1, False)


# ---------------------------------------------------------------------------- frames and crops
def read_frames(path: str | Path, indices: Sequence[int]) -> dict[int, np.ndarray]:
    """BGR images [H, W, 3] uint8 of the frames ``indices`` of a video file or frame folder.

    Frame folders are indexed directly; video files are read once from the start up to the last
    wanted frame. Indices beyond the video are left out of the result.
    """
    import cv2

    from stgraph.io.frames import ImageFolderSource, open_source

    wanted = sorted(set(int(i) for i in indices))
    if not wanted:
        return {}
    source = open_source(path)
    if isinstance(source, ImageFolderSource):
        out = {}
        for index in wanted:
            if 0 <= index < len(source.files):
                image = cv2.imread(str(source.files[index]), cv2.IMREAD_COLOR)
                if image is None:
                    raise FileNotFoundError(f"cannot read frame image: {source.files[index]}")
                out[index] = image
        return out
    out = {}
    for frame in source:
        if frame.index in wanted:
            out[frame.index] = frame.image
        if frame.index >= wanted[-1]:
            break
    return out


def crop_window(shape: tuple[int, int], boxes: np.ndarray, margin: float = 1.0,
                min_size: int = 96) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) pixel window around the union of ``boxes`` [K, 4] xyxy, widened
    by ``margin`` times its size on each side and to at least ``min_size`` pixels a side, clipped
    to an image of ``shape`` (H, W). With no box, the whole image."""
    height, width = int(shape[0]), int(shape[1])
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if boxes.shape[0] == 0:
        return 0, 0, width, height
    x1, y1 = boxes[:, 0].min(), boxes[:, 1].min()
    x2, y2 = boxes[:, 2].max(), boxes[:, 3].max()
    half_w = max((x2 - x1) * (0.5 + margin), min_size / 2)
    half_h = max((y2 - y1) * (0.5 + margin), min_size / 2)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    left, right = int(max(0, math.floor(cx - half_w))), int(min(width, math.ceil(cx + half_w)))
    top, bottom = int(max(0, math.floor(cy - half_h))), int(min(height, math.ceil(cy + half_h)))
    if right <= left or bottom <= top:
        return 0, 0, width, height
    return left, top, right, bottom


def crop_around(image: np.ndarray, boxes: np.ndarray, margin: float = 1.0,
                min_size: int = 96) -> np.ndarray:
    """``image`` [H, W, 3] cut to :func:`crop_window` of ``boxes``."""
    left, top, right, bottom = crop_window(image.shape[:2], boxes, margin, min_size)
    return image[top:bottom, left:right]


def _box_kind(table: ScoreTable) -> str | None:
    """The kind of row drawn as boxes: object rows, else patch rows; None for frame rows only."""
    return next((kind for kind in ("object", "patch") if kind in table.kinds), None)


def _frame_boxes(table: ScoreTable, video: str, frame: int,
                 top_patches: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """(boxes float64 [K, 4], scores float64 [K]) drawn on one frame: its object rows, else its
    ``top_patches`` highest patch rows; none for a table of frame rows only."""
    kind = _box_kind(table)
    if kind is None:
        return np.zeros((0, 4)), np.zeros(0)
    rows = table.objects_in_frame(video, frame, kind=kind)
    boxes = np.stack([rows[c] for c in ("x1", "y1", "x2", "y2")], axis=1).astype(np.float64)
    scores = np.asarray(rows["score"], np.float64)
    if kind == "patch":
        keep = np.argsort(-scores, kind="stable")[:top_patches]
        boxes, scores = boxes[keep], scores[keep]
    return boxes.reshape(-1, 4), scores


def _example_image(example: Example, image: np.ndarray, table: ScoreTable,
                   regions: GroundTruthRegions | None, score_range: tuple[float, float],
                   min_side: int = 240) -> np.ndarray:
    """The crop of one example, enlarged (integer factor, at most 4) to ``min_side`` pixels on its
    short side, with the scored boxes (coloured by score, labelled) and the GT regions drawn; the
    frame's pixel map, if any, is blended in."""
    import cv2

    from stgraph.viz import blend_heatmap, draw_boxes

    maps = table.pixel_maps.get(example.video)
    score_map = None if maps is None else maps.map_of(example.frame)
    if score_map is not None:
        image = blend_heatmap(image, score_map, float(maps.maps.min()), float(maps.maps.max()))
    boxes, scores = _frame_boxes(table, example.video, example.frame)
    gt_boxes = np.zeros((0, 4))
    if regions is not None and len(regions):
        here = (regions.video == example.video) & (regions.frame == example.frame)
        gt_boxes = regions.boxes[here]
    if example.kind == "false_positive":
        focus = boxes[np.argmax(scores)][None] if len(scores) else boxes
    else:
        focus = gt_boxes
    left, top, right, bottom = crop_window(image.shape[:2], focus)
    factor = int(min(4, max(1, math.ceil(min_side / min(bottom - top, right - left)))))
    crop = cv2.resize(image[top:bottom, left:right], None, fx=factor, fy=factor,
                      interpolation=cv2.INTER_NEAREST)
    offset = np.array([left, top, left, top], np.float64)
    inside = ((boxes[:, 2] > left) & (boxes[:, 0] < right) & (boxes[:, 3] > top)
              & (boxes[:, 1] < bottom))  # boxes out of the crop would leave stray labels
    boxes, scores = boxes[inside], scores[inside]
    drawn = draw_boxes(crop, (boxes - offset) * factor, scores,
                       labels=[f"{s:.3g}" for s in scores], vmin=score_range[0],
                       vmax=score_range[1])
    for x1, y1, x2, y2 in np.round((gt_boxes - offset) * factor).astype(np.int64).tolist():
        cv2.rectangle(drawn, (x1, y1), (x2, y2), GT_COLOR, 1)
    return np.concatenate([drawn, _crop_legend(drawn.shape[1])], axis=0)


#: Pixel rows of the legend strip under every example crop.
LEGEND_HEIGHT = 34


def _crop_legend(width: int, height: int = LEGEND_HEIGHT) -> np.ndarray:
    """uint8 [height, width, 3] BGR strip under a crop: what the magenta and the coloured boxes
    mean."""
    import cv2

    from stgraph.viz import fit_text_scale, score_colors

    strip = np.full((height, width, 3), 25, np.uint8)
    cv2.rectangle(strip, (4, 4), (16, 14), GT_COLOR, 1)
    text = "ground truth region"
    cv2.putText(strip, text, (22, 13), cv2.FONT_HERSHEY_SIMPLEX,
                fit_text_scale(text, width - 26, 0.38), (235, 235, 235), 1, cv2.LINE_AA)
    low, high = score_colors(np.array([0.0, 1.0])).tolist()
    cv2.rectangle(strip, (4, 20), (9, 30), low, 1)
    cv2.rectangle(strip, (11, 20), (16, 30), high, 1)
    text = "boxes: anomaly score, green low, red high"
    cv2.putText(strip, text, (22, 29), cv2.FONT_HERSHEY_SIMPLEX,
                fit_text_scale(text, width - 26, 0.38), (235, 235, 235), 1, cv2.LINE_AA)
    return strip


def peak_map_frame(frame_scores: FrameScores, maps: PixelMaps) -> int:
    """The frame with a pixel map whose frame score is highest (the earliest on a tie)."""
    has_map = np.isin(frame_scores.frames, maps.frames)
    if not has_map.any():
        return int(maps.frames[0])
    candidates = np.flatnonzero(has_map)
    return int(frame_scores.frames[candidates[np.argmax(frame_scores.scores[candidates])]])


def _plot_heatmap(video: str, frame: int, frame_score: float | None, maps: PixelMaps,
                  image: np.ndarray | None, regions: GroundTruthRegions | None,
                  path: Path) -> Path:
    """PNG of one frame's pixel map (over the frame image when given) with a colour bar."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch, Rectangle

    from stgraph.viz import HEATMAP_CMAP, blend_heatmap, heatmap_colors, save_figure

    vmin, vmax = float(maps.maps.min()), float(maps.maps.max())
    score_map = maps.map_of(frame)
    if image is not None:
        shown = blend_heatmap(image, score_map, vmin, vmax)[..., ::-1]  # RGB for matplotlib
        height, width = image.shape[:2]
    else:
        shown = heatmap_colors(score_map, vmin, vmax)
        height, width = maps.shape
    aspect = width / height
    fig = Figure(figsize=(min(9.0, 2.2 + 3.6 * aspect), 4.2))
    ax = fig.add_subplot()
    ax.imshow(shown, interpolation="nearest")
    ax.set_axis_off()
    if regions is not None and len(regions) and image is not None:
        here = (regions.video == video) & (regions.frame == frame)
        for x1, y1, x2, y2 in regions.boxes[here]:
            ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False,
                                   edgecolor="magenta", lw=1.2))
        if here.any():
            ax.legend(handles=[Patch(fill=False, edgecolor="magenta", label="ground truth")],
                      loc="lower right", fontsize=7, framealpha=0.8)
    score = "" if frame_score is None else f", frame score {frame_score:.4g}"
    ax.set_title(f"video {video}, frame {frame}{score}\npixel map {maps.shape[0]}x{maps.shape[1]}"
                 + (f" over the {height}x{width} frame" if image is not None else ""), fontsize=9)
    bar = fig.colorbar(ScalarMappable(Normalize(vmin, vmax), HEATMAP_CMAP), ax=ax,
                       fraction=0.046, pad=0.03)
    bar.set_label("pixel anomaly score", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    return save_figure(fig, path)


def _write_png(path: Path, image: np.ndarray) -> Path:
    import cv2

    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise OSError(f"could not encode PNG for {path}")
    return atomic_write_bytes(path, encoded.tobytes())


# ---------------------------------------------------------------------------- plots
def _plot_roc(scores: np.ndarray, labels: np.ndarray, metrics: Mapping, path: Path) -> Path:
    from matplotlib.figure import Figure

    from stgraph.viz import save_figure

    fpr, tpr, _ = roc_curve_points(scores, labels)
    fig = Figure(figsize=(4.5, 4.5))
    ax = fig.add_subplot()
    ax.plot(fpr, tpr, color="tab:blue", lw=1.5,
            label=f"frames pooled, AUC {100 * metrics['micro_auc']:.2f}")
    ax.plot([0, 1], [0, 1], color="0.6", ls=":", lw=1)
    eer = metrics.get("eer")
    if eer is not None:
        ax.plot([eer], [1 - eer], "o", color="tab:red", label=f"EER {100 * eer:.2f}")
    ax.set_xlabel("false positive rate (frames)")
    ax.set_ylabel("true positive rate (frames)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_title("frame-level ROC")
    ax.legend(loc="lower right", fontsize=8)
    return save_figure(fig, path)


def _plot_region_curves(curves: RegionCurves, region: Mapping, path: Path) -> Path:
    from matplotlib.figure import Figure

    from stgraph.viz import save_figure

    limit = region["max_fp_per_frame"]
    fp = np.append(curves.fp_per_frame, max(limit, curves.fp_per_frame[-1]))  # flat to the limit
    rbdr, tbdr = np.append(curves.rbdr, curves.rbdr[-1]), np.append(curves.tbdr, curves.tbdr[-1])
    fig = Figure(figsize=(5.0, 4.0))
    ax = fig.add_subplot()
    ax.plot(fp, rbdr, color="tab:blue", lw=1.5,
            label=f"RBDR (RBDC {100 * region['rbdc']:.2f})")
    ax.plot(fp, tbdr, color="tab:orange", lw=1.5,
            label=f"TBDR (TBDC {100 * region['tbdc']:.2f})")
    ax.set_xlim(0, limit)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false positives per frame")
    ax.set_ylabel("detection rate")
    rows = f", {region['kind']} rows" if region.get("kind") else ""
    ax.set_title(f"region / track detection (IoU >= {region['iou_threshold']:g}{rows})")
    ax.legend(loc="lower right", fontsize=8)
    return save_figure(fig, path)


# ---------------------------------------------------------------------------- markdown
def _percent(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{100 * value:.2f}"


def _summary_markdown(metrics: Mapping, curve_files: Mapping[str, str], has_region_plot: bool,
                      examples: Sequence[tuple[Example, str | None]],
                      videos_without_frames: Sequence[str],
                      heatmaps: Sequence[tuple[str, int, str]] = ()) -> str:
    lines = ["# stgraph evaluation report", "", "## Frame level", "",
             "| metric | value |", "|---|---|",
             f"| micro AUC (frames pooled) | {_percent(metrics.get('micro_auc'))} |",
             f"| macro AUC (mean over videos) | {_percent(metrics.get('macro_auc'))} |",
             f"| EER | {_percent(metrics.get('eer'))} |"]
    youden = metrics.get("youden")
    if youden:
        lines.append("| Youden threshold: TP / FP / TN / FN, accuracy | {threshold:.4g}: "
                     "{tp} / {fp} / {tn} / {fn}, {accuracy:.4f} |".format(**youden))
    lines.append(f"| frames (anomalous / normal) | {metrics.get('n_frames')} "
                 f"({metrics.get('n_anomalous')} / {metrics.get('n_normal')}) |")
    lines += ["", "![ROC](roc.png)", ""]
    region = metrics.get("region")
    if region:
        lines += ["## Object level (masks)", "", "| metric | value |", "|---|---|",
                  f"| RBDC | {_percent(region.get('rbdc'))} |",
                  f"| TBDC | {_percent(region.get('tbdc'))} |",
                  f"| pixel AUC | {_percent(region.get('pixel_auc'))} |",
                  f"| ground-truth regions / tracks | {region.get('n_regions')} / "
                  f"{region.get('n_tracks')} |",
                  f"| IoU for a hit, track fraction alpha, FP/frame limit | "
                  f"{region.get('iou_threshold')}, {region.get('alpha')}, "
                  f"{region.get('max_fp_per_frame')} |"]
        if region.get("kind"):
            lines.append(f"| candidate regions | {region['kind']} rows |")
        sources = region.get("pixel_scores") or {}
        if sources:
            by_source = {what: [v for v, s in sources.items() if s == what]
                         for what in ("maps", "boxes")}
            lines.append("| pixel scores from | " + "; ".join(
                f"{what}: {', '.join(videos)}" for what, videos in by_source.items() if videos)
                + " |")
        lines.append("")
        if has_region_plot:
            lines += ["![region curves](region_curves.png)", ""]
    lines += ["## Per video", "", "| video | frames | anomalous | AUC | score curve |",
              "|---|---|---|---|---|"]
    for video, entry in metrics.get("per_video", {}).items():
        link = f"[png]({curve_files[video]})" if video in curve_files else ""
        lines.append(f"| {video} | {entry['frames']} | {entry['anomalous']} | "
                     f"{_percent(entry['auc'])} | {link} |")
    for kind, title in (("false_positive", "Worst false positives (highest-scored normal frames)"),
                        ("missed", "Missed anomalies (lowest-scored anomalous frames)")):
        chosen = [(e, f) for e, f in examples if e.kind == kind]
        lines += ["", f"## {title}", ""]
        if not chosen:
            lines.append("none")
        for example, file in chosen:
            text = f"video {example.video} frame {example.frame}, score {example.score:.4g}"
            lines.append(f"- {text}" + (f"  \n  ![{text}]({file})" if file else ""))
    if heatmaps:
        lines += ["", "## Pixel maps (peak frame of each video)", ""]
        lines += [f"- video {video} frame {frame}  \n  ![pixel map {video}]({file})"
                  for video, frame, file in heatmaps]
    if videos_without_frames:
        lines += ["", f"No frames given for videos {list(videos_without_frames)}: no crops for "
                      "them (pass --video-root)."]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- entry point
def _json_ready(value):
    """Plain JSON types; NaN and inf become null (strict JSON)."""
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def _safe_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)


def write_report(out_dir: str | Path, table: ScoreTable, frame_scores: Mapping[str, FrameScores],
                 labels: Mapping[str, np.ndarray], metrics: Mapping,
                 regions: GroundTruthRegions | None = None,
                 videos: Mapping[str, str | Path] | None = None,
                 n_examples: int = 5, min_gap: int = 10) -> dict[str, Path]:
    """Write the report folder (see the module docstring).

    Args:
        out_dir: folder to write (created; existing files of the same names are replaced).
        table: the scores: its boxes are drawn in the example crops, its pixel maps make the
            heatmaps.
        frame_scores: {video: FrameScores} that ``metrics`` was computed from.
        labels: {video: 0/1 frame labels indexed by frame number}.
        metrics: ``stgraph.metrics.evaluate_frames``'s dict, optionally with a ``"region"`` entry
            (``stgraph.region_metrics.evaluate_masks``'s dict without ``regions``).
        regions: ground-truth regions, for the region curves and the crops.
        videos: {video name: video file or frame folder} for the example crops and heatmaps
            (a ValueError, before anything is written, when it names none of the scored videos).
        n_examples: crops per kind (false positives, missed anomalies).
        min_gap: frames between two examples of one kind in one video.

    Returns:
        {what: path} of every file written (``metrics``, ``summary``, ``roc``, ``curve:<video>``,
        ``region_curves``, ``heatmap:<video>``, ``example:<kind>:<k>``).
    """
    if videos and not any(video in videos for video in frame_scores):
        raise ValueError(f"videos names none of the scored videos {sorted(frame_scores)[:5]} "
                         f"(it has {sorted(videos)[:5]}): no example crops could be drawn")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    written["metrics"] = atomic_write_text(out / "metrics.json",
                                           json.dumps(_json_ready(metrics), indent=2))
    pairs = align_frame_labels(frame_scores, labels)
    pooled_scores = np.concatenate([s for s, _ in pairs.values()])
    pooled_labels = np.concatenate([lab for _, lab in pairs.values()])
    written["roc"] = _plot_roc(pooled_scores, pooled_labels, metrics, out / "roc.png")

    from stgraph.viz import plot_score_curve

    threshold = metrics.get("youden", {}).get("threshold")
    curve_files = {}
    for video, (scores, video_labels) in pairs.items():
        frames = _frames_of(frame_scores[video], len(scores))
        name = f"curves/{_safe_name(video)}.png"
        written[f"curve:{video}"] = plot_score_curve(frames, scores, video_labels, path=out / name,
                                                     title=f"{video}: frame anomaly score",
                                                     threshold=threshold)
        curve_files[video] = name
    region = metrics.get("region")
    has_region_plot = bool(region) and regions is not None and len(regions) > 0
    if has_region_plot:
        candidates, _ = region_candidates(table, region.get("kind"), region.get("image_hw"))
        curves = region_curves(candidates, regions, region["iou_threshold"], region["alpha"])
        written["region_curves"] = _plot_region_curves(curves, region, out / "region_curves.png")

    false_positives, missed = pick_examples(frame_scores, labels, n_examples, min_gap)
    videos = dict(videos or {})
    box_kind = _box_kind(table)
    drawn_scores = (np.asarray(table.select(kind=box_kind)["score"], np.float64)
                    if box_kind else np.zeros(0))
    score_range = ((float(drawn_scores.min()), float(drawn_scores.max())) if len(drawn_scores)
                   else (0.0, 1.0))
    peaks = {video: peak_map_frame(frame_scores[video], maps)
             for video, maps in table.pixel_maps.items() if video in frame_scores}
    needed: dict[str, list[int]] = {video: [frame] for video, frame in peaks.items()}
    for example in false_positives + missed:
        needed.setdefault(example.video, []).append(example.frame)
    images = {video: read_frames(videos[video], frames)
              for video, frames in needed.items() if video in videos}

    heatmaps = []
    for video, frame in peaks.items():
        fs = frame_scores[video]
        at = np.flatnonzero(fs.frames == frame)
        name = f"heatmaps/{_safe_name(video)}.png"
        written[f"heatmap:{video}"] = _plot_heatmap(
            video, frame, float(fs.scores[at[0]]) if at.size else None, table.pixel_maps[video],
            images.get(video, {}).get(frame), regions, out / name)
        heatmaps.append((video, frame, name))

    examples: list[tuple[Example, str | None]] = []
    for example in false_positives + missed:
        k = sum(e.kind == example.kind for e, _ in examples)  # rank within its kind
        image = images.get(example.video, {}).get(example.frame)
        if image is None:
            examples.append((example, None))
            continue
        name = (f"examples/{example.kind}_{k:02d}_{_safe_name(example.video)}_"
                f"{example.frame:06d}.png")
        written[f"example:{example.kind}:{k}"] = _write_png(
            out / name, _example_image(example, image, table, regions, score_range))
        examples.append((example, name))
    without = sorted(video for video in needed if video not in videos)
    written["summary"] = atomic_write_text(out / "summary.md", _summary_markdown(
        metrics, curve_files, has_region_plot, examples, without, heatmaps))
    return written
