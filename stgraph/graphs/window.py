"""Sliding-window object graph for streams (Ano-Graph test time, Sec. 4.1).

At test time Ano-Graph scores frame t on the graph of frames t - i .. t + i. In a stream, each new
frame adds one spatial block and one temporal block (previous -> new) to G_st, and the oldest
frame's blocks leave: :class:`SlidingWindowGraph` computes only those two blocks per frame and
reuses the cached ones, with the same block functions as :class:`ObjectGraphBuilder`, so its graph
equals ``builder.build(last size frames)`` exactly.
"""
from __future__ import annotations

from collections import deque

import torch
from torch_geometric.data import Data

from detectors.base import Detections
from stgraph.graphs.object_graph import (EdgeBlock, GraphBuildError, ObjectGraphBuilder,
                                         check_frames, first_node_ids, graph_data, merge_blocks,
                                         node_tensors, offset_blocks, stack_features)

__all__ = ["SlidingWindowGraph"]


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

    def __init__(self, builder: ObjectGraphBuilder, size: int) -> None:
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
        if not isinstance(self.builder, ObjectGraphBuilder):
            raise GraphBuildError(
                f"builder must be an ObjectGraphBuilder, got {type(self.builder).__name__}")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1:
            raise GraphBuildError(
                f"size must be an integer >= 1 (frames per window), got {self.size!r}")

    def get_params(self) -> dict:
        """Constructor arguments (JSON-serialisable; the builder as its own params)."""
        return {"builder": self.builder.get_params(), "size": self.size}

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(size={self.size}, held={len(self)}, "
                f"builder={self.builder!r})")
