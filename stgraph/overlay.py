"""Scored boxes drawn over a video: an overlay video (.mp4/.avi) or a PNG of the peak frame.

:func:`write_overlay` reads the frames of a video again, draws every object the
:class:`~stgraph.scores.ScoreTable` holds for it (boxes coloured by anomaly score on one colour scale
for the whole video, green = low, red = high, each labelled with its score) and writes the frame
score in a banner at the top. A table without object rows draws the ``top_patches`` highest patch
rows of each frame instead; frame rows are the banner's score; the video's pixel maps, if any, are
blended in under the boxes (one colour scale for the video, :data:`stgraph.viz.HEATMAP_CMAP`)::

    table = pipe.score("test/01.avi")
    write_overlay("test/01.avi", table, "01", "overlay.mp4")   # every frame
    write_overlay("test/01.avi", table, "01", "peak.png")      # the frame with the highest score

Boxes are drawn in the pixel coordinates the table holds, so pass the ``resize`` the video was
scored with. Files are written atomically (temp file, then rename).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from stgraph.fileio import atomic_path, check_output_file
from stgraph.io.frames import Frame, open_source
from stgraph.scores import ScoreTable
from stgraph.viz import blend_heatmap, draw_boxes, fit_text_scale

__all__ = ["write_overlay", "check_overlay_path", "VIDEO_SUFFIXES", "IMAGE_SUFFIXES"]

VIDEO_SUFFIXES = (".mp4", ".avi")
IMAGE_SUFFIXES = (".png",)
FOURCC = "mp4v"


class _VideoScores:
    """The drawn rows of one video of a table (object rows, else patch rows), grouped by frame,
    with the frame scores and the pixel maps."""

    def __init__(self, table: ScoreTable, name: str, reduce: str, top_patches: int = 3):
        if name not in table.video_frames:
            raise ValueError(f"video {name!r} is not in the score table; it has {table.videos}")
        video = table.select(name)
        self.kind = next((kind for kind in ("object", "patch") if kind in video.kinds), None)
        rows = video.select(kind=[self.kind] if self.kind else [])
        self.top = top_patches if self.kind == "patch" else None
        self.maps = video.pixel_maps.get(name)
        self.name = name
        self.frame_column = np.asarray(rows["frame"])  # int64 [R], sorted
        self.boxes = np.stack([rows[c] for c in ("x1", "y1", "x2", "y2")], axis=1)  # float32 [R, 4]
        self.scores = np.asarray(rows["score"], np.float64)  # [R]
        fs = video.frame_scores(reduce=reduce)[name]
        self.frames, self.frame_scores = fs.frames, fs.scores  # int64 [T], float64 [T]
        self.vmin = float(self.scores.min()) if len(self.scores) else 0.0
        self.vmax = float(self.scores.max()) if len(self.scores) else 1.0

    def rows_of(self, frame: int) -> np.ndarray:
        """int64 [K]: the drawn rows of ``frame`` (the ``top`` highest patches for patch rows)."""
        lo, hi = np.searchsorted(self.frame_column, [frame, frame + 1])
        rows = np.arange(lo, hi)
        if self.top is not None:
            rows = rows[np.argsort(-self.scores[rows], kind="stable")[:self.top]]
        return rows

    def frame_score(self, frame: int) -> float | None:
        k = int(np.searchsorted(self.frames, frame))
        return float(self.frame_scores[k]) if k < len(self.frames) and self.frames[k] == frame else None

    @property
    def peak_frame(self) -> int:
        if not len(self.frames):
            raise ValueError(f"video {self.name!r} has no scored frames")
        return int(self.frames[int(np.argmax(self.frame_scores))])


def _draw_frame(frame: Frame, scores: _VideoScores) -> np.ndarray:
    """uint8 [H, W, 3] BGR: ``frame.image`` with its scored boxes and a frame-score banner."""
    rows = scores.rows_of(frame.index)
    box_scores = scores.scores[rows]
    image = frame.image
    score_map = None if scores.maps is None else scores.maps.map_of(frame.index)
    if score_map is not None:
        image = blend_heatmap(image, score_map, float(scores.maps.maps.min()),
                              float(scores.maps.maps.max()))
    image = draw_boxes(image, scores.boxes[rows], box_scores,
                       labels=[f"{s:.2f}" for s in box_scores], vmin=scores.vmin, vmax=scores.vmax)
    value = scores.frame_score(frame.index)
    text = f"{scores.name} frame {frame.index}  " + ("not scored" if value is None else f"score {value:.3f}")
    scale = fit_text_scale(text, image.shape[1] - 8)
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.rectangle(image, (0, 0), (w + 8, h + base + 6), (0, 0, 0), -1)
    cv2.putText(image, text, (4, h + 3), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return image


def _describe(video: Any) -> str:
    """How error messages name ``video``: its path, or its source name, never array contents."""
    if isinstance(video, (str, Path)):
        return str(video)
    return str(getattr(video, "name", type(video).__name__))


def check_overlay_path(out: str | Path) -> Path:
    """``out`` as a Path, after checking it names a file :func:`write_overlay` can write (a
    ``.mp4`` / ``.avi`` / ``.png`` file name, not a directory): call it before any work starts."""
    out = check_output_file(out, "overlay output")
    if out.suffix.lower() not in VIDEO_SUFFIXES + IMAGE_SUFFIXES:
        raise ValueError(f"overlay output {out} must end in {', '.join(VIDEO_SUFFIXES + IMAGE_SUFFIXES)}")
    return out


def _write_peak_png(source, scores: _VideoScores, video: Any, out: Path) -> Path:
    peak = scores.peak_frame
    for frame in source:
        if frame.index == peak:
            with atomic_path(out) as tmp:
                if not cv2.imwrite(str(tmp), _draw_frame(frame, scores)):
                    raise OSError(f"OpenCV could not write {out}")
            return out
        if frame.index > peak:
            break
    raise ValueError(f"{_describe(video)} has no frame {peak} (the peak-score frame of {scores.name!r} in the "
                     "score table): is it the video that was scored?")


def _write_video(source, scores: _VideoScores, video: Any, out: Path, fps: float | None) -> Path:
    matched = written = 0
    with atomic_path(out) as tmp:
        writer = None
        try:
            for frame in source:
                if writer is None:
                    h, w = frame.image.shape[:2]
                    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*FOURCC),
                                             float(fps or source.fps), (w, h))
                    if not writer.isOpened():
                        raise OSError(f"OpenCV cannot write {FOURCC!r} video to {out}")
                matched += scores.frame_score(frame.index) is not None
                writer.write(_draw_frame(frame, scores))
                written += 1
        finally:
            if writer is not None:
                writer.release()
        if written == 0:
            raise ValueError(f"{_describe(video)} yielded no frames")
        if matched == 0 and len(scores.frames):
            raise ValueError(f"none of the {written} frames of {_describe(video)} is a scored frame of "
                             f"{scores.name!r}: is it the video that was scored?")
    return out


def write_overlay(video: Any, table: ScoreTable, name: str, out: str | Path, *,
                  resize: tuple[int, int] | None = None, fps: float | None = None,
                  reduce: str = "max") -> Path:
    """Draw the scored boxes of video ``name`` of ``table`` over the frames of ``video``.

    Args:
        video: what :func:`~stgraph.io.frames.open_source` opens (video file, frame folder,
            [T, H, W, 3] array, a ``FrameSource``).
        table: scores of that video (its rows named ``name``).
        name: the video's name in ``table``.
        out: ``.mp4`` / ``.avi`` (every frame, codec ``mp4v``) or ``.png`` (the frame with the
            highest frame score only).
        resize: ``(W, H)`` the video was scored at (boxes are in those pixels).
        fps: frame rate of the written video (default: the source's).
        reduce: how object scores make the frame score in the banner (see
            :meth:`ScoreTable.frame_scores`).

    Returns:
        ``out`` as a Path.

    Raises:
        ValueError: bad output suffix, ``name`` not in the table, or frames that do not fit it.
        stgraph.io.frames.SourceError (an ``OSError``): the video cannot be opened or read.
    """
    out = check_overlay_path(out)
    suffix = out.suffix.lower()
    scores = _VideoScores(table, name, reduce)
    source = open_source(video, resize=resize)
    if suffix in IMAGE_SUFFIXES:
        return _write_peak_png(source, scores, video, out)
    return _write_video(source, scores, video, out, fps)
