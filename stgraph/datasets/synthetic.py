"""Synthetic surveillance walkway with walking people and injected anomalies of known kind.

A seeded generator of short grey-scale videos in the spirit of UCSD Ped2 (fixed camera, people
walking along a walkway), with exact ground truth: every object's box in every frame, its kind,
and frame labels. It is the demo's default data and the tests' workhorse.

Scene (``size = (H, W)``, default 240×360):

* a static textured background: a lighter walkway band (rows ``0.28 H`` to ``0.95 H``) with paving
  joints and kerb lines, darker foliage-like texture above it, light sensor noise on every frame;
* **normal** objects: people (dark blobs of about 12×28 px with a head, shades varying per person)
  walking **horizontally**, left→right or right→left, at 1-2 px/frame with a small vertical drift
  (below 0.1 px/frame), entering and leaving through the left and right edges. The *normal flow*
  is horizontal motion along the walkway; nothing else is normal;
* **anomalies** (:data:`ANOMALY_KINDS`), each starting at frame ``anomaly_start``:

  - ``fast``: a person running along the walkway at 3-5× the mean normal speed;
  - ``wrong_direction``: a person walking vertically (top→bottom or bottom→top), across the flow;
  - ``shape``: a light vehicle-like box (about 40×20 px) moving along the walkway at walking speed;
  - ``loitering``: a person who walks in, then stands still from ``anomaly_start`` on.

  The first three enter through an edge at ``anomaly_start`` and are anomalous in every frame where
  they are visible; the loiterer is anomalous from the frame it stops.

An object counts as *visible* in a frame when at least half of its box lies inside the frame; labels
and box lists only include visible objects (boxes clipped to the frame). A frame is labelled 1 when
an anomalous object is visible in it.

Example:
    >>> video = make_video(seed=0, anomalies=("fast",))
    >>> video.frames.shape, video.labels.dtype
    ((120, 240, 360, 3), dtype('uint8'))
    >>> dets = video.ground_truth_detections()        # list[Detections], one per frame
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from detectors.base import Detections
from stgraph.io.frames import ArraySource
from stgraph.fileio import atomic_path

__all__ = ["ANOMALY_KINDS", "CLASS_NAMES", "SceneObject", "SyntheticVideo", "make_video",
           "make_normal_videos", "make_test_videos", "render_background", "render_frames"]

ANOMALY_KINDS = ("fast", "wrong_direction", "shape", "loitering")
#: Appearance classes of ``ground_truth_detections``: what a detector sees, not the anomaly kind.
CLASS_NAMES = ("person", "vehicle")
NORMAL_SPEED_PX = (1.0, 2.0)  # range of walking speeds, pixels per frame
FAST_FACTOR = (3.0, 5.0)  # "fast" speed as a multiple of the mean normal speed
WALKWAY_ROWS = (0.28, 0.95)  # walkway band, as fractions of the frame height
NOISE_STD = 2.0  # sensor noise, grey levels
_SHIFT = 4  # cv2 drawing: coordinates in 1/16 pixel


@dataclass(eq=False)  # array fields: compare explicitly, not with ==
class SceneObject:
    """One object of a synthetic scene over the whole video (T frames).

    Attributes:
        track_id: identity, unique within the video.
        kind: ``"normal"`` or one of :data:`ANOMALY_KINDS`.
        shape: ``"person"`` or ``"vehicle"`` (its appearance class, see :data:`CLASS_NAMES`).
        shade: grey level 0-255 it is drawn with.
        boxes: float32 [T, 4] xyxy pixels, **not** clipped (off-frame before it enters and
            after it leaves).
        visible: bool [T], at least half of the box inside the frame.
        anomalous: bool [T], visible and behaving abnormally.
    """

    track_id: int
    kind: str
    shape: str
    shade: int
    boxes: np.ndarray = field(repr=False)
    visible: np.ndarray = field(repr=False)
    anomalous: np.ndarray = field(repr=False)


@dataclass(eq=False)  # array fields: compare explicitly, not with ==
class SyntheticVideo:
    """A rendered synthetic video with its ground truth.

    Attributes:
        name: video name (used as the ``video`` column of score tables).
        frames: uint8 [T, H, W, 3] BGR (grey content, B = G = R).
        objects: every object of the scene, ordered by ``track_id``.
        fps: frame rate, frames per second.

    Per-frame views (lists of length T, rows ordered by track id): :attr:`object_boxes`,
    :attr:`object_kinds`, :attr:`track_ids` (visible objects), :attr:`gt_boxes` (anomalous
    objects); :attr:`labels` uint8 [T] frame labels.
    """

    name: str
    frames: np.ndarray = field(repr=False)
    objects: list[SceneObject] = field(repr=False)
    fps: float = 10.0

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the frames."""
        return int(self.frames.shape[1]), int(self.frames.shape[2])

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    @property
    def anomaly_kinds(self) -> tuple[str, ...]:
        """Kinds of the injected anomalies, in track order."""
        return tuple(o.kind for o in self.objects if o.kind != "normal")

    def _stacked(self, attr: str) -> np.ndarray:
        return np.stack([getattr(o, attr) for o in self.objects])  # [M, T, ...]

    def _rows_per_frame(self, mask: np.ndarray, values: np.ndarray) -> list[np.ndarray]:
        """``values[mask[:, t], t]`` for every frame t (mask [M, T], values [M, T, ...])."""
        return [values[mask[:, t], t] for t in range(mask.shape[1])]

    @cached_property
    def labels(self) -> np.ndarray:
        """uint8 [T]: 1 where an anomalous object is visible."""
        return self._stacked("anomalous").any(axis=0).astype(np.uint8)

    @cached_property
    def _clipped_boxes(self) -> np.ndarray:
        h, w = self.size
        return np.clip(self._stacked("boxes"), 0, [w, h, w, h]).astype(np.float32)  # [M, T, 4]

    @cached_property
    def gt_boxes(self) -> list[np.ndarray]:
        """Per frame, float32 [K_t, 4] clipped xyxy boxes of the anomalous objects."""
        return self._rows_per_frame(self._stacked("anomalous"), self._clipped_boxes)

    @cached_property
    def object_boxes(self) -> list[np.ndarray]:
        """Per frame, float32 [M_t, 4] clipped xyxy boxes of all visible objects."""
        return self._rows_per_frame(self._stacked("visible"), self._clipped_boxes)

    @cached_property
    def track_ids(self) -> list[np.ndarray]:
        """Per frame, int64 [M_t] track ids of the visible objects (rows of ``object_boxes``)."""
        ids = np.array([o.track_id for o in self.objects], np.int64)
        return self._rows_per_frame(self._stacked("visible"), np.repeat(ids[:, None], len(self), 1))

    @cached_property
    def object_kinds(self) -> list[list[str]]:
        """Per frame, the kind of each visible object (rows of :attr:`object_boxes`)."""
        kinds = {o.track_id: o.kind for o in self.objects}
        return [[kinds[int(i)] for i in ids] for ids in self.track_ids]

    def ground_truth_detections(self) -> list[Detections]:
        """Oracle detections: one ``Detections`` per frame with every visible object.

        ``labels`` index :data:`CLASS_NAMES` by appearance (person / vehicle), never by anomaly
        kind, so a model fed these boxes is not told the answer; ``scores`` are 1 and
        ``track_ids`` are set. Row order follows :attr:`object_boxes` / :attr:`object_kinds`.
        """
        class_of = {o.track_id: CLASS_NAMES.index(o.shape) for o in self.objects}
        return [
            Detections(boxes, np.ones(len(ids), np.float32), [class_of[int(i)] for i in ids],
                       frame_index=t, image_size=self.size, class_names=CLASS_NAMES, track_ids=ids)
            for t, (boxes, ids) in enumerate(zip(self.object_boxes, self.track_ids))
        ]

    def source(self, resize: tuple[int, int] | None = None, stride: int = 1) -> ArraySource:
        """The frames as a :class:`~stgraph.io.frames.ArraySource` (``resize`` = (W, H))."""
        return ArraySource(self.frames, resize=resize, stride=stride, fps=self.fps, name=self.name)

    def write_video(self, path: str | Path, fourcc: str = "mp4v") -> Path:
        """Encode the frames to a video file (atomically: temp file, then rename); returns the path.

        Raises:
            OSError: OpenCV has no encoder for ``fourcc`` and this file extension.
        """
        path = Path(path)
        h, w = self.size
        with atomic_path(path) as tmp:
            writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*fourcc), float(self.fps), (w, h))
            try:
                if not writer.isOpened():
                    raise OSError(f"OpenCV cannot write {fourcc!r} video to {path} "
                                  "(try another fourcc or file extension)")
                for frame in self.frames:
                    writer.write(frame)
            finally:
                writer.release()
        return path

    def __repr__(self) -> str:
        h, w = self.size
        return (f"SyntheticVideo({self.name!r}, frames={len(self)}, size={h}x{w}, "
                f"objects={len(self.objects)}, anomalies={self.anomaly_kinds}, "
                f"anomalous_frames={int(self.labels.sum())})")


