"""One self-contained HTML page of an evaluation: ``stgraph eval --report DIR --html``.

The page (``DIR/report.html``) opens from disk in any browser, with no server and no network:
its script and style are inlined, every number and picture is embedded as JSON (pictures as
base64 JPEG / PNG), charts are plain SVG drawn by a small vanilla-JS script
(``stgraph/web/report.js``). It shows:

- per video, the frame-score curve with the ground-truth anomalous frames shaded, and a
  threshold slider that recounts TP / FP / TN / FN (all videos and the shown video) and redraws
  the alarm segments (runs of frames at or above the threshold) as it moves; the slider starts
  at the Youden threshold of the metrics, and a frame is flagged when ``score >= threshold``
  (as :mod:`stgraph.metrics` counts);
- clicking the curve (or the arrow keys) shows that frame with its boxes coloured by score
  (object rows, else patch rows; frame rows have no box), the ground-truth regions in magenta
  when masks were given, and its pixel map as a heatmap when the table has one;
- the worst false positives and the missed anomalies (:func:`stgraph.report.pick_examples`);
- clicking a box selects the object: its graph neighbourhood and "why this object" explanation
  (:func:`stgraph.explain.explain_nodes`, exact leave-one-edge-out) when a graph model was given
  and explained that frame; otherwise the boxes near it in its own and the neighbouring frames.

**Size.** Frame pictures are downsampled (``thumb_width`` pixels wide) JPEGs within a byte
budget (``max_image_bytes``, base64 counted, a hard bound): the frames of the examples and each
video's peak frame first, then every k-th frame with k chosen so that the rest fits. A clicked
frame without a picture shows the nearest frame with one (the page says which). Rows are
embedded for every frame up to ``max_rows`` rows, beyond that only for the frames with a
picture (patch tables: above 20,000 rows).

Example:
    >>> write_html_report("report/report.html", table, frame_scores, labels,   # doctest: +SKIP
    ...                   metrics, videos={"01": "ped2/testing/frames/01"})
"""
from __future__ import annotations

import base64
import html
import json
import math
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from stgraph.fileio import atomic_write_text
from stgraph.metrics import align_frame_labels
from stgraph.region_metrics import GroundTruthRegions
from stgraph.report import Example, _box_kind, _json_ready, pick_examples, read_frames
from stgraph.scores import FrameScores, ScoreTable

__all__ = ["write_html_report", "report_data", "render_html", "explain_frames",
           "DEFAULT_IMAGE_BYTES"]

#: Default byte budget of the embedded frame pictures (base64 size).
DEFAULT_IMAGE_BYTES = 12_000_000
_PALETTE_STOPS = 32


