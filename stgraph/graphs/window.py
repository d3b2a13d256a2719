"""Sliding-window object graph for streams (Ano-Graph test time, Sec. 4.1).

At test time Ano-Graph scores frame t on the graph of frames t - i .. t + i. In a stream, each new
frame adds one spatial block and one temporal block (previous -> new) to G_st, and the oldest
frame's blocks leave: :class:`SlidingWindowGraph` computes only those two blocks per frame and
reuses the cached ones, with the same block functions as :class:`ObjectGraphBuilder`, so its graph
equals ``builder.build(last size frames)`` exactly.

:class:`CentredWindows` is the one centred-window loop on top of it: each frame t is released with
the graph of frames ``t - radius .. t + radius`` once frame ``t + radius`` has arrived, and
:meth:`CentredWindows.flush` closes a video with ``radius`` empty frames. Batch scoring
(:meth:`stgraph.models.AnoGraph.score` with small radii), live streaming
(:mod:`stgraph.stream`) and explanations (:func:`stgraph.explain.explain_video`) all use it.
"""
from __future__ import annotations

from collections import deque
from typing import Any, NamedTuple

import torch
from torch import Tensor
import stgraph._pyg  # noqa: F401  (imports torch_geometric without torch's jit.script notice)
from torch_geometric.data import Data

from detectors.base import Detections
from stgraph.graphs.object_graph import (EdgeBlock, GraphBuildError,
                                         check_frames, first_node_ids, graph_data, merge_blocks,
                                         node_tensors, offset_blocks, stack_features)

__all__ = ["SlidingWindowGraph", "CentredWindows", "CentredWindow"]


class SlidingWindowGraph:
    """Graph of the last ``size`` frames of a stream, updated incrementally.

    Args:
        builder: the graph settings (spatial/temporal blocks, self loops, sparsification).
        size: frames per window; the paper uses ``2 * i + 1`` (i frames either side of the
            scored frame).

    Example:
        >>> window = SlidingWindowGraph(ObjectGraphBuilder(), size=25)
        >>> for det in detections_stream:
        ...     graph = window.push(det)   # graph of up to 25 latest frames
    """

    def __init__(self, builder: Any, size: int) -> None:
        self.builder = builder
        self.size = size
        self._frames: deque[Detections] = deque()  # held frames, oldest first
        self._rows: deque[EdgeBlock] = deque()     # edges leaving each held frame (S_t, then T_t)

    def push(self, detections: Detections) -> Data:
        """Add the next frame (with ``features`` [N, D]); return the graph of the held frames.

        Computes the new frame's spatial block and the temporal block from the previous frame; the
        result equals ``builder.build`` of the held frames (same tensors, same edge order). Until
        :meth:`reset`, ``frame_index`` must increase and the feature width D must stay the same
        (checked against the held frames). Frames are held by reference: do not modify a
        ``Detections`` after pushing it. A rejected frame leaves the window unchanged.
        """
        self._check_params()
        if not isinstance(detections, Detections):
            raise GraphBuildError(
                f"push expects the Detections of one frame, got {type(detections).__name__}")
        check_frames([*self._frames, detections])
        boxes = torch.from_numpy(detections.boxes)
        spatial = self.builder.spatial_blocks(boxes, [len(detections)])[0]
        if self._frames and self.size > 1:
            pair = [self._frames[-1], detections]
            temporal = self.builder.temporal_blocks(stack_features(pair), [len(d) for d in pair])[0]
            self._rows[-1] = merge_blocks(self._rows[-1], temporal)
        self._frames.append(detections)
        self._rows.append(spatial)
        if len(self._frames) > self.size:
            self._frames.popleft()
            self._rows.popleft()
        frames = list(self._frames)
        starts = first_node_ids([len(d) for d in frames])
        return graph_data(node_tensors(frames), offset_blocks(self._rows, starts))

    def reset(self) -> None:
        """Forget all held frames (call between videos)."""
        self._frames.clear()
        self._rows.clear()

    @property
    def frames(self) -> list[int]:
        """``frame_index`` of each held frame, oldest first."""
        return [d.frame_index for d in self._frames]

    def __len__(self) -> int:
        return len(self._frames)

    def _check_params(self) -> None:
        if not all(hasattr(self.builder, name) for name in ("spatial_blocks", "temporal_blocks")):
            raise GraphBuildError(
                f"a sliding window needs a builder with spatial_blocks/temporal_blocks (an "
                f"object graph builder), got {type(self.builder).__name__}")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1:
            raise GraphBuildError(
                f"size must be an integer >= 1 (frames per window), got {self.size!r}")

    def get_params(self) -> dict:
        """Constructor arguments (JSON-serialisable; the builder as its own params)."""
        return {"builder": self.builder.get_params(), "size": self.size}

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(size={self.size}, held={len(self)}, "
                f"builder={self.builder!r})")


