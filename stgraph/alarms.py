"""Alarms from frame scores: threshold, debouncing, JSON-lines events.

A frame is *hot* when its score is above the threshold (frames without objects, score NaN, are
not). Hot frames separated by at most ``merge_gap`` cold frames belong to one event; an event is
reported when it spans at least ``min_duration`` frames (first to last hot frame, inclusive), once
``merge_gap`` cold frames have followed it (or the stream ends)::

    tracker = AlarmTracker(default_threshold(model), min_duration=5, merge_gap=10, video="cam0")
    with EventWriter("events.jsonl") as log:
        for result in pipe.stream(0):
            for event in tracker.update_result(result):
                log.write(event)
        for event in tracker.close():
            log.write(event)

Frame counts are in frames of the stream (``frame_index`` differences, so a strided stream counts
its own frames). The default threshold is a high quantile of the training objects' scores
(``AnoGraph.train_scores_``), which are normal by assumption.
"""
from __future__ import annotations

import heapq
import json
import math
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["AlarmEvent", "AlarmTracker", "EventWriter", "default_threshold", "detect_alarms",
           "read_events", "object_score_levels", "DEFAULT_QUANTILE"]

#: Quantile of the training object scores used as the default alarm threshold.
DEFAULT_QUANTILE = 0.99


def default_threshold(model: Any, quantile: float = DEFAULT_QUANTILE) -> float:
    """``model.train_scores_.quantile(quantile)``: the score that ``quantile`` of the (normal)
    training objects stay below."""
    scores = getattr(model, "train_scores_", None)
    if scores is None:
        raise ValueError(f"{type(model).__name__} has no train_scores_ (fit it first, or set the "
                         "alarm threshold explicitly)")
    return float(scores.quantile(quantile))


def object_score_levels(model: Any,
                        quantile: float = DEFAULT_QUANTILE) -> tuple[float, float] | None:
    """Box colour range ``(median, quantile)`` for a model whose object rows live on another
    scale than its frame scores: a late fusion's frame scores are fused, its object rows keep its
    object-level member's scores, so that member's training scores set the range. None for a
    single model (its boxes are coloured on the alarm threshold's own scale)."""
    from stgraph.models.late_fusion import object_member

    scorer = object_member(model)
    if scorer is None:
        return None
    low, high = default_threshold(scorer, 0.5), default_threshold(scorer, quantile)
    return min(low, high), high


@dataclass
class AlarmEvent:
    """One debounced alarm.

    Attributes:
        video: stream / video name.
        start_frame, end_frame: first and last hot frame (inclusive).
        start_time, end_time: their times in the video (seconds).
        peak_score, peak_frame: the highest frame score and its frame.
        hot_frames: frames above the threshold within the event.
        threshold: the threshold in force.
        objects: the strongest objects above the threshold (at most ``top_objects``), strongest
            first: ``{"frame", "object_id", "score", "box": [x1, y1, x2, y2], "class_name"}``
            and ``"track_id"`` when known.
        reported_at: wall-clock time (ISO 8601, UTC) when the event was closed.
    """

    video: str
    start_frame: int
    end_frame: int
    start_time: float
    end_time: float
    peak_score: float
    peak_frame: int
    hot_frames: int
    threshold: float
    objects: list[dict] = field(default_factory=list)
    reported_at: str = ""

    @property
    def duration_frames(self) -> int:
        return self.end_frame - self.start_frame + 1

    def to_json(self) -> str:
        """One line of JSON (no newline)."""
        return json.dumps(asdict(self), allow_nan=False)


class _OpenEvent:
    """An event being accumulated: span, peak and a bounded heap of its strongest objects."""

    def __init__(self, frame: int, time_s: float, top_objects: int) -> None:
        self.start_frame = self.end_frame = frame
        self.start_time = self.end_time = time_s
        self.peak_score, self.peak_frame = -math.inf, frame
        self.hot_frames = 0
        self.top_objects = top_objects
        self._heap: list[tuple[float, int, int, dict]] = []  # (score, frame, object_id, record)

    def add(self, frame: int, time_s: float, score: float, objects: Sequence[dict]) -> None:
        self.end_frame, self.end_time = frame, time_s
        self.hot_frames += 1
        if score > self.peak_score:
            self.peak_score, self.peak_frame = score, frame
        for record in objects:
            item = (float(record["score"]), -frame, -int(record["object_id"]), record)
            if len(self._heap) < self.top_objects:
                heapq.heappush(self._heap, item)
            elif item[:3] > self._heap[0][:3]:
                heapq.heapreplace(self._heap, item)

    def finish(self, video: str, threshold: float) -> AlarmEvent:
        objects = [item[3] for item in sorted(self._heap, key=lambda i: i[:3], reverse=True)]
        return AlarmEvent(video, self.start_frame, self.end_frame, self.start_time, self.end_time,
                          self.peak_score, self.peak_frame, self.hot_frames, threshold, objects,
                          datetime.now(timezone.utc).isoformat(timespec="seconds"))