def _palette(cmap: str) -> list[list[int]]:
    """``_PALETTE_STOPS`` RGB stops of a matplotlib colormap (the page interpolates them)."""
    from matplotlib import colormaps

    rgb = colormaps[cmap](np.linspace(0, 1, _PALETTE_STOPS))[:, :3]
    return np.round(rgb * 255).astype(int).tolist()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _jpeg(image: np.ndarray, width: int, quality: int) -> str:
    """base64 JPEG of a BGR image [H, W, 3] scaled to ``width`` pixels wide (never enlarged)."""
    import cv2

    height, full = image.shape[:2]
    if full > width:
        image = cv2.resize(image, (width, max(1, round(height * width / full))),
                           interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise OSError("could not encode a JPEG thumbnail")
    return _b64(encoded.tobytes())


def _heatmap_png(score_map: np.ndarray, vmin: float, vmax: float) -> str:
    """base64 PNG of a pixel map [h, w] on the heatmap colormap (at the map's own size)."""
    import cv2

    from stgraph.viz import heatmap_colors

    rgb = heatmap_colors(np.asarray(score_map, np.float32), vmin, vmax)
    ok, encoded = cv2.imencode(".png", np.round(rgb[..., ::-1] * 255).astype(np.uint8))
    if not ok:
        raise OSError("could not encode a heatmap PNG")
    return _b64(encoded.tobytes())


def _rounded(values: np.ndarray, digits: int) -> list:
    return [round(float(v), digits) for v in np.asarray(values, np.float64)]


def _significant(values: np.ndarray, digits: int = 6) -> list:
    return [float(f"{v:.{digits}g}") for v in np.asarray(values, np.float64)]


def _frame_rows(table: ScoreTable, video: str, kind: str | None,
                keep_frames: np.ndarray | None) -> dict[str, Any]:
    """Columns of one video's ``kind`` rows (only of ``keep_frames`` when given)."""
    empty = {"frame": [], "id": [], "box": [], "score": [], "cls": []}
    if kind is None:
        return empty
    rows = table.select(video, kind=kind)
    frames = np.asarray(rows["frame"])
    keep = np.ones(frames.shape[0], bool) if keep_frames is None else np.isin(frames, keep_frames)
    if not keep.any():
        return empty
    boxes = np.stack([np.asarray(rows[c])[keep] for c in ("x1", "y1", "x2", "y2")], axis=1)
    return {"frame": frames[keep].tolist(), "id": np.asarray(rows["object_id"])[keep].tolist(),
            "box": _rounded(boxes.reshape(-1), 1), "score": _significant(rows["score"][keep]),
            "cls": [str(c) for c in np.asarray(rows["class_name"])[keep]]}


def _image_hw(table: ScoreTable, video: str) -> list[int] | None:
    """(H, W) of a video's frames from its frame rows' boxes (None when unknown)."""
    rows = table.select(video, kind="frame") if "frame" in table.kinds else None
    if rows is not None and len(rows) and np.isfinite(rows["x2"][0]):
        return [int(round(float(rows["y2"][0]))), int(round(float(rows["x2"][0])))]
    return None


def _choose_picture_frames(frame_scores: Mapping[str, FrameScores], priority: Mapping[str, set],
                           budget: int, cost: float) -> dict[str, np.ndarray]:
    """Frames that get a picture, per video: ``priority`` frames plus every k-th frame, with k
    the smallest stride whose pictures (``cost`` bytes each) fit in ``budget`` bytes."""
    n_priority = sum(len(p) for p in priority.values())
    room = max(0.0, budget - n_priority * cost)
    n_all = sum(len(fs) for fs in frame_scores.values())
    stride = max(1, math.ceil(n_all * cost / room)) if room > cost else None
    out = {}
    for video, fs in frame_scores.items():
        chosen = set(priority.get(video, ()))
        if stride is not None:
            chosen |= set(fs.frames[::stride].tolist())
        out[video] = np.array(sorted(chosen), np.int64)
    return out


def explain_frames(model_dir: str | Path, videos: Mapping[str, str | Path],
                   frames: Mapping[str, Sequence[int]], top_k: int = 8,
                   cache_dir: str | Path | None = None) -> tuple[dict[str, dict], str]:
    """Explanations of every object of some frames, with the pipeline saved in ``model_dir``.

    Each video is re-analysed (detector and features, from the cache when ``cache_dir`` holds
    them), the model's centred windows are rebuilt, and the objects of the chosen frames are
    explained on their window (:func:`stgraph.explain.explain_nodes`).

    Returns:
        ``({"video/frame/object_id": {"score": float, "n_edges": int, "edges": [[neighbour_frame,
        neighbour_object, type, weight, delta, into_object, source_frame, source_object],
        ...]}}, note)`` with the ``top_k`` strongest edges of each object (an edge runs from
        its source into the object, or into a neighbour, whose degree it changes); ``note``
        says what was (not) explained.
    """
    from stgraph.explain import EDGE_TYPE_NAMES, explain_nodes
    from stgraph.graphs.window import CentredWindows
    from stgraph.models.anograph import with_features
    from stgraph.models.late_fusion import object_member
    from stgraph.pipeline import Pipeline

    pipe = Pipeline.load(model_dir, cache_dir=cache_dir, progress=False)
    model = pipe.model
    name = type(model).__name__
    # a late fusion explains its objects by the member whose object rows it keeps
    model = object_member(model) or model
    if not (hasattr(model, "graph_builder") and hasattr(model, "score_embeddings")):
        return {}, f"{name} scores without an object graph: no per-object explanation"
    out: dict[str, dict] = {}
    for video, wanted in frames.items():
        if video not in videos or not wanted:
            continue
        detections = with_features(pipe.extract(videos[video]), model.n_features_in_,
                                   f"video {video!r}")
        fps = pipe.source(videos[video]).fps
        windows = CentredWindows(model.graph_builder(), model.window_radius_for(fps),
                                 model.n_features_in_)
        wanted = set(int(f) for f in wanted)
        released = (item for frame in detections for item in windows.push(frame))
        for item in [*released, *windows.flush()]:
            frame = int(item.detections.frame_index)
            if frame not in wanted or not len(item.rows):
                continue
            node_frame = item.graph.frame.numpy()
            node_object = item.graph.object_id.numpy()
            for explanation in explain_nodes(model, item.graph, item.rows.tolist()):
                top = explanation.top(top_k)
                edges = [[int(f), int(o), EDGE_TYPE_NAMES.get(int(t), str(int(t))),
                          round(float(w), 4), float(f"{d:.4g}"), bool(tg == explanation.node),
                          int(node_frame[src]), int(node_object[src])]
                         for f, o, t, w, d, tg, src in zip(
                             top.neighbour_frame, top.neighbour_object, top.edge_type,
                             top.weight, top.delta, top.target, top.source)]
                out[f"{video}/{frame}/{explanation.object_id}"] = {
                    "score": float(f"{explanation.score:.6g}"), "edges": edges,
                    "n_edges": len(explanation)}
    n_frames = len({key.rsplit("/", 1)[0] for key in out})
    return out, (f"{name}: exact leave-one-edge-out explanations of every object of {n_frames} "
                 f"frame(s) (the examples and each video's peak frame)")


def report_data(table: ScoreTable, frame_scores: Mapping[str, FrameScores],
                labels: Mapping[str, np.ndarray], metrics: Mapping,
                regions: GroundTruthRegions | None = None,
                videos: Mapping[str, str | Path] | None = None,
                explanations: Mapping[str, dict] | None = None, explain_note: str = "",
                n_examples: int = 5, min_gap: int = 10,
                max_image_bytes: int = DEFAULT_IMAGE_BYTES, thumb_width: int = 240,
                jpeg_quality: int = 70, max_rows: int = 200_000,
                title: str = "stgraph evaluation report") -> dict[str, Any]:
    """Everything the page shows, as a JSON-ready dict (see the module docstring).

    Args:
        table, frame_scores, labels, metrics, regions, videos, n_examples, min_gap: as for
            :func:`stgraph.report.write_report`.
        explanations, explain_note: :func:`explain_frames`'s result (optional).
        max_image_bytes: budget of the embedded pictures (base64 bytes), thumbnails and pixel
            maps together.
        thumb_width: width of the frame pictures, pixels (never enlarged).
        jpeg_quality: JPEG quality of the frame pictures (1..100).
        max_rows: rows embedded for every frame up to this many; beyond it only the rows of the
            frames with a picture.
    """
    if max_image_bytes < 0 or thumb_width < 8 or not 1 <= jpeg_quality <= 100:
        raise ValueError("max_image_bytes must be >= 0, thumb_width >= 8 and jpeg_quality in "
                         f"1..100; got {max_image_bytes}, {thumb_width}, {jpeg_quality}")
    pairs = align_frame_labels(frame_scores, labels)
    false_positives, missed = pick_examples(frame_scores, labels, n_examples, min_gap)
    examples: list[Example] = false_positives + missed
    videos = dict(videos or {})
    box_kind = _box_kind(table)
    box_scores = (np.asarray(table.select(kind=box_kind)["score"], np.float64) if box_kind
                  else np.zeros(0))
    box_range = ([float(box_scores.min()), float(box_scores.max())] if box_scores.size
                 else [0.0, 1.0])
    peaks = {video: int(fs.frames[np.argmax(fs.scores)]) for video, fs in frame_scores.items()
             if video in pairs and len(fs)}
    priority: dict[str, set] = {video: {frame} for video, frame in peaks.items()}
    for example in examples:
        priority.setdefault(example.video, set()).add(example.frame)

    # Cost of one picture: measured on the first priority frame that can be read.
    shown = {v: fs for v, fs in frame_scores.items() if v in pairs and v in videos}
    probe_cost = 0.0
    for video in shown:
        first = read_frames(videos[video], [min(priority.get(video, {0}))])
        if first:
            probe_cost = len(_jpeg(next(iter(first.values())), thumb_width, jpeg_quality))
            break
    map_cost = 0.0
    for video, maps in table.pixel_maps.items():
        map_cost = max(map_cost, len(_heatmap_png(maps.maps[0], 0.0, 1.0)) * 1.2)
    cost = probe_cost + (map_cost if table.pixel_maps else 0.0)
    picture_frames = (_choose_picture_frames(shown, priority, max_image_bytes, cost) if cost
                      else {})
    n_rows_total = len(table.select(kind=box_kind)) if box_kind else 0
    rows_everywhere = n_rows_total <= max_rows and box_kind != "patch" or n_rows_total <= 20_000

    # Pictures: every video's priority frames first (a hard byte bound), then the strided ones.
    used = 0
    pictures: dict[str, dict[str, str]] = {video: {} for video in pairs}
    heatmaps: dict[str, dict[str, str]] = {video: {} for video in pairs}
    image_hw: dict[str, list[int]] = {}
    for first_pass in (True, False):
        for video in pairs:
            if video not in videos:
                continue
            wanted = [f for f in picture_frames.get(video, np.zeros(0, np.int64)).tolist()
                      if (f in priority.get(video, ())) == first_pass]
            images = read_frames(videos[video], wanted)
            maps = table.pixel_maps.get(video)
            for frame in sorted(images):
                image_hw.setdefault(video, list(images[frame].shape[:2]))
                picture = _jpeg(images[frame], thumb_width, jpeg_quality)
                score_map = maps.map_of(frame) if maps is not None else None
                heat_png = (_heatmap_png(score_map, float(maps.maps.min()),
                                         float(maps.maps.max()))
                            if score_map is not None else "")
                if used + len(picture) + len(heat_png) > max_image_bytes:
                    continue
                pictures[video][str(frame)] = picture
                used += len(picture)
                if heat_png:
                    heatmaps[video][str(frame)] = heat_png
                    used += len(heat_png)
            del images

    out_videos = []
    for video, (scores, video_labels) in pairs.items():
        fs = frame_scores[video]
        thumbs, heat = pictures[video], heatmaps[video]
        maps = table.pixel_maps.get(video)
        hw = image_hw.get(video) or _image_hw(table, video)
        picture_width = min(thumb_width, hw[1]) if hw else thumb_width
        keep = None if rows_everywhere else np.array(sorted(int(f) for f in thumbs), np.int64)
        here = regions is not None and len(regions) and (regions.video == video)
        gt: dict[str, list] = {}
        if regions is not None and len(regions) and np.any(here):
            for frame, box in zip(regions.frame[here], regions.boxes[here]):
                gt.setdefault(str(int(frame)), []).append(_rounded(box, 1))
        per_video = metrics.get("per_video", {}).get(video, {})
        auc = per_video.get("auc")
        out_videos.append({
            "name": video, "frames": fs.frames.tolist(), "scores": [float(s) for s in scores],
            "labels": np.asarray(video_labels, np.int64).tolist(),
            "auc": None if auc is None or not math.isfinite(auc) else float(auc),
            "hw": hw, "thumb_scale": (picture_width / hw[1]) if hw else None,
            "thumbs": thumbs, "maps": heat,
            "map_range": ([float(maps.maps.min()), float(maps.maps.max())] if maps is not None
                          else None),
            "rows": _frame_rows(table, video, box_kind, keep), "rows_all_frames": keep is None,
            "gt": gt, "peak": peaks.get(video)})
    pooled = np.concatenate([s for s, _ in pairs.values()]) if pairs else np.zeros(1)
    youden = metrics.get("youden") or {}
    threshold = youden.get("threshold", float(np.median(pooled)))
    return _json_ready({
        "format": "stgraph.html_report", "version": 1, "title": title,
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "metrics": {k: v for k, v in metrics.items() if k != "per_video"},
        "threshold": float(threshold), "score_min": float(pooled.min()),
        "score_max": float(pooled.max()), "box_kind": box_kind, "box_range": box_range,
        "kinds": list(table.kinds), "palette": _palette("RdYlGn_r"),
        "heat_palette": _palette("inferno"), "videos": out_videos,
        "examples": [{"kind": e.kind, "video": e.video, "frame": e.frame, "score": e.score}
                     for e in examples],
        "explanations": dict(explanations or {}), "explain_note": explain_note,
        "image_bytes": used, "image_budget": int(max_image_bytes),
        "videos_without_frames": sorted(v for v in pairs if v not in videos)})


def _asset(name: str) -> str:
    return resources.files("stgraph.web").joinpath(name).read_text(encoding="utf-8")


def render_html(data: Mapping[str, Any]) -> str:
    """The page: the template with the style, the script and ``data`` (JSON) inlined."""
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False)
    payload = payload.replace("<", "\\u003c")  # no "</script>" or "<!--" inside the element
    page = _asset("report.html")
    for marker, text in (("/*STYLE*/", _asset("report.css")), ("/*DATA*/", payload),
                         ("/*SCRIPT*/", _asset("report.js"))):
        page = page.replace(marker, text, 1)
    return page.replace("{{TITLE}}", html.escape(str(data.get("title", "stgraph report"))), 1)


def write_html_report(path: str | Path, table: ScoreTable, frame_scores: Mapping[str, FrameScores],
                      labels: Mapping[str, np.ndarray], metrics: Mapping,
                      regions: GroundTruthRegions | None = None,
                      videos: Mapping[str, str | Path] | None = None,
                      **options: Any) -> tuple[Path, dict[str, Any]]:
    """Write the page to ``path`` atomically; ``options`` go to :func:`report_data`.

    Returns:
        (path, summary) with ``bytes`` (page size), ``image_bytes``, ``pictures`` (frames with
        a picture) and ``explained`` (objects with an explanation).
    """
    data = report_data(table, frame_scores, labels, metrics, regions, videos, **options)
    page = render_html(data)
    written = atomic_write_text(path, page)
    return written, {"bytes": len(page.encode("utf-8")), "image_bytes": data["image_bytes"],
                     "pictures": sum(len(v["thumbs"]) for v in data["videos"]),
                     "explained": len(data["explanations"])}
