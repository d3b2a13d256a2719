"""``stgraph watch``: live scoring of a video or camera with overlay, alarms and score log.

Headless by default: it writes files as frames are scored,

- ``out``: overlay video (boxes coloured by score, frame-score curve, alarm banner, FPS);
- ``events``: alarm events as JSON lines, each line flushed when the event closes;
- ``scores``: every object's score as a ScoreTable CSV (:meth:`ScoreTable.read_csv` reads it);

and ``show`` opens a window when a display exists ('q' quits). Ctrl-C (SIGINT) stops reading,
scores the frames still in the window, closes the open alarm and finishes every file, so all
outputs are complete and readable. The overlay video and the scores CSV are written to temporary
files next to their targets and renamed when finished; the events file is appended line by line.
"""
from __future__ import annotations

import contextlib
import csv
import logging
import math
import os
import signal
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, Iterator

import cv2
import numpy as np

from stgraph.alarms import (DEFAULT_QUANTILE, AlarmTracker, EventWriter, default_threshold,
                            object_score_levels)
from stgraph.fileio import atomic_path
from stgraph.scores import COLUMNS, frame_csv_row, object_csv_rows
from stgraph.stream import FrameResult, analysed_stream

logger = logging.getLogger(__name__)

__all__ = ["watch", "OverlayRenderer", "ScoreCsvWriter", "VideoWriter", "FOURCC"]

#: Video codec by file extension.
FOURCC = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "mp4v", ".mov": "mp4v"}
RED, WHITE, GREY = (40, 40, 230), (255, 255, 255), (150, 150, 150)