# ------------------------------------------------------------------------------------ background
def _walkway(height: int) -> tuple[float, float]:
    """(top, bottom) rows of the walkway band in pixels."""
    return WALKWAY_ROWS[0] * height, WALKWAY_ROWS[1] * height


def render_background(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """Static grey background uint8 [H, W]: textured surroundings above a lighter paved walkway."""
    height, width = size
    top, bottom = _walkway(height)
    fine = cv2.GaussianBlur(rng.standard_normal(size).astype(np.float32), (0, 0), 1.5)
    fine /= fine.std() + 1e-6
    coarse = rng.standard_normal((height // 12 + 2, width // 12 + 2)).astype(np.float32)
    coarse = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    rows = np.arange(height, dtype=np.float32)[:, None]
    on_walkway = (rows >= top) & (rows < bottom)
    joints = on_walkway & ((rows - top) % (height / 10) < 1.0)
    kerbs = (np.abs(rows - top) < 1.5) | (np.abs(rows - bottom) < 1.5)
    image = np.where(on_walkway, 172.0 + 4.0 * fine, 118.0 + 10.0 * fine + 22.0 * coarse)
    image = image - 14.0 * joints - 40.0 * kerbs
    return np.clip(image, 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------ trajectories
# Each returns float [T, 2] box centres in pixels for frames ``t`` [T]; ``box_size`` is (w, h).
Size = tuple[int, int]  # (H, W) pixels
BoxSize = tuple[float, float]  # (w, h) pixels


def _along_walkway(rng: np.random.Generator, t: np.ndarray, size: Size, box_size: BoxSize,
                   speed: float, enter_frame: float) -> np.ndarray:
    """Horizontal walk, left→right or right→left, entering through a side edge at ``enter_frame``
    (its centre on the edge), with a small vertical drift kept inside the walkway."""
    height, width = size
    top, bottom = _walkway(height)
    low, high = top + box_size[1] / 2, bottom - box_size[1] / 2
    direction = rng.choice([-1.0, 1.0])
    start_x = 0.0 if direction > 0 else float(width)
    y0, drift = rng.uniform(low, high), rng.uniform(-0.1, 0.1)
    x = start_x + direction * speed * (t - enter_frame)
    y = np.clip(y0 + drift * (t - enter_frame), low, high)
    return np.stack([x, y], axis=1)


def _normal_walk(rng: np.random.Generator, t: np.ndarray, size: Size, box_size: BoxSize,
                 speed: float, start: int) -> np.ndarray:
    """A walker entering at a random time; some are already inside at frame 0."""
    crossing_frames = (size[1] + box_size[0]) / speed
    enter_frame = rng.uniform(-crossing_frames, 0.8 * len(t))
    return _along_walkway(rng, t, size, box_size, speed, enter_frame)


def _fast_walk(rng: np.random.Generator, t: np.ndarray, size: Size, box_size: BoxSize,
               speed: float, start: int) -> np.ndarray:
    """A runner entering at ``start`` at 3-5× the mean normal speed."""
    fast_speed = float(np.mean(NORMAL_SPEED_PX) * rng.uniform(*FAST_FACTOR))
    return _along_walkway(rng, t, size, box_size, fast_speed, start)


def _entering_walk(rng: np.random.Generator, t: np.ndarray, size: Size, box_size: BoxSize,
                   speed: float, start: int) -> np.ndarray:
    """A normal-speed walk along the walkway entering at ``start`` (the vehicle's path)."""
    return _along_walkway(rng, t, size, box_size, speed, start)


def _vertical_walk(rng: np.random.Generator, t: np.ndarray, size: Size, box_size: BoxSize,
                   speed: float, start: int) -> np.ndarray:
    """A walk across the flow: enters through the top or bottom edge at ``start``."""
    height, width = size
    direction = rng.choice([-1.0, 1.0])
    x = rng.uniform(0.2 * width, 0.8 * width)
    y = (0.0 if direction > 0 else float(height)) + direction * speed * (t - start)
    return np.stack([np.full(len(t), x), y], axis=1)


def _loiter(rng: np.random.Generator, t: np.ndarray, size: Size, box_size: BoxSize,
            speed: float, start: int) -> np.ndarray:
    """Walks in along the walkway and stands still from ``start`` on, inside the frame."""
    height, width = size
    top, bottom = _walkway(height)
    direction = rng.choice([-1.0, 1.0])
    stop_x = rng.uniform(0.25 * width, 0.75 * width)
    y = rng.uniform(top + box_size[1] / 2, bottom - box_size[1] / 2)
    x = stop_x - direction * speed * np.maximum(start - t, 0)
    return np.stack([x, np.full(len(t), y)], axis=1)


_TRAJECTORIES = {"normal": _normal_walk, "fast": _fast_walk, "wrong_direction": _vertical_walk,
                 "shape": _entering_walk, "loitering": _loiter}


def _visible(boxes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """bool [T]: at least half of each box [T, 4] lies inside the frame."""
    height, width = size
    clipped = np.clip(boxes, 0, [width, height, width, height])
    inside = np.prod(clipped[:, 2:] - clipped[:, :2], axis=1)
    return inside >= 0.5 * np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)


def _make_object(rng: np.random.Generator, track_id: int, kind: str, t: np.ndarray,
                 size: tuple[int, int], start: int) -> SceneObject:
    """Trajectory and appearance of one object; an anomaly begins at frame ``start``."""
    speed = float(rng.uniform(*NORMAL_SPEED_PX))
    if kind == "shape":
        box_size = float(rng.uniform(36, 44)), float(rng.uniform(18, 22))
        shape, shade = "vehicle", int(rng.integers(215, 241))
    else:
        box_size = float(rng.uniform(10, 14)), float(rng.uniform(24, 32))
        shape, shade = "person", int(rng.integers(25, 86))
    centres = _TRAJECTORIES[kind](rng, t, size, box_size, speed, start)
    half = np.array(box_size) / 2
    boxes = np.concatenate([centres - half, centres + half], axis=1).astype(np.float32)
    visible = _visible(boxes, size)
    abnormal = np.zeros(len(t), bool) if kind == "normal" else t >= start
    return SceneObject(track_id=track_id, kind=kind, shape=shape, shade=shade, boxes=boxes,
                       visible=visible, anomalous=visible & abnormal)


# ------------------------------------------------------------------------------------ rendering
def _draw(canvas: np.ndarray, obj: SceneObject, t: int) -> None:
    """Draw ``obj`` as it is in frame ``t`` onto the grey uint8 ``canvas`` (in place, smooth)."""
    x1, y1, x2, y2 = obj.boxes[t]
    w, h = x2 - x1, y2 - y1
    cx = (x1 + x2) / 2
    sub = 1 << _SHIFT

    def pt(x: float, y: float) -> tuple[int, int]:
        return int(round(x * sub)), int(round(y * sub))

    def disc(x: float, y: float, radius: float, shade: int) -> None:
        cv2.circle(canvas, pt(x, y), int(round(radius * sub)), shade, -1, cv2.LINE_AA, _SHIFT)

    if obj.shape == "person":  # body ellipse over the lower 80 %, head disc on top
        cv2.ellipse(canvas, pt(cx, y1 + 0.6 * h), pt(w / 2, 0.4 * h), 0, 0, 360, obj.shade, -1,
                    cv2.LINE_AA, _SHIFT)
        disc(cx, y1 + 0.15 * h, 0.15 * h, obj.shade)
    else:  # vehicle body, two dark wheels
        cv2.rectangle(canvas, pt(x1, y1), pt(x2, y2 - 0.2 * h), obj.shade, -1, cv2.LINE_AA, _SHIFT)
        for wheel_x in (x1 + 0.2 * w, x2 - 0.2 * w):
            disc(wheel_x, y2 - 0.2 * h, 0.2 * h, 40)


def render_frames(rng: np.random.Generator, background: np.ndarray,
                  objects: Sequence[SceneObject], n_frames: int) -> np.ndarray:
    """uint8 [T, H, W, 3] BGR: objects drawn back to front (lower bottom edge = nearer), then
    sensor noise."""
    height, width = background.shape
    frames = np.empty((n_frames, height, width), np.uint8)
    for t in range(n_frames):
        canvas = background.copy()
        on_canvas = [o for o in objects if o.boxes[t, 2] > 0 and o.boxes[t, 0] < width
                     and o.boxes[t, 3] > 0 and o.boxes[t, 1] < height]
        for obj in sorted(on_canvas, key=lambda o: o.boxes[t, 3]):
            _draw(canvas, obj, t)
        noise = rng.standard_normal((height, width), dtype=np.float32) * NOISE_STD
        frames[t] = np.clip(canvas + noise, 0, 255).astype(np.uint8)
    return np.repeat(frames[..., None], 3, axis=3)


# ------------------------------------------------------------------------------------ public API
def make_video(seed: int, n_frames: int = 120, n_people: int = 6, anomalies: Sequence[str] = (),
               anomaly_start: int | None = None, size: tuple[int, int] = (240, 360),
               fps: float = 10.0, name: str | None = None) -> SyntheticVideo:
    """Render one synthetic walkway video (deterministic in ``seed``).

    Args:
        seed: seed of every random choice (layout, people, noise).
        n_frames: number of frames T (>= 2).
        n_people: normal walkers; they enter at random times, some already inside at frame 0.
        anomalies: kinds to inject (each from :data:`ANOMALY_KINDS`; repeats allowed).
        anomaly_start: frame at which the anomalies start (they enter through an edge then, or
            a loiterer stops); default: drawn in ``[T/4, T/2]``.
        size: (H, W) in pixels (each >= 64).
        fps: frame rate stored with the video.
        name: video name; default ``"synthetic-<seed>"``.

    Returns:
        A :class:`SyntheticVideo`; anomalous objects get track ids after the normal people.
    """
    unknown = [k for k in anomalies if k not in ANOMALY_KINDS]
    if unknown:
        raise ValueError(f"unknown anomaly kinds {unknown}; choose from {ANOMALY_KINDS}")
    if n_frames < 2:
        raise ValueError(f"n_frames must be >= 2, got {n_frames}")
    if n_people < 0:
        raise ValueError(f"n_people must be >= 0, got {n_people}")
    size = (int(size[0]), int(size[1]))
    if min(size) < 64:
        raise ValueError(f"size must be (H, W) with both >= 64 pixels, got {size}")
    rng = np.random.default_rng(seed)
    if anomaly_start is None:
        anomaly_start = int(rng.integers(n_frames // 4, n_frames // 2 + 1))
    if not 0 <= anomaly_start < n_frames:
        raise ValueError(f"anomaly_start must be in [0, {n_frames}), got {anomaly_start}")
    t = np.arange(n_frames, dtype=np.float32)
    kinds = ["normal"] * n_people + list(anomalies)
    objects = [_make_object(rng, i, kind, t, size, anomaly_start) for i, kind in enumerate(kinds)]
    frames = render_frames(rng, render_background(rng, size), objects, n_frames)
    return SyntheticVideo(name=name or f"synthetic-{seed}", frames=frames, objects=objects,
                          fps=float(fps))


def _child_seeds(seed: int, n: int, stream: int) -> list[int]:
    """``n`` independent seeds derived from ``seed`` (stream 0: normal videos, 1: test videos)."""
    return [int(s) for s in np.random.SeedSequence([seed, stream]).generate_state(n)]


def make_normal_videos(n: int, seed: int = 0, n_frames: int = 120,
                       **kwargs) -> list[SyntheticVideo]:
    """``n`` anomaly-free videos named ``train-00``, ``train-01``, ...

    ``kwargs`` (``n_people``, ``size``, ``fps``) go to :func:`make_video`.
    """
    return [make_video(s, n_frames=n_frames, anomalies=(), name=f"train-{i:02d}", **kwargs)
            for i, s in enumerate(_child_seeds(seed, n, stream=0))]


def make_test_videos(n: int, seed: int = 0, kinds: Sequence[str] = ANOMALY_KINDS,
                     n_frames: int = 120, **kwargs) -> list[SyntheticVideo]:
    """``n`` videos with one anomaly each, kinds taken in turn from ``kinds``.

    Named ``test-00-fast``, ``test-01-wrong_direction``, ...; seeds differ from
    :func:`make_normal_videos` with the same ``seed``. Each video has normal frames before its
    anomaly starts and anomalous frames after. ``kwargs`` go to :func:`make_video`.
    """
    if not kinds:
        raise ValueError("make_test_videos needs at least one anomaly kind")
    return [make_video(s, n_frames=n_frames, anomalies=(kinds[i % len(kinds)],),
                       name=f"test-{i:02d}-{kinds[i % len(kinds)]}", **kwargs)
            for i, s in enumerate(_child_seeds(seed, n, stream=1))]
