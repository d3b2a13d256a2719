"""Live scoring: one result per frame as frames arrive, with each model's fixed latency.

Every model gives its own live scorer, ``model.stream_scorer(fps=...)``, with one interface:
``push(AnalysedFrame) -> list[FrameResult]`` (the results that became ready), ``flush()`` at the
end of a video, ``reset()``, ``latency_frames``. Two kinds live here:

- :class:`GraphStreamScorer` (object graph models, Ano-Graph): frame t is scored on the graph of
  frames ``t - i .. t + i`` (the window radius i), so its scores exist once frame ``t + i`` has
  arrived. It runs :class:`~stgraph.graphs.window.CentredWindows` (the incremental
  :class:`~stgraph.graphs.window.SlidingWindowGraph` of ``2 i + 1`` frames plus the ``i + 1``
  frames that wait for their result); nothing older is kept, so memory is flat over arbitrarily
  long streams. Batch scoring and explanations run the same loop, so streaming scores equal
  batch scores (for ``i >= 2`` batch scoring uses one whole-video pass, which gives the same
  scores; see :mod:`stgraph.models.anograph`).
- :class:`FrameStreamScorer` (frame-level models): the model's ``score_next_frame`` step on each
  frame, with the model's small history of previous frames; latency 0.

The front stages (decode, detect, node features) can run in a background thread feeding a bounded
queue (:class:`ReadAhead`), so a slow stage sets the pace rather than the sum of the stages::

    pipe = Pipeline.load("model/")
    for result in pipe.stream("camera.mp4"):          # or 0 for a camera, or an array [T,H,W,3]
        print(result.frame_index, result.frame_score, result.timings)

Per-frame timings (seconds) are ``decode``, ``detect``, ``features`` (front stages), ``graph``
(sliding-window push), ``score`` (the model on the window or frame) and ``latency``: from the
moment the frame was decoded to the moment its result is ready (it includes the wait for the
``radius`` later frames).
"""
from __future__ import annotations

import math
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

import numpy as np

from detectors.base import Detections
from stgraph.graphs.window import CentredWindow, CentredWindows
from stgraph.models.anograph import frame_with_features

__all__ = ["FrameResult", "AnalysedFrame", "GraphStreamScorer", "FrameStreamScorer", "FrameOutput",
           "StepwiseFrameScoring",
           "ReadAhead", "analyse_frames", "stream_pipeline", "STAGES"]

#: Names of the per-frame timings, in pipeline order (``latency`` is end to end).
STAGES = ("decode", "detect", "features", "graph", "score", "latency")


@dataclass
class AnalysedFrame:
    """A frame after the front stages: its detections with node features, ready to be scored.

    Attributes:
        detections: the frame's objects, ``features`` float32 [N, D] (frames without objects may
            have none).
        time_s: the frame's time in the video (seconds).
        image: the BGR frame [H, W, 3] uint8, or None when images are not kept.
        timings: seconds spent in the front stages (``decode``, ``detect``, ``features``).
        arrived: ``time.perf_counter()`` when the frame was decoded (start of its latency).
    """

    detections: Detections
    time_s: float
    image: np.ndarray | None = None
    timings: dict[str, float] = field(default_factory=dict)
    arrived: float = field(default_factory=time.perf_counter)


@dataclass
class FrameResult:
    """Scores of one frame.

    Attributes:
        frame_index: the frame's index in the video.
        time_s: the frame's time in the video (seconds).
        detections: its objects (``boxes`` float32 [N, 4] xyxy, ``labels``, ``features`` ...).
        scores: float64 [N] anomaly score of each object (rows of ``detections``), as in
            :meth:`AnoGraph.score`.
        frame_score: the largest object score; NaN when the frame has no object.
        timings: seconds per stage (:data:`STAGES`).
        image: the BGR frame [H, W, 3] uint8 when images are kept, else None.
        explanations: per object, its :class:`~stgraph.explain.Explanation` when the scorer was
            asked to explain (``explain_top_k``), else None.
        pixel_map: float32 [h, w] per-pixel scores of frame-level models, else None.
    """

    frame_index: int
    time_s: float
    detections: Detections
    scores: np.ndarray
    frame_score: float
    timings: dict[str, float]
    image: np.ndarray | None = None
    explanations: list | None = None
    pixel_map: np.ndarray | None = None


