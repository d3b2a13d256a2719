"""``stgraph serve``: a live dashboard of several sources, with an events store (FastAPI + uvicorn).

Each source (video file, frame folder or camera index) runs in its own thread with its own
pipeline (loaded once from ``--model``), through the public streaming API: the front stages
(:func:`stgraph.stream.analysed_stream`, a small read-ahead queue) and the model's
``stream_scorer()``, as ``stgraph watch`` does. Per source the server keeps only bounded state:
the latest overlay frame (JPEG), the last ``history`` frame scores, the alarm tracker's open event
and up to three keyframes of it. Closed alarm events go to the events store
(:mod:`stgraph.eventstore`: SQLite by default, one transaction per event).

A source that ends or fails is shown as such (status ``ended`` / ``failed`` with the error) and
started again after ``retry_s`` seconds; the other sources carry on.

Pages and API::

    GET /                          dashboard: per source the live overlay, score chart, alarm banner
    GET /events                    events page: filters (source, time range, score), keyframes
    GET /video/{i}.mjpg            the overlay of source i as MJPEG (?frames=N: stop after N)
    GET /api/sources               status, counts, threshold, alarm flag, recent scores per source
    GET /api/sources/{i}/frame.jpg the latest overlay frame of source i
    GET /api/events                stored events (?source=&since=&until=&min_score=&limit=&offset=)
    GET /api/events/{id}           one event with its objects
    GET /api/events/{id}/keyframes/{k}.jpg

The server binds 127.0.0.1 by default. On any other address it refuses to start without a token
(``--token`` or ``$STGRAPH_TOKEN``), and every request must carry it (``?token=``, an
``Authorization: Bearer`` header, or the cookie that ``/?token=`` sets). Ctrl-C stops uvicorn,
then every source thread (each closes its open alarm into the store) and the store.
"""
from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import math
import os
import threading
from collections import deque
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from stgraph.alarms import (DEFAULT_QUANTILE, AlarmEvent, AlarmTracker, default_threshold,
                            object_score_levels)
from stgraph.eventstore import EventStore, open_store

__all__ = ["ServeConfig", "SourceWorker", "create_app", "serve", "is_loopback"]

log = logging.getLogger("stgraph.serve")
TOKEN_COOKIE = "stgraph_token"


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class ServeConfig:
    """Settings of :func:`create_app` (the CLI's flags).

    Attributes:
        model: a :meth:`Pipeline.save` folder.
        sources: video files, frame folders or camera indices (``"0"``).
        db: events database: a file path or a database URL (default ``stgraph_events.db``).
        host: the address the server binds (only used to decide whether a token is needed).
        token: the access token (required off loopback).
        threshold: alarm threshold; None: ``quantile`` of the model's training scores.
        min_duration, merge_gap: alarm debouncing, frames (:class:`AlarmTracker`).
        realtime: play files at their own frame rate (as a camera delivers frames).
        retry_s: seconds before a source that ended or failed is started again.
        history: frame scores kept per source for the chart.
        prefetch: frames decoded ahead per source (bounded queue).
        jpeg_quality: of the overlay frames and keyframes.
        max_frames: stop each run of a source after this many frames (tests, demos).
    """

    model: str | Path
    sources: Sequence[str]
    db: str | Path = "stgraph_events.db"
    host: str = "127.0.0.1"
    token: str | None = None
    threshold: float | None = None
    quantile: float = DEFAULT_QUANTILE
    min_duration: int = 3
    merge_gap: int = 5
    realtime: bool = False
    retry_s: float = 5.0
    history: int = 300
    prefetch: int = 2
    jpeg_quality: int = 75
    max_frames: int | None = None

    def check(self) -> None:
        if not self.sources:
            raise ValueError("stgraph serve needs at least one --source")
        if not Path(self.model).is_dir():
            raise FileNotFoundError(f"--model: no saved pipeline folder at {self.model}")
        if not is_loopback(self.host) and not self.token:
            raise ValueError(f"--host {self.host} accepts connections from other machines: set "
                             "a token (--token or $STGRAPH_TOKEN)")
        if self.retry_s < 0 or self.history < 1 or self.prefetch < 1:
            raise ValueError("retry_s must be >= 0, history and prefetch >= 1")