class AlarmTracker:
    """Turn a stream of frame scores into debounced :class:`AlarmEvent` s.

    Args:
        threshold: a frame is hot when its score is strictly above it.
        min_duration: shortest event reported, in frames (first to last hot frame, inclusive).
        merge_gap: hot runs separated by at most this many cold frames are one event.
        video: name written in the events.
        top_objects: objects kept per event (the strongest above the threshold).

    Memory is constant: one open event and at most ``top_objects`` object records.
    """

    def __init__(self, threshold: float, min_duration: int = 1, merge_gap: int = 0,
                 video: str = "video", top_objects: int = 10) -> None:
        if not isinstance(threshold, (int, float, np.floating)) or not math.isfinite(threshold):
            raise ValueError(f"threshold must be a finite number, got {threshold!r}")
        for name, value, low in (("min_duration", min_duration, 1), ("merge_gap", merge_gap, 0),
                                 ("top_objects", top_objects, 0)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        self.threshold = float(threshold)
        self.min_duration = int(min_duration)
        self.merge_gap = int(merge_gap)
        self.video = video
        self.top_objects = int(top_objects)
        self._open: _OpenEvent | None = None
        self._last_frame: int | None = None

    @property
    def active(self) -> bool:
        """Whether an event is open and already long enough to be reported (for a live banner)."""
        return self._long_enough(self._open)

    def _long_enough(self, event: _OpenEvent | None) -> bool:
        return event is not None and event.end_frame - event.start_frame + 1 >= self.min_duration

    def update(self, frame: int, time_s: float, score: float,
               objects: Sequence[dict] = ()) -> list[AlarmEvent]:
        """Next frame (frame indices must increase); returns the events it closes (0 or 1).

        Args:
            frame: frame index; time_s: its time (seconds).
            score: frame score (NaN: no objects, never hot).
            objects: records of this frame's objects above the threshold (see
                :attr:`AlarmEvent.objects`); only used when the frame is hot.
        """
        frame = int(frame)
        if self._last_frame is not None and frame <= self._last_frame:
            raise ValueError(f"frames must increase: frame {frame} after {self._last_frame}")
        self._last_frame = frame
        out = []
        if self._open is not None and frame - self._open.end_frame - 1 > self.merge_gap:
            out += self._close()
        if math.isfinite(score) and score > self.threshold:
            if self._open is None:
                self._open = _OpenEvent(frame, time_s, self.top_objects)
            self._open.add(frame, float(time_s), float(score), objects)
        elif self._open is not None and frame - self._open.end_frame > self.merge_gap:
            out += self._close()  # no later frame can join it any more
        return out

    def update_result(self, result: Any) -> list[AlarmEvent]:
        """:meth:`update` from a :class:`stgraph.stream.FrameResult` (objects filled in)."""
        hot = np.flatnonzero(result.scores > self.threshold)
        dets = result.detections
        names = dets.names if len(dets) else []
        objects = []
        for row in hot.tolist():
            record = {"frame": int(result.frame_index), "object_id": row,
                      "score": float(result.scores[row]),
                      "box": [round(float(v), 2) for v in dets.boxes[row]],
                      "class_name": names[row] if row < len(names) else str(int(dets.labels[row]))}
            if dets.track_ids is not None:
                record["track_id"] = int(dets.track_ids[row])
            objects.append(record)
        return self.update(result.frame_index, result.time_s, result.frame_score, objects)

    def _close(self) -> list[AlarmEvent]:
        event, self._open = self._open, None
        return [event.finish(self.video, self.threshold)] if self._long_enough(event) else []

    def close(self) -> list[AlarmEvent]:
        """End of stream: the open event, if long enough."""
        return self._close()


def detect_alarms(frames: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray,
                  threshold: float, min_duration: int = 1, merge_gap: int = 0,
                  times: Sequence[float] | np.ndarray | None = None, video: str = "video",
                  fps: float = 25.0) -> list[AlarmEvent]:
    """Events of a whole frame-score series (int [T] frames, float [T] scores), offline.

    Same rules as :class:`AlarmTracker`; ``times`` default to ``frames / fps``.
    """
    frames = np.asarray(frames).reshape(-1)
    scores = np.asarray(scores, np.float64).reshape(-1)
    if frames.shape != scores.shape:
        raise ValueError(f"detect_alarms: {len(frames)} frames but {len(scores)} scores")
    times = frames / fps if times is None else np.asarray(times, np.float64).reshape(-1)
    tracker = AlarmTracker(threshold, min_duration, merge_gap, video, top_objects=0)
    events = [e for f, t, s in zip(frames, times, scores) for e in tracker.update(f, t, s)]
    return events + tracker.close()


class EventWriter:
    """Append events to a JSON-lines file, one line per event, flushed and synced at once.

    Each line is complete when :meth:`write` returns, so the file can be followed live
    (``tail -f``) and stays valid if the process is stopped. The file is truncated on open
    unless ``append``.
    """

    def __init__(self, path: str | Path, append: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.path, "a" if append else "w", encoding="utf-8")
        self.count = 0

    def write(self, event: AlarmEvent) -> None:
        self._handle.write(event.to_json() + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self.count += 1

    def close(self) -> None:
        if not self._handle.closed:
            self._handle.close()

    def __enter__(self) -> "EventWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def read_events(path: str | Path) -> list[AlarmEvent]:
    """Events of a JSON-lines file written by :class:`EventWriter`.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a line is not an event (names the file and line).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such events file: {path}")
    events = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            events.append(AlarmEvent(**json.loads(line)))
        except (json.JSONDecodeError, TypeError) as exc:
            raise ValueError(f"{path}:{lineno} is not an alarm event: {exc}") from exc
    return events
