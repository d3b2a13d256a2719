"""Patch-grid graphs: grid adjacency, per-snippet Data, cached dataset."""
import numpy as np
import pytest
import torch

from stgraph.features.snippets import CubeFunctionExtractor, SnippetFeatures
from stgraph.graphs.patch_grid import PatchGraphDataset, PatchGridBuilder, grid_edge_index


def test_grid_edges_4_and_8_neighbours():
    e4 = grid_edge_index(2, 3)
    assert e4.shape == (2, 14)
    pairs = set(map(tuple, e4.t().tolist()))
    assert (0, 1) in pairs and (1, 0) in pairs and (0, 3) in pairs and (0, 4) not in pairs
    e8 = grid_edge_index(2, 3, neighbours=8)
    assert e8.shape == (2, 14 + 8) and (0, 4) in set(map(tuple, e8.t().tolist()))
    assert grid_edge_index(1, 1).shape == (2, 0)
    with pytest.raises(ValueError):
        grid_edge_index(2, 2, neighbours=6)


def test_builder_gives_one_graph_per_snippet_and_scale():
    ranges = np.array([[0, 16], [16, 32]])
    feats = [np.random.default_rng(0).normal(size=(2, n, 5)).astype(np.float32) for n in (1, 6)]
    s = SnippetFeatures(feats, [(1, 1), (2, 3)], ranges, 32, (240, 360))
    graphs = PatchGridBuilder().build(s)
    assert len(graphs) == 4
    g = graphs[3]
    assert g.x.shape == (6, 5) and g.num_nodes == 6 and g.edge_index.shape == (2, 14)
    torch.testing.assert_close(g.x, torch.from_numpy(feats[1][1]))
    assert g.pos.tolist()[4] == [1, 1] and g.grid.tolist() == [[2, 3]]
    assert g.frame_range.tolist() == [[16, 32]] and g.box.shape == (6, 4)


def test_dataset_is_computed_once_then_loaded(tmp_path):
    calls = []

    def fn(cubes):
        calls.append(1)
        return cubes.reshape(len(cubes), -1).astype(np.float32)[:, :3]

    videos = [np.random.default_rng(k).integers(0, 255, (20, 16, 16, 3), dtype=np.uint8)
              for k in range(2)]
    import cv2

    paths = []
    for k, v in enumerate(videos):
        d = tmp_path / f"v{k}"
        d.mkdir()
        for i, im in enumerate(v):
            cv2.imwrite(str(d / f"{i:03d}.png"), im)
        paths.append(d)
    ext = CubeFunctionExtractor(fn, grids=[(1, 1), (2, 2)], snippet_len=16)
    ds = PatchGraphDataset(tmp_path / "root", paths, ext, labels=[0, 1])
    assert len(ds) == 2 * 2 * 2  # videos x snippets x grids
    assert ds[0].video == "v0" and int(ds[7].video_label) == 1
    n = len(calls)
    again = PatchGraphDataset(tmp_path / "root", paths, ext, labels=[0, 1])
    assert len(again) == 8 and len(calls) == n
