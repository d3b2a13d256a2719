"""Patch-grid graphs (SSRL): one PyG ``Data`` per snippet and scale, patch nodes on a grid.

For a snippet t of a video's :class:`~stgraph.features.snippets.SnippetFeatures` and a grid
``(rows, cols)``, :meth:`PatchGridBuilder.build` gives::

    x           float32 [N, D]   the snippet feature of each patch cube (N = rows * cols, row-major)
    edge_index  int64   [2, E]   grid adjacency (4- or 8-neighbour), both directions, PyG order
    pos         int64   [N, 2]   (row, col) of each patch
    box         float32 [N, 4]   the patch's pixel box (xyxy)
    grid        int64   [1, 2]   (rows, cols)
    snippet     int64   [1]      t
    frame_range int64   [1, 2]   [start, end) frames of the snippet

SSRL's PSR attends densely over all patches of a scale (as the paper); ``edge_index`` is for
plotting and for users' own GNN layers. :class:`PatchGraphDataset` computes the graphs of a set
of videos once (snippet features cached by the extractor) and stores them like
:class:`~stgraph.datasets.graph_dataset.ObjectGraphDataset`::

    root/snippets/<key>.npz             per-video snippet features (the extractor's cache)
    root/processed/<key>/graphs.pt      all graphs of one setting (InMemoryDataset storage)

Example:
    >>> g = grid_edge_index(2, 3)
    >>> g.shape
    torch.Size([2, 14])
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

import stgraph._pyg  # noqa: F401  (imports torch_geometric without torch's jit.script notice)
from torch_geometric.data import Data

from stgraph.datasets.graph_dataset import KeyedGraphDataset
from stgraph.features.snippets import SnippetFeatures

__all__ = ["grid_edge_index", "PatchGridBuilder", "PatchGraphDataset"]

PATCH_DATASET_FORMAT = 1


def grid_edge_index(rows: int, cols: int, neighbours: int = 4) -> torch.Tensor:
    """int64 [2, E]: edges between grid neighbours (row-major node ids), both directions.

    Args:
        rows, cols: grid size.
        neighbours: 4 (up/down/left/right) or 8 (also diagonals).
    """
    if neighbours not in (4, 8):
        raise ValueError(f"neighbours must be 4 or 8, got {neighbours!r}")
    r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    r, c = r.reshape(-1), c.reshape(-1)
    offsets = [(0, 1), (1, 0)] + ([(1, 1), (1, -1)] if neighbours == 8 else [])
    src, dst = [], []
    for dr, dc in offsets:
        rr, cc = r + dr, c + dc
        ok = (rr >= 0) & (rr < rows) & (cc >= 0) & (cc < cols)
        a, b = r[ok] * cols + c[ok], rr[ok] * cols + cc[ok]
        src += [a, b]
        dst += [b, a]
    if not src:
        return torch.zeros((2, 0), dtype=torch.long)
    return torch.from_numpy(np.stack([np.concatenate(src), np.concatenate(dst)])).long()


class PatchGridBuilder:
    """Snippet features -> one patch-grid ``Data`` per (snippet, grid) (see module docstring).

    Args:
        neighbours: 4 or 8 (grid adjacency).
    """

    def __init__(self, neighbours: int = 4) -> None:
        self.neighbours = neighbours

    def get_params(self) -> dict:
        return {"neighbours": self.neighbours}

    def __repr__(self) -> str:
        return f"PatchGridBuilder(neighbours={self.neighbours})"

    def build(self, snippets: SnippetFeatures, snippet: int | None = None) -> list[Data]:
        """Graphs of snippet ``snippet`` (all grids), or of every snippet (snippet-major) if None."""
        which = range(snippets.n_snippets) if snippet is None else [int(snippet)]
        graphs = []
        for t in which:
            if not 0 <= t < snippets.n_snippets:
                raise ValueError(f"snippet {t} out of range 0..{snippets.n_snippets - 1}")
            for g, (rows, cols) in enumerate(snippets.grids):
                r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
                graphs.append(Data(
                    x=torch.from_numpy(np.asarray(snippets.features[g][t], np.float32).copy()),
                    edge_index=grid_edge_index(int(rows), int(cols), self.neighbours),
                    pos=torch.from_numpy(np.stack([r.reshape(-1), c.reshape(-1)], 1)).long(),
                    box=torch.from_numpy(snippets.grid_boxes(g)),
                    grid=torch.tensor([[int(rows), int(cols)]]),
                    snippet=torch.tensor([t]),
                    frame_range=torch.from_numpy(np.asarray(snippets.frame_ranges[t:t + 1],
                                                            np.int64).copy())))
        return graphs


class PatchGraphDataset(KeyedGraphDataset):
    """Patch-grid graphs of a set of videos, computed once and cached (see the module doc).

    Args:
        root: cache folder (created).
        videos: video paths, frame folders or dataset ``VideoItem`` s (names must be unique).
        extractor: a snippet extractor (``extract_video(video, cache_dir=) -> SnippetFeatures``
            and ``get_params``), e.g. :class:`~stgraph.features.snippets.SnippetExtractor`.
        builder: a :class:`PatchGridBuilder` (default 4-neighbour).
        labels: optional video-level labels [n_videos] (0/1), stored as ``video_label``.
        transform, pre_transform, force_reload: as in PyG.

    Each graph also holds ``video`` (str) and ``video_label`` (int64 [1], -1 if unknown).
    """

    def __init__(self, root: str | Path, videos: Sequence[Any], extractor: Any,
                 builder: PatchGridBuilder | None = None, labels: Sequence[int] | None = None,
                 transform: Callable | None = None, pre_transform: Callable | None = None,
                 force_reload: bool = False) -> None:
        from stgraph.cache import callable_key, component_key, fingerprint, settings_key
        from stgraph.pipeline import settings_of, video_name

        self.videos = list(videos)
        if not self.videos:
            raise ValueError("PatchGraphDataset needs at least one video")
        self.names = [video_name(v) for v in self.videos]
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"video names must be unique, got {self.names}")
        if labels is not None and len(labels) != len(self.videos):
            raise ValueError(f"labels must give one value per video: {len(labels)} for "
                             f"{len(self.videos)} videos")
        self.labels = None if labels is None else [int(v) for v in labels]
        self.extractor, self.builder = extractor, builder or PatchGridBuilder()
        self.settings = {"format": PATCH_DATASET_FORMAT, "extractor": settings_of(extractor),
                         "builder": self.builder.get_params(), "labels": self.labels,
                         "pre_transform": callable_key(pre_transform)}
        paths = [getattr(v, "path", v) for v in self.videos]
        self.key = settings_key(component_key(self.settings),
                                [[n, fingerprint(p)] for n, p in zip(self.names, paths)])
        super().__init__(str(root), transform, pre_transform, log=False, force_reload=force_reload)
        self.load(self.processed_paths[0])

    def process(self) -> None:
        graphs = []
        for k, (video, name) in enumerate(zip(self.videos, self.names)):
            source = video.source() if hasattr(video, "source") else video
            snippets = self.extractor.extract_video(source, cache_dir=Path(self.root))
            label = -1 if self.labels is None else self.labels[k]
            for graph in self.builder.build(snippets):
                graph.video = name
                graph.video_label = torch.tensor([label])
                graphs.append(graph)
        self._store(graphs, {**self.settings, "videos": self.names})