def _encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    import cv2

    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise OSError("could not encode a JPEG frame")
    return data.tobytes()


@dataclass
class _EventFrames:
    """Keyframes of the open event: its first hot frame, its peak and its latest hot frame."""

    first: tuple[int, bytes] | None = None
    peak: tuple[int, bytes, float] | None = None
    last: tuple[int, bytes] | None = None

    def keyframes(self) -> list[tuple[int, bytes]]:
        chosen: dict[int, bytes] = {}
        for item in (self.first, self.peak, self.last):
            if item is not None:
                chosen.setdefault(item[0], item[1])
        return sorted(chosen.items())


@dataclass
class SourceState:
    """What the dashboard shows of one source (read by the web thread, written by the worker)."""

    name: str
    source: str
    status: str = "starting"     # starting, running, ended, failed, stopped
    error: str = ""
    runs: int = 0
    frames: int = 0
    events: int = 0
    fps: float = 0.0
    threshold: float = math.nan
    alarm: bool = False
    last_frame: int = -1
    last_score: float = math.nan
    scores: deque = field(default_factory=deque)
    jpeg: bytes | None = None
    jpeg_serial: int = 0


class SourceWorker:
    """One source in a thread: stream, score, draw, raise alarms, store events, retry.

    Memory per source is bounded: the read-ahead queue (``prefetch`` frames), the model's stream
    window, the last ``history`` scores, one overlay JPEG and the open event's keyframes.
    """

    def __init__(self, index: int, source: str, config: ServeConfig, store: EventStore) -> None:
        from stgraph.pipeline import video_name

        self.index = index
        self.source = source
        self.config = config
        self.store = store
        name = f"camera{source}" if str(source).isdigit() else video_name(source)
        self.state = SourceState(name=f"{index}:{name}", source=str(source))
        self.state.scores = deque(maxlen=config.history)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name=f"stgraph-source-{index}",
                                       daemon=True)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.thread.start()

    def close(self, timeout: float = 30.0) -> None:
        """Stop the stream (its open alarm is stored) and wait for the thread."""
        self.stop.set()
        self.thread.join(timeout)

    def _set(self, **values: Any) -> None:
        with self.lock:
            for key, value in values.items():
                setattr(self.state, key, value)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            s = self.state
            return {"index": self.index, "name": s.name, "source": s.source, "status": s.status,
                    "error": s.error, "runs": s.runs, "frames": s.frames, "events": s.events,
                    "fps": round(s.fps, 2), "alarm": s.alarm,
                    "threshold": s.threshold if math.isfinite(s.threshold) else None,
                    "last_frame": s.last_frame,
                    "last_score": s.last_score if math.isfinite(s.last_score) else None,
                    "scores": [[f, v if math.isfinite(v) else None] for f, v in s.scores]}

    def latest_jpeg(self) -> tuple[int, bytes | None]:
        with self.lock:
            return self.state.jpeg_serial, self.state.jpeg

    # ------------------------------------------------------------------ the loop
    def _loop(self) -> None:
        pipe = None
        while not self.stop.is_set():
            self._set(status="starting", runs=self.state.runs + 1)
            try:
                if pipe is None:
                    from stgraph.pipeline import Pipeline
                    pipe = Pipeline.load(self.config.model, progress=False)
                self._run(pipe)
                if not self.stop.is_set():
                    self._set(status="ended", error="")
            except Exception as exc:  # noqa: BLE001 - shown on the dashboard, then retried
                log.warning("source %s failed: %s", self.state.name, exc)
                self._set(status="failed", error=f"{type(exc).__name__}: {exc}")
            self._set(alarm=False)
            if self.stop.wait(self.config.retry_s):
                break
        self._set(status="stopped")

    def _run(self, pipe: Any) -> None:
        """One pass over the source (public streaming API, as ``stgraph watch``)."""
        from stgraph.stream import analysed_stream
        from stgraph.watch import FrameRate, OverlayRenderer, paced

        model = pipe.model
        source = pipe.source(int(self.source) if str(self.source).isdigit() else self.source)
        limit = (self.config.threshold if self.config.threshold is not None
                 else default_threshold(model, self.config.quantile))
        scorer = model.stream_scorer(fps=source.fps)
        tracker = AlarmTracker(limit, self.config.min_duration, self.config.merge_gap,
                               video=self.state.name)
        renderer = OverlayRenderer(limit, min(limit, default_threshold(model, 0.5)),
                                   box_levels=object_score_levels(model, self.config.quantile))
        rate, frames = FrameRate(), (paced(source) if self.config.realtime else source)
        keyframes = _EventFrames()
        self._set(threshold=float(limit))
        stream = analysed_stream(pipe, _first(frames, self.config.max_frames), keep_images=True,
                                 prefetch=self.config.prefetch)
        with self.lock:
            self.state.scores.clear()  # the chart shows this run only (frame numbers restart)
        self._set(status="running", error="")
        try:
            for item in stream:
                for result in scorer.push(item):
                    self._handle(result, tracker, renderer, rate, keyframes)
                if self.stop.is_set():
                    break
        finally:
            stream.close()  # stops the read-ahead thread
            for result in scorer.flush():
                self._handle(result, tracker, renderer, rate, keyframes)
            for event in tracker.close():
                self._store(event, keyframes)

    def _handle(self, result: Any, tracker: AlarmTracker, renderer: Any, rate: Any,
                keyframes: _EventFrames) -> None:
        events = tracker.update_result(result)
        for event in events:
            self._store(event, keyframes)
        hot = _hot(result, tracker.threshold)
        fps = rate.tick()
        overlay = renderer.render(result, tracker.active or hot, fps)
        jpeg = _encode_jpeg(overlay, self.config.jpeg_quality)
        if hot:
            frame = int(result.frame_index)
            if keyframes.first is None:
                keyframes.first = (frame, jpeg)
            if keyframes.peak is None or result.frame_score > keyframes.peak[2]:
                keyframes.peak = (frame, jpeg, float(result.frame_score))
            keyframes.last = (frame, jpeg)
        elif keyframes.last is not None \
                and result.frame_index - keyframes.last[0] > self.config.merge_gap:
            keyframes.first = keyframes.peak = keyframes.last = None  # too short to be an event
        with self.lock:
            s = self.state
            s.frames += 1
            s.fps = fps
            s.alarm = tracker.active or hot
            s.last_frame = int(result.frame_index)
            s.last_score = float(result.frame_score)
            s.scores.append((int(result.frame_index), float(result.frame_score)))
            s.jpeg, s.jpeg_serial = jpeg, s.jpeg_serial + 1

    def _store(self, event: AlarmEvent, keyframes: _EventFrames) -> None:
        frames = [(f, j) for f, j in keyframes.keyframes()
                  if event.start_frame <= f <= event.end_frame]
        self.store.add_event(self.state.name, event, frames)
        keyframes.first = keyframes.peak = keyframes.last = None
        with self.lock:
            self.state.events += 1