class GraphStreamScorer:
    """Score a stream of per-frame detections with a fitted graph model (:class:`~stgraph.models.AnoGraph`).

    Args:
        model: a fitted model with ``graph_builder()``, ``window_radius_for(fps)``,
            ``score_graph(graph)`` and ``n_features_in_`` (its public API only).
        radius: window radius i in frames; the latency. None: the model's radius at ``fps``
            (``window_radius``, else ``round(fps)``, else 10), as in :meth:`AnoGraph.score`.
            Every i >= 2 gives the same scores, so ``radius=2`` is the lowest exact latency.
        fps: frame rate, for the default radius and for ``time_s`` of bare detections.
        explain_top_k: also explain every object's score (:func:`stgraph.explain.explain_nodes`,
            exact leave-one-edge-out) and keep its ``explain_top_k`` strongest edges; 0: off.

    Use :meth:`push` for each frame in time order, then :meth:`flush` once at the end; each
    returns the results that became ready (frame t's result comes out of the push of frame
    ``t + radius``). The window loop is :class:`~stgraph.graphs.window.CentredWindows`, the one
    batch scoring and explanations use. State held: at most ``2 * radius + 1`` frames in the
    window and ``radius + 1`` frames waiting for their result (:attr:`held_frames`).
    """

    def __init__(self, model: Any, radius: int | None = None, fps: float | None = None,
                 explain_top_k: int = 0) -> None:
        model.check_is_fitted("stream")
        if radius is None:
            radius = model.window_radius_for(fps)
        if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)) or radius < 0:
            raise ValueError(f"radius must be an int >= 0 (frames), got {radius!r}")
        if isinstance(explain_top_k, bool) or not isinstance(explain_top_k, int) \
                or explain_top_k < 0:
            raise ValueError(f"explain_top_k must be an int >= 0, got {explain_top_k!r}")
        self.model = model
        self.radius = int(radius)
        self.fps = float(fps) if fps else 25.0
        self.explain_top_k = explain_top_k
        self.width = int(model.n_features_in_)
        self.windows = CentredWindows(model.graph_builder(), self.radius, self.width)
        self._flushed = False

    @property
    def latency_frames(self) -> int:
        """Frames between a frame's arrival and its result (= ``radius``)."""
        return self.radius

    @property
    def held_frames(self) -> tuple[int, int]:
        """``(frames in the window, frames waiting for a result)``; bounded by
        ``(2 * radius + 1, radius + 1)``."""
        return self.windows.held_frames

    def reset(self) -> None:
        """Forget the stream (start a new video)."""
        self.windows.reset()
        self._flushed = False

    def push(self, frame: AnalysedFrame | Detections) -> list[FrameResult]:
        """Add the next frame; return the result that became ready (none during the first
        ``radius`` frames, then exactly one)."""
        if self._flushed:
            raise RuntimeError("the stream scorer was flushed; call reset() before a new stream")
        if isinstance(frame, Detections):
            frame = AnalysedFrame(frame, frame.frame_index / self.fps)
        if not isinstance(frame.detections, Detections):
            raise TypeError(f"push expects Detections, got {type(frame.detections).__name__}")
        frame.detections = frame_with_features(frame.detections, self.width,
                                               f"frame {frame.detections.frame_index}")
        t0 = time.perf_counter()
        released = self.windows.push(frame.detections, frame)
        return [self._result(item, time.perf_counter() - t0) for item in released]

    def flush(self) -> list[FrameResult]:
        """End of stream: score the ``radius`` frames still waiting; returns their results."""
        if self._flushed:
            return []
        self._flushed = True
        t0 = time.perf_counter()
        released = self.windows.flush()
        return [self._result(item, (time.perf_counter() - t0) / max(len(released), 1))
                for item in released]

    def _result(self, item: CentredWindow, t_graph: float) -> FrameResult:
        centre: AnalysedFrame = item.payload
        t1 = time.perf_counter()
        scores = self.model.score_graph(item.graph)[item.rows].numpy().astype(np.float64)
        t_score = time.perf_counter() - t1
        explanations = None
        if self.explain_top_k and len(centre.detections):
            from stgraph.explain import explain_nodes
            explanations = [e.top(self.explain_top_k) for e in
                            explain_nodes(self.model, item.graph, item.rows.tolist())]
        timings = {stage: 0.0 for stage in STAGES}
        timings.update(centre.timings)
        timings["graph"] = t_graph
        timings["score"] = t_score
        timings["latency"] = time.perf_counter() - centre.arrived
        frame_score = float(scores.max()) if len(scores) else math.nan
        return FrameResult(centre.detections.frame_index, centre.time_s, centre.detections,
                           scores, frame_score, timings, centre.image, explanations)

    def run(self, frames: Iterable[AnalysedFrame | Detections]) -> Iterator[FrameResult]:
        """Push every frame of ``frames``, then flush: one result per frame, in order."""
        for frame in frames:
            yield from self.push(frame)
        yield from self.flush()