class VideoWriter:
    """OpenCV video writer that opens on the first frame and renames into place on close."""

    def __init__(self, path: str | Path, fps: float) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() not in FOURCC:
            raise ValueError(f"overlay video {self.path}: unsupported extension; use one of "
                             f"{sorted(FOURCC)}")
        self.fps = float(fps) if fps and math.isfinite(fps) and fps > 0 else 25.0
        self.frames = 0
        self._staged = contextlib.ExitStack()  # the atomic_path of the file being written
        self._writer: Any = None

    def write(self, image: np.ndarray) -> None:
        if self._writer is None:
            tmp = self._staged.enter_context(atomic_path(self.path))
            h, w = image.shape[:2]
            fourcc = cv2.VideoWriter_fourcc(*FOURCC[self.path.suffix.lower()])
            self._writer = cv2.VideoWriter(str(tmp), fourcc, self.fps, (w, h))
            if not self._writer.isOpened():
                self._writer = None
                with self._staged:  # the error removes the temporary file
                    raise OSError(f"OpenCV cannot write video {self.path} (codec "
                                  f"{FOURCC[self.path.suffix.lower()]!r})")
        self._writer.write(image)
        self.frames += 1

    def close(self) -> None:
        """Finish the file (complete and playable) and move it to ``path``."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            self._staged.close()


class ScoreCsvWriter:
    """Write frame results as rows of a ScoreTable CSV, one frame at a time.

    Same layout as :meth:`ScoreTable.to_csv` (frames without objects as ``object_id = -1``
    rows), flushed after every frame; renamed from a temporary file into place on close. With
    ``frame_rows`` (models that score frames: frame-level ones and fusions) each scored frame
    also gets its frame row, so the file's frame scores are the live ``frame_score`` s.
    """

    def __init__(self, path: str | Path, video: str, frame_rows: bool = False) -> None:
        self.path = Path(path)
        self.video = video
        self.frame_rows = frame_rows
        self._staged = contextlib.ExitStack()
        self._handle = open(self._staged.enter_context(atomic_path(self.path)), "w", newline="",
                            encoding="utf-8")
        self._csv = csv.writer(self._handle)
        self._csv.writerow(COLUMNS)

    def write(self, result: FrameResult) -> None:
        scored = self.frame_rows and math.isfinite(result.frame_score)
        if scored:
            self._csv.writerow(frame_csv_row(self.video, result.frame_index,
                                             result.detections.image_size, result.frame_score))
        if not scored or len(result.detections):  # (no placeholder next to a frame row)
            self._csv.writerows(object_csv_rows(self.video, result.frame_index,
                                                result.detections, result.scores))
        self._handle.flush()

    def close(self) -> None:
        if not self._handle.closed:
            self._handle.close()
            self._staged.close()  # renames the finished file into place


class OverlayRenderer:
    """Draw a frame result: boxes coloured by score, score curve, alarm banner and FPS.

    Args:
        threshold: alarm threshold (dashed line of the curve; red end of the box colours unless
            ``box_levels`` is given).
        low: lowest frame score of the curve's scale, and the green end of the box colours
            unless ``box_levels`` is given (e.g. the median training score).
        box_levels: ``(green, red)`` ends of the box colours when object scores live on another
            scale than frame scores (a late fusion: :func:`stgraph.alarms.object_score_levels`).
        curve_frames: frames shown by the curve (the latest ones); the curve strip is
            ``strip_height`` pixels tall, under the frame.
    """

    def __init__(self, threshold: float, low: float, curve_frames: int = 300,
                 strip_height: int = 70,
                 box_levels: tuple[float, float] | None = None) -> None:
        self.threshold, self.low = float(threshold), float(min(low, threshold))
        self.box_levels = (self.low, self.threshold) if box_levels is None else (
            float(box_levels[0]), float(box_levels[1]))
        self.strip_height = strip_height
        self._scores: deque[float] = deque(maxlen=curve_frames)

    def render(self, result: FrameResult, alarm: bool, fps: float) -> np.ndarray:
        """BGR uint8 [H + strip_height, W, 3]."""
        from stgraph.viz import draw_boxes, fit_text_scale

        if result.image is None:
            raise ValueError("OverlayRenderer needs frame images (stream with keep_images=True)")
        dets = result.detections
        labels = [f"{s:.2f}" for s in result.scores]
        image = draw_boxes(result.image, dets.boxes, result.scores, labels=labels,
                           vmin=self.box_levels[0], vmax=self.box_levels[1])
        h, w = image.shape[:2]
        if alarm:
            cv2.rectangle(image, (0, 0), (w - 1, 22), RED, -1)
            banner = f"ALARM  score {result.frame_score:.3f}"
            cv2.putText(image, banner, (6, 16), cv2.FONT_HERSHEY_SIMPLEX,
                        fit_text_scale(banner, w - 12, 0.5), WHITE, 1, cv2.LINE_AA)
        info = f"frame {result.frame_index}  t={result.time_s:.1f}s  {fps:.1f} fps"
        cv2.putText(image, info, (6, h - 8), cv2.FONT_HERSHEY_SIMPLEX,
                    fit_text_scale(info, w - 12, 0.4), WHITE, 1, cv2.LINE_AA)
        self._scores.append(result.frame_score)
        return np.concatenate([image, self._curve(w)], axis=0)

    def _curve(self, width: int) -> np.ndarray:
        """The strip with the latest frame scores (one per pixel column at most)."""
        strip = np.full((self.strip_height, width, 3), 30, np.uint8)
        step = max(1, width // (self._scores.maxlen or width))  # pixels per frame
        values = np.array(self._scores, np.float64)[-(width // step):]
        finite = values[np.isfinite(values)]
        lo = min(self.low, finite.min()) if finite.size else self.low
        hi = max(self.threshold, finite.max()) if finite.size else self.threshold
        hi = hi if hi > lo else lo + 1e-6

        def y(v: float) -> int:
            return int(round((self.strip_height - 6) * (1 - (v - lo) / (hi - lo)))) + 3

        ty = y(self.threshold)
        for x0 in range(0, width, 8):
            cv2.line(strip, (x0, ty), (min(x0 + 4, width - 1), ty), RED, 1)
        points = [(k * step, y(v)) for k, v in enumerate(values) if math.isfinite(v)]
        for (xa, ya), (xb, yb) in zip(points, points[1:]):
            cv2.line(strip, (xa, ya), (xb, yb), WHITE, 1, cv2.LINE_AA)
        if points and math.isfinite(values[-1]) and values[-1] > self.threshold:
            cv2.circle(strip, points[-1], 3, RED, -1)
        cv2.putText(strip, "frame score", (4, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, GREY, 1)
        return strip


def paced(frames: Any) -> Iterator[Any]:
    """Frames released at their own times (``time_s``), as a camera would deliver them."""
    start = None
    for frame in frames:
        now = time.perf_counter()
        start = now - frame.time_s if start is None else start
        delay = start + frame.time_s - now
        if delay > 0:
            time.sleep(delay)
        yield frame


class _StopFlag:
    """First SIGINT sets the flag (the loop ends cleanly); a second one raises as usual."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._previous: Any = None

    def __enter__(self) -> "_StopFlag":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.event.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def watch(model_dir: str | Path, source: Any, *, out: str | Path | None = None,
          events: str | Path | None = None, scores: str | Path | None = None,
          show: bool = False, threshold: float | None = None,
          quantile: float = DEFAULT_QUANTILE, min_duration: int = 3, merge_gap: int = 5,
          radius: int | None = None, prefetch: int = 4, max_frames: int | None = None,
          realtime: bool = False, video: str | None = None, start: int = 0,
          weights: str | Path | None = None, log: Callable[[str], None] | None = None) -> dict:
    """Score ``source`` live with the pipeline saved in ``model_dir``; write the outputs.

    Args:
        model_dir: a :meth:`Pipeline.save` folder.
        source: video file, frame folder, camera index (int) or frames array.
        out, events, scores: output paths (overlay video, events JSON lines, scores CSV).
        show: display the overlay in a window (needs a display; ignored with a warning if none).
        threshold: alarm threshold; None: the ``quantile`` of the training object scores.
        min_duration, merge_gap: alarm debouncing, in frames (:class:`AlarmTracker`).
        radius: window radius (latency in frames); None: the model's.
        prefetch: frames decoded/detected ahead in a background thread (0: no thread).
        max_frames: stop after this many frames.
        start: first frame index (frame numbers in the outputs stay those of the video).
        realtime: release a video file's frames at their own rate, as a camera would.
        video: name in the events and scores (default: from the source).
        weights: detector weights file to use instead of the saved one (see
            :meth:`Pipeline.load`).
        log: where progress lines go (default: this module's logger, level INFO).

    Returns:
        Summary dict: frames, events, interrupted, fps, threshold, outputs.
    """
    from stgraph.pipeline import Pipeline, known_fps, video_name

    if max_frames is not None and (isinstance(max_frames, bool) or not isinstance(max_frames, int)
                                   or max_frames < 1):
        raise ValueError(f"max_frames must be a whole number >= 1 (or None), got {max_frames!r}")
    if start < 0:
        raise ValueError(f"start must be a frame index >= 0, got {start}")
    log = log or logger.info
    pipe = Pipeline.load(model_dir, progress=False, weights=weights)
    model = pipe.model
    limit = threshold if threshold is not None else default_threshold(model, quantile)
    frame_source = pipe.source(source, start=start)
    name = video or (f"camera{source}" if isinstance(source, int) else video_name(source))
    if show and sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        log("stgraph watch: no display found; running headless (--show ignored)")
        show = False
    scorer = model.stream_scorer(fps=known_fps(frame_source),  # the window Pipeline.score uses
                                 **({} if radius is None else {"radius": radius}))
    tracker = AlarmTracker(limit, min_duration, merge_gap, video=name)
    renderer = OverlayRenderer(limit, default_threshold(model, 0.5),
                               box_levels=object_score_levels(model, quantile))
    writer = VideoWriter(out, frame_source.fps) if out else None
    event_log = EventWriter(events) if events else None
    score_log = (ScoreCsvWriter(scores, name, frame_rows=model.consumes != "detections")
                 if scores else None)
    summary: dict[str, Any] = {"video": name, "frames": 0, "events": 0, "interrupted": False,
                               "threshold": limit, "radius": scorer.latency_frames}
    started = time.perf_counter()
    rate = FrameRate()

    def emit(event: Any) -> None:
        summary["events"] += 1
        log(f"alarm: frames {event.start_frame}-{event.end_frame}, peak "
            f"{event.peak_score:.3f} at frame {event.peak_frame}")
        if event_log:
            event_log.write(event)

    def handle(result: FrameResult) -> bool:
        """Write one result everywhere; False when the user asked to quit (window)."""
        for event in tracker.update_result(result):
            emit(event)
        if score_log:
            score_log.write(result)
        summary["frames"] += 1
        fps = rate.tick()
        if writer or show:
            hot = math.isfinite(result.frame_score) and result.frame_score > limit
            overlay = renderer.render(result, tracker.active or hot, fps)
            if writer:
                writer.write(overlay)
            if show:
                cv2.imshow("stgraph watch", overlay)
                if cv2.waitKey(1) & 0xFF == ord("q"):
                    return False
        return True

    frames = paced(frame_source) if realtime else frame_source
    keep = bool(out or show) or model.consumes != "detections"
    stream = analysed_stream(pipe, _limited(frames, max_frames), keep_images=keep,
                             prefetch=prefetch)
    log(f"stgraph watch: {name} (threshold {limit:.4f}, latency {scorer.latency_frames} frames); "
        "Ctrl-C to stop")
    try:
        with _StopFlag() as stop:
            try:
                for item in stream:
                    if not all(handle(r) for r in scorer.push(item)) or stop.event.is_set():
                        summary["interrupted"] = stop.event.is_set()
                        break
            except KeyboardInterrupt:
                summary["interrupted"] = True
            finally:
                stream.close()  # stops the read-ahead thread
            for result in scorer.flush():
                handle(result)
            for event in tracker.close():
                emit(event)
    finally:
        for closer in (writer, event_log, score_log):
            if closer is not None:
                closer.close()
        if show:
            cv2.destroyAllWindows()
    elapsed = time.perf_counter() - started
    summary["fps"] = summary["frames"] / elapsed if elapsed > 0 else 0.0
    summary["outputs"] = {k: str(v) for k, v in (("out", out), ("events", events),
                                                  ("scores", scores)) if v}
    return summary


def _limited(frames: Any, max_frames: int | None) -> Iterator[Any]:
    for k, frame in enumerate(frames):
        if max_frames is not None and k >= max_frames:
            return
        yield frame


class FrameRate:
    """Frames per second, smoothed (exponential moving average of the frame interval)."""

    def __init__(self, alpha: float = 0.1) -> None:
        self.alpha, self._last, self._interval = alpha, None, None

    def tick(self) -> float:
        now = time.perf_counter()
        if self._last is not None:
            dt = now - self._last
            self._interval = dt if self._interval is None else \
                (1 - self.alpha) * self._interval + self.alpha * dt
        self._last = now
        return 1.0 / self._interval if self._interval else 0.0
