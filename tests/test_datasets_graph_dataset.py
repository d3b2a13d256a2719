"""ObjectGraphDataset: graphs built once per video, cached by settings, rebuilt when settings change."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from detectors.motion import MotionRegionDetector
from stgraph.datasets import ObjectGraphDataset, load_video_folder, make_video
from stgraph.features import GeometryFeatures
from stgraph.graphs import ObjectGraphBuilder

N_FRAMES = 10


class CountingMotionDetector(MotionRegionDetector):
    """The motion detector, counting ``detect`` calls (class-wide, reset by the fixture)."""

    calls = 0

    def detect(self, image, frame_index=0):
        type(self).calls += 1
        return super().detect(image, frame_index=frame_index)


@pytest.fixture
def videos(tmp_path):
    """A test split of two synthetic videos as PNG frame folders, with frame labels."""
    root = tmp_path / "site"
    labels = {}
    for seed, name in ((0, "a"), (1, "b")):
        video = make_video(seed, n_frames=N_FRAMES, n_people=6, anomalies=("fast",), anomaly_start=4, size=(96, 128))
        (root / "testing" / name).mkdir(parents=True)
        for i, image in enumerate(video.frames):
            cv2.imwrite(str(root / "testing" / name / f"{i:03d}.png"), image)
        labels[name] = video.labels
    CountingMotionDetector.calls = 0
    return load_video_folder(root, labels=labels, require_train=False)


def build(root, videos, builder=None, clip_length=3, **kwargs):
    return ObjectGraphDataset(root, videos, CountingMotionDetector(clip_length=clip_length), GeometryFeatures(),
                              builder or ObjectGraphBuilder(), split="test", **kwargs)


def test_graphs_per_video_with_labels(tmp_path, videos):
    ds = build(tmp_path / "cache", videos)
    assert len(ds) == 2 and ds.video_names == ["a", "b"]
    assert CountingMotionDetector.calls == 2 * N_FRAMES
    for graph, item in zip(ds, videos.test):
        assert graph.video == item.name
        np.testing.assert_array_equal(graph.frame_ids.numpy(), np.arange(N_FRAMES))
        np.testing.assert_array_equal(graph.frame_label.numpy(), item.labels)
        assert graph.x.shape[1] == GeometryFeatures().dim
        assert graph.edge_index.shape[0] == 2 and graph.edge_weight.shape[0] == graph.edge_index.shape[1]
    assert sum(g.num_nodes for g in ds) > 0


def test_second_load_is_cached_and_changed_settings_recompute(tmp_path, videos):
    first = build(tmp_path / "cache", videos)
    calls = CountingMotionDetector.calls
    again = build(tmp_path / "cache", videos)
    assert CountingMotionDetector.calls == calls                         # nothing detected again
    assert again.key == first.key
    for g1, g2 in zip(first, again):
        assert torch.equal(g1.edge_index, g2.edge_index) and torch.equal(g1.x, g2.x)

    spatial_only = build(tmp_path / "cache", videos, builder=ObjectGraphBuilder(temporal=False))
    assert spatial_only.key != first.key
    assert CountingMotionDetector.calls == calls                         # graphs rebuilt from cached detections
    assert all(int((g.edge_type == 1).sum()) == 0 for g in spatial_only)
    assert sum(int((g.edge_type == 1).sum()) for g in first) > 0

    build(tmp_path / "cache", videos, clip_length=4)                     # new detector settings
    assert CountingMotionDetector.calls == calls + 2 * N_FRAMES


def test_windows_and_batching(tmp_path, videos):
    from torch_geometric.loader import DataLoader

    ds = build(tmp_path / "cache", videos, window=4)
    assert len(ds) == 6                                                  # 10 frames -> 4 + 4 + 2, two videos
    assert [len(g.frame_ids) for g in ds][:3] == [4, 4, 2]
    np.testing.assert_array_equal(ds[1].frame_ids.numpy(), [4, 5, 6, 7])
    np.testing.assert_array_equal(ds[1].frame_label.numpy(), videos.test[0].labels[4:8])
    batch = next(iter(DataLoader(ds, batch_size=3)))
    np.testing.assert_array_equal(batch.frame_ids.numpy(), list(range(10)))  # not shifted by node counts
    assert batch.video == ["a", "a", "a"]


def test_unlabelled_paths_and_bad_arguments(tmp_path, videos):
    ds = ObjectGraphDataset(tmp_path / "cache", [videos.test[0].path], CountingMotionDetector(clip_length=3),
                            GeometryFeatures(), ObjectGraphBuilder())
    assert ds.video_names == ["a"] and bool((ds[0].frame_label == -1).all())
    with pytest.raises(ValueError, match="window must be"):
        build(tmp_path / "cache", videos, window=0)
    with pytest.raises(FileNotFoundError, match="missing_video"):
        ObjectGraphDataset(tmp_path / "cache", [tmp_path / "missing_video.avi"], CountingMotionDetector(),
                           GeometryFeatures(), ObjectGraphBuilder())


class AddToFeatures:
    """A pre_transform with a parameter (its repr is Python's default one)."""

    def __init__(self, value: float):
        self.value = value

    def __call__(self, graph):
        graph.x = graph.x + self.value
        return graph


def test_pre_transform_is_part_of_the_key(tmp_path, videos):
    plain = build(tmp_path / "cache", videos)
    shifted = build(tmp_path / "cache", videos, pre_transform=AddToFeatures(1.0))
    assert shifted.key != plain.key                  # not served the graphs without the transform
    torch.testing.assert_close(shifted[0].x, plain[0].x + 1.0)
    other = build(tmp_path / "cache", videos, pre_transform=AddToFeatures(2.0))
    torch.testing.assert_close(other[0].x, plain[0].x + 2.0)
    again = build(tmp_path / "cache", videos, pre_transform=AddToFeatures(1.0))
    assert again.key == shifted.key


def test_graphs_of_an_older_format_are_not_read(tmp_path, videos, caplog):
    import json
    import logging

    from stgraph.datasets.graph_dataset import GRAPH_DATASET_FORMAT

    current = build(tmp_path / "cache", videos)
    processed = tmp_path / "cache" / "processed"
    settings = json.loads((processed / current.key / "settings.json").read_text())
    assert settings["format"] == GRAPH_DATASET_FORMAT
    # a folder of format 1 (no "format" in its settings.json): renamed to stand for the old key
    old = processed / "0123456789abcdef"
    (processed / current.key).rename(old)
    del settings["format"]
    (old / "settings.json").write_text(json.dumps(settings))
    with caplog.at_level(logging.WARNING, logger="stgraph.datasets.graph_dataset"):
        rebuilt = build(tmp_path / "cache", videos)
    assert rebuilt.key == current.key and "0123456789abcdef" in caplog.text
    assert "not read" in caplog.text and (processed / current.key).is_dir()