@dataclass
class FrameOutput:
    """What a frame-level model says about one frame (see :class:`FrameStreamScorer`).

    Attributes:
        frame_score: the frame's raw score (higher = more abnormal).
        object_scores: float64 [N], one per row of the frame's detections ([0] without any).
        pixel_map: float32 [h, w] per-pixel scores, or None.
    """

    frame_score: float
    object_scores: np.ndarray
    pixel_map: np.ndarray | None = None


class FrameStreamScorer:
    """Score a stream of frames with a fitted frame-level model (``consumes = "frames"``).

    The model provides ``score_next_frame(state, image, detections) -> (state, FrameOutput |
    None)``: ``state`` is whatever the model keeps between frames (its history of preprocessed
    frames; None at the start of a video), ``image`` the BGR frame [H, W, 3] uint8, and the
    output None while the model has too little history to score (those frames get a NaN frame
    score). The model's batch :meth:`score` runs the same step over the video, so streaming
    equals batch. Latency: 0 frames.
    """

    def __init__(self, model: Any, fps: float | None = None) -> None:
        model.check_is_fitted("stream")
        self.model = model
        self.fps = float(fps) if fps else 25.0
        self._state: Any = None

    latency_frames = 0

    def reset(self) -> None:
        """Forget the stream (start a new video)."""
        self._state = None

    def push(self, frame: AnalysedFrame) -> list[FrameResult]:
        """Score the next frame (its ``image`` is required); returns its result."""
        if not isinstance(frame, AnalysedFrame) or frame.image is None:
            raise TypeError("a frame-level model scores images: push AnalysedFrame with image")
        t0 = time.perf_counter()
        self._state, output = self.model.score_next_frame(self._state, frame.image,
                                                          frame.detections)
        timings = {stage: 0.0 for stage in STAGES}
        timings.update(frame.timings)
        timings["score"] = time.perf_counter() - t0
        timings["latency"] = time.perf_counter() - frame.arrived
        n = len(frame.detections)
        if output is None:
            return [FrameResult(frame.detections.frame_index, frame.time_s, frame.detections,
                                np.full(n, math.nan), math.nan, timings, frame.image)]
        return [FrameResult(frame.detections.frame_index, frame.time_s, frame.detections,
                            np.asarray(output.object_scores, np.float64), float(output.frame_score),
                            timings, frame.image, pixel_map=output.pixel_map)]

    def flush(self) -> list[FrameResult]:
        """Nothing waits (latency 0)."""
        return []

    def run(self, frames: Iterable[AnalysedFrame]) -> Iterator[FrameResult]:
        for frame in frames:
            yield from self.push(frame)