def _hot(result: Any, threshold: float) -> bool:
    return math.isfinite(result.frame_score) and result.frame_score > threshold


def _first(frames: Any, limit: int | None) -> Any:
    for k, frame in enumerate(frames):
        if limit is not None and k >= limit:
            return
        yield frame


# ---------------------------------------------------------------------------- the web app
def _page(name: str) -> str:
    return resources.files("stgraph.web").joinpath(name).read_text(encoding="utf-8")


def create_app(config: ServeConfig, start_sources: bool = True):
    """The FastAPI application: starts the source threads on startup, stops them and closes
    the store on shutdown (lifespan)."""
    try:
        from fastapi import FastAPI, HTTPException, Query, Request
        from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
    except ImportError as exc:
        raise ImportError("stgraph serve needs FastAPI and uvicorn: pip install fastapi "
                          "uvicorn") from exc
    config.check()
    store = open_store(config.db)
    workers = [SourceWorker(k, str(s), config, store) for k, s in enumerate(config.sources)]

    @asynccontextmanager
    async def lifespan(app: Any):
        if start_sources:
            for worker in workers:
                worker.start()
        try:
            yield
        finally:
            for worker in workers:
                worker.stop.set()
            for worker in workers:
                if worker.thread.is_alive():
                    await asyncio.to_thread(worker.close)
            store.close()

    app = FastAPI(title="stgraph serve", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.workers = workers
    app.state.store = store
    app.state.config = config

    @app.middleware("http")
    async def require_token(request: Request, call_next: Any):
        if config.token:
            given = (request.query_params.get("token")
                     or request.headers.get("authorization", "").removeprefix("Bearer ").strip()
                     or request.cookies.get(TOKEN_COOKIE, ""))
            if not hmac.compare_digest(given.encode(), config.token.encode()):
                return JSONResponse({"detail": "a valid token is required"}, status_code=401)
            response = await call_next(request)
            if request.query_params.get("token"):
                response.set_cookie(TOKEN_COOKIE, config.token, httponly=True, samesite="strict")
            return response
        return await call_next(request)

    def worker_at(index: int) -> SourceWorker:
        if not 0 <= index < len(workers):
            raise HTTPException(404, f"no source {index}; there are {len(workers)}")
        return workers[index]

    @app.get("/", response_class=HTMLResponse)
    def dashboard() -> str:
        return _page("dashboard.html")

    @app.get("/events", response_class=HTMLResponse)
    def events_page() -> str:
        return _page("events.html")

    @app.get("/api/sources")
    def sources() -> list[dict]:
        return [w.snapshot() for w in workers]

    @app.get("/api/sources/{index}/frame.jpg")
    def frame(index: int) -> Response:
        _, jpeg = worker_at(index).latest_jpeg()
        if jpeg is None:
            raise HTTPException(404, "no frame yet")
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @app.get("/video/{index}.mjpg")
    async def mjpeg(index: int, frames: int | None = Query(None, ge=1)) -> StreamingResponse:
        worker = worker_at(index)

        async def parts():
            seen, sent = -1, 0
            while frames is None or sent < frames:
                serial, jpeg = worker.latest_jpeg()
                if jpeg is not None and serial != seen:
                    seen, sent = serial, sent + 1
                    yield (b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                           + str(len(jpeg)).encode() + b"\r\n\r\n" + jpeg + b"\r\n")
                else:
                    if worker.stop.is_set():
                        return
                    await asyncio.sleep(0.04)

        return StreamingResponse(parts(), media_type="multipart/x-mixed-replace; boundary=frame",
                                 headers={"Cache-Control": "no-store"})

    @app.get("/api/events")
    def events(source: str | None = None, since: float | None = None,
               until: float | None = None, min_score: float | None = None,
               limit: int = Query(100, ge=1, le=10_000), offset: int = Query(0, ge=0)) -> dict:
        rows = store.list_events(source, since, until, min_score, limit, offset)
        return {"events": rows, "sources": sorted(set(store.sources())
                                                  | {w.state.name for w in workers})}

    @app.get("/api/events/{event_id}")
    def event(event_id: int) -> dict:
        found = store.get_event(event_id)
        if found is None:
            raise HTTPException(404, f"no event {event_id}")
        return found

    @app.get("/api/events/{event_id}/keyframes/{position}.jpg")
    def keyframe(event_id: int, position: int) -> Response:
        jpeg = store.keyframe(event_id, position)
        if jpeg is None:
            raise HTTPException(404, f"no keyframe {position} of event {event_id}")
        return Response(jpeg, media_type="image/jpeg")

    return app


def serve(config: ServeConfig, port: int = 8000, log_level: str = "info") -> None:
    """Run the dashboard with uvicorn until Ctrl-C (then every source stops cleanly)."""
    try:
        import uvicorn
    except ImportError as exc:
        raise ImportError("stgraph serve needs uvicorn: pip install uvicorn fastapi") from exc
    app = create_app(config)
    where = f"http://{config.host}:{port}/"
    log.info("stgraph serve: %d source(s) on %s; events in %s", len(config.sources), where,
             config.db)
    print(f"stgraph serve: {len(config.sources)} source(s), dashboard {where}, events page "
          f"{where}events, events stored in {app.state.store.url}; Ctrl-C to stop", flush=True)
    uvicorn.run(app, host=config.host, port=port, log_level=log_level)


def token_from_env(token: str | None) -> str | None:
    return token or os.environ.get("STGRAPH_TOKEN") or None