class CentredWindow(NamedTuple):
    """A frame released by :class:`CentredWindows` with the graph it is scored on.

    ``detections``: the centre frame; ``graph``: the graph of frames ``t - radius .. t + radius``
    (cut at the ends of the video); ``rows``: int64 [N_t], the centre frame's node ids in
    ``graph``, in row order; ``payload``: what was pushed with the frame (e.g. its image).
    """

    detections: Detections
    graph: Data
    rows: Tensor
    payload: Any


class CentredWindows:
    """Release each frame with the graph of the ``radius`` frames either side of it.

    Args:
        builder: the graph settings (an :class:`~stgraph.graphs.object_graph.ObjectGraphBuilder`).
        radius: frames either side of the centre; the latency in frames.
        feature_width: D, the node feature width (for the empty frames that close a video).

    :meth:`push` frames in time order; frame t comes out of the push of frame ``t + radius``.
    :meth:`flush` pushes ``radius`` empty frames, which add no nodes and no edges, so the last
    frames are scored on windows that end where the video ends, like the first ones. State held:
    at most ``2 * radius + 1`` frames in the window and ``radius + 1`` waiting.
    """

    def __init__(self, builder: Any, radius: int, feature_width: int) -> None:
        if isinstance(radius, bool) or not isinstance(radius, int) or radius < 0:
            raise GraphBuildError(f"radius must be an int >= 0 (frames), got {radius!r}")
        self.radius = radius
        self.feature_width = feature_width
        self.window = SlidingWindowGraph(builder, 2 * radius + 1)
        self._pending: deque[tuple[int, Detections, Any]] = deque()
        self._pushed = 0
        self._last: Detections | None = None

    @property
    def held_frames(self) -> tuple[int, int]:
        """``(frames in the window, frames waiting for release)``."""
        return len(self.window), len(self._pending)

    def reset(self) -> None:
        """Forget the stream (start a new video)."""
        self.window.reset()
        self._pending.clear()
        self._pushed = 0
        self._last = None

    def push(self, detections: Detections, payload: Any = None) -> list[CentredWindow]:
        """Add the next frame; return the frame released by it (none in the first ``radius``)."""
        return self._advance(detections, payload, real=True)

    def flush(self) -> list[CentredWindow]:
        """End of the video: release the frames still waiting (then call :meth:`reset`)."""
        if self._last is None or not self._pending:
            return []
        last, out = self._last, []
        for k in range(self.radius):
            pad = Detections.empty(last.frame_index + 1 + k, last.image_size, last.class_names,
                                   self.feature_width)
            out += self._advance(pad, None, real=False)
        return out

    def _advance(self, detections: Detections, payload: Any, real: bool) -> list[CentredWindow]:
        graph = self.window.push(detections)  # validates order and width first
        number = self._pushed
        self._pushed += 1
        if real:
            self._pending.append((number, detections, payload))
            self._last = detections
        if not self._pending or number - self._pending[0][0] < self.radius:
            return []
        _, centre, centre_payload = self._pending.popleft()
        rows = torch.nonzero(graph.frame == centre.frame_index).reshape(-1)
        return [CentredWindow(centre, graph, rows, centre_payload)]