# ---------------------------------------------------------------------------- front stages
def analyse_frames(detector: Any, features: Any, source: Iterable[Any],
                   keep_images: bool = True,
                   stop: threading.Event | None = None) -> Iterator[AnalysedFrame]:
    """Decode, detect and attach node features, frame by frame (the pipeline's front stages).

    Args:
        detector: ``detect(image, frame_index=) -> Detections``; ``reset()`` is called first.
            None: every frame gets empty detections (frame-level models).
        features: a feature producer, ``extract(image, detections, previous) -> [N, D]``, or
            None (no node features).
        source: frames (``Frame(index, time_s, image)``), e.g. a
            :class:`~stgraph.io.frames.FrameSource`.
        keep_images: keep each frame's image in the result (for overlays).
        stop: stop early when this event is set.

    :meth:`Pipeline.extract` (``detect_frames``) runs this same loop, so batch and stream see
    the same detections.
    """
    for stage in (detector, features):
        if stage is not None and hasattr(stage, "reset"):
            stage.reset()
    previous: Detections | None = None
    frames = iter(source)
    while stop is None or not stop.is_set():
        t0 = time.perf_counter()
        try:
            frame = next(frames)
        except StopIteration:
            return
        t1 = time.perf_counter()
        if detector is None:  # frame-level models: the frame alone
            dets = Detections.empty(frame.index, frame.image.shape[:2])
        else:
            dets = detector.detect(frame.image, frame_index=frame.index)
        t2 = time.perf_counter()
        if features is not None:
            dets = dets.with_features(features.extract(frame.image, dets, previous))
        t3 = time.perf_counter()
        previous = dets
        yield AnalysedFrame(dets, float(frame.time_s), frame.image if keep_images else None,
                            {"decode": t1 - t0, "detect": t2 - t1, "features": t3 - t2},
                            arrived=t1)


class ReadAhead:
    """Run an iterator in a background thread, ``maxsize`` items ahead, behind a bounded queue.

    Use as a context manager; leaving it (normally, on an error, on Ctrl-C) stops the thread.
    An exception raised by the iterator is re-raised in the consumer, in order.

    Args:
        make_items: ``f(stop_event) -> iterator``; called in the thread, which sets the event
            when the consumer goes away so the iterator can end at its next item.
        maxsize: queue capacity (items decoded but not yet consumed); >= 1.
    """

    _DONE = object()

    def __init__(self, make_items: Any, maxsize: int = 4) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise ValueError(f"maxsize must be an int >= 1, got {maxsize!r}")
        self._make_items = make_items
        self._queue: queue.Queue = queue.Queue(maxsize)
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="stgraph-read-ahead", daemon=True)

    def _put(self, item: Any) -> bool:
        while not self.stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        try:
            for item in self._make_items(self.stop):
                if not self._put((item, None)):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self._put((None, exc))
            return
        self._put((self._DONE, None))

    def __enter__(self) -> "ReadAhead":
        self._thread.start()
        return self

    def __iter__(self) -> Iterator[Any]:
        while True:
            try:
                item, error = self._queue.get(timeout=0.1)
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    return
                continue
            if error is not None:
                raise error
            if item is self._DONE:
                return
            yield item

    def close(self) -> None:
        """Stop the thread (drains the queue so it is not blocked) and wait for it."""
        self.stop.set()
        while self._thread.is_alive():
            try:
                while True:
                    self._queue.get_nowait()
            except queue.Empty:
                pass
            self._thread.join(timeout=0.05)

    def __exit__(self, *exc: Any) -> None:
        self.close()


def analysed_stream(pipeline: Any, source: Any, keep_images: bool = True,
                    prefetch: int = 4) -> Iterator[AnalysedFrame]:
    """The pipeline's front stages over ``source``, in a read-ahead thread when ``prefetch > 0``."""
    def make(stop: threading.Event | None) -> Iterator[AnalysedFrame]:
        return analyse_frames(pipeline.detector, pipeline.features, source, keep_images, stop)

    if not prefetch:
        yield from make(None)
        return
    with ReadAhead(make, prefetch) as items:
        yield from items


def stream_pipeline(pipeline: Any, video: Any, *, radius: int | None = None,
                    prefetch: int = 4, keep_images: bool = True,
                    explain_top_k: int = 0) -> Iterator[FrameResult]:
    """Generator behind :meth:`Pipeline.stream` (see there)."""
    from stgraph.pipeline import known_fps

    source = pipeline.source(video)
    options = {} if radius is None else {"radius": radius}
    if explain_top_k:
        options["explain_top_k"] = explain_top_k
    scorer = pipeline.model.stream_scorer(fps=known_fps(source), **options)  # as Pipeline.score
    keep_images = keep_images or pipeline.model.consumes != "detections"
    yield from scorer.run(analysed_stream(pipeline, source, keep_images, prefetch))


class StepwiseFrameScoring:
    """Mixin of the frame-level estimators that score one frame at a time
    (``score_next_frame(state, image, detections)``): ``score`` runs that step over a whole
    video (:func:`score_frames`), ``stream_scorer`` runs it live (:class:`FrameStreamScorer`),
    so live scores equal batch scores. ``_check_score`` is the hook for parameter checks."""

    def _check_score(self) -> None:
        """Validate the parameters that scoring reads (nothing by default)."""

    def score(self, X: Any, video: str = "video", *, fps: float | None = None,
              detections: Any = None) -> Any:
        """Frame rows (and pixel maps; object rows for ``detections``) of one video.

        Args:
            X: the video (path, frame folder, ``FrameSource`` or uint8 array [T, H, W, 3]).
            video: its name in the table.
            fps: unused (accepted for the common interface).
            detections: a detector's boxes per frame (``list[Detections]``); each becomes an
                object row.
        """
        self.check_is_fitted("score")  # type: ignore[attr-defined]
        self._check_score()
        return score_frames(self, X, video, detections,
                            progress=getattr(self, "progress", False))

    def stream_scorer(self, fps: float | None = None, radius: int | None = None) -> Any:
        """A :class:`FrameStreamScorer` (latency 0; equals :meth:`score`)."""
        return FrameStreamScorer(self, fps=fps)


def score_frames(model: Any, video_input: Any, video: str = "video",
                 detections: Any = None, progress: bool = True):
    """Batch scoring of a frame-level model that steps one frame at a time: the loop that
    :class:`FrameStreamScorer` runs live, over a whole video, as a ScoreTable.

    ``model.score_next_frame(state, image, detections) -> (state, FrameOutput | None)`` is
    called on every frame in order; a frame whose output is None (no history yet) gets no row
    (the table still knows it).

    Args:
        model: a frame-level estimator with ``score_next_frame``.
        video_input: the video (path, frame folder, ``FrameSource`` or uint8 [T, H, W, 3]).
        video: its name in the table.
        detections: a detector's boxes per frame (``list[Detections]``); each box becomes an
            object row scored by ``FrameOutput.object_scores``.
        progress: show a progress bar over frames.

    Returns:
        ScoreTable with frame rows (and pixel maps [T', h, w] when the model gives them), plus
        object rows for ``detections``.
    """
    from stgraph.io.frames import as_frame_source
    from stgraph.scores import ScoreTable
    from tqdm.auto import tqdm

    source = as_frame_source(video_input)
    by_frame = {d.frame_index: d for d in detections} if detections is not None else {}
    state, indices, scored, hw = None, [], [], None
    for frame in tqdm(source, desc=type(model).__name__, unit="frame", disable=not progress,
                      leave=False):
        state, output = model.score_next_frame(state, frame.image, by_frame.get(frame.index))
        indices.append(frame.index)
        hw = frame.image.shape[:2]
        if output is not None:
            scored.append((frame.index, output))
    if not indices:
        raise ValueError(f"video {video!r} has no frames")
    maps = [o.pixel_map for _, o in scored]
    table = ScoreTable.from_frames(
        video, np.array([i for i, _ in scored], np.int64),
        np.array([o.frame_score for _, o in scored], np.float64),
        video_frames=np.asarray(indices, np.int64), image_hw=hw,
        pixel_maps=np.stack(maps) if scored and all(m is not None for m in maps) else None)
    if detections is None:
        return table
    scores = {i: o.object_scores for i, o in scored}
    with_history = [d for d in detections if d.frame_index in scores]  # first frames: no rows
    if not with_history:
        return table
    objects = ScoreTable.from_detections(video, with_history,
                                         [scores[d.frame_index] for d in with_history])
    return ScoreTable.concat([table, objects])
