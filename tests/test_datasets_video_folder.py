"""Generic video folder (your own cameras) and the load_dataset entry point."""
from __future__ import annotations

import numpy as np
import pytest
from dataset_fakes import write_frames, write_video

from stgraph.datasets import DatasetError, detect_kind, load_dataset, load_video_folder


def make_folder(root):
    """train/ and test/ mixing video files and frame folders."""
    write_video(root / "train" / "morning.avi", 4)
    write_frames(root / "train" / "evening", 3, ".png")
    write_video(root / "test" / "cam1.avi", 6)
    write_frames(root / "test" / "cam2", 5, ".png")
    return root


def test_interval_csv_labels(tmp_path):
    root = make_folder(tmp_path / "site")
    csv = tmp_path / "labels.csv"
    csv.write_text("video,start,end\ncam1,1,2\ncam1,5,5\ncam2,,\n")
    assert detect_kind(root) == "folder"
    ds = load_dataset(root, labels=csv)
    assert [(v.name, len(v)) for v in ds.train] == [("evening", 3), ("morning", 4)]
    np.testing.assert_array_equal(ds.labels["cam1"], [0, 1, 1, 0, 0, 1])
    np.testing.assert_array_equal(ds.labels["cam2"], [0, 0, 0, 0, 0])


def test_npy_labels_and_no_labels(tmp_path):
    root = make_folder(tmp_path / "site")
    (tmp_path / "gt").mkdir()
    np.save(tmp_path / "gt" / "cam1.npy", np.array([0, 0, 1, 1, 1, 0], np.uint8))
    ds = load_video_folder(root, labels=tmp_path / "gt")
    assert list(ds.labels) == ["cam1"] and ds.test[1].labels is None
    assert load_video_folder(root).labels == {}                       # score-only use


def test_csv_problems_listed_together(tmp_path):
    root = make_folder(tmp_path / "site")
    csv = tmp_path / "labels.csv"
    csv.write_text("video,start,end\ncam1,4,7\ncam9,0,1\n")
    (root / "test" / "cam2" / "000.png").write_bytes(b"broken")
    with pytest.raises(DatasetError) as err:
        load_video_folder(root, labels=csv)
    message = str(err.value)
    assert "3 problem(s)" in message
    assert "'cam1'" in message and "outside" in message
    assert "['cam9']" in message and "not in the test split" in message
    assert "'cam2'" in message and "000.png" in message


def test_unknown_layout_and_kind(tmp_path):
    (tmp_path / "random").mkdir()
    with pytest.raises(DatasetError, match="cannot tell the dataset layout"):
        load_dataset(tmp_path / "random")
    with pytest.raises(DatasetError, match="unknown dataset kind 'kitti'"):
        load_dataset(tmp_path / "random", kind="kitti")
    with pytest.raises(DatasetError, match="dataset folder not found"):
        load_dataset(tmp_path / "nowhere")


def test_subset_keeps_labels_of_present_videos_only(tmp_path):
    root = make_folder(tmp_path / "site")
    labels = {"cam1": np.zeros(6, np.uint8), "cam2": np.ones(5, np.uint8),
              "cam3": np.ones(9, np.uint8)}                   # cam3: not in this copy
    ds = load_video_folder(root, labels=labels)
    assert sorted(ds.labels) == ["cam1", "cam2"]
    np.testing.assert_array_equal(ds.labels["cam2"], np.ones(5))
    with pytest.raises(DatasetError, match=r"\['cam3'\].*\['cam2'\] have none"):
        load_video_folder(root, labels={"cam1": labels["cam1"], "cam3": labels["cam3"]})


def test_frame_rate_on_items(tmp_path):
    from dataset_fakes import write_video as write

    root = tmp_path / "site"
    write(root / "test" / "cam1.avi", 4, fps=12.5)
    write_frames(root / "test" / "cam2", 3, ".png")
    ds = load_video_folder(root, require_train=False)
    assert [(v.name, v.fps) for v in ds.test] == [("cam1", 12.5), ("cam2", None)]
    assert [v.fps for v in load_video_folder(root, fps=7.0, require_train=False).test] == [7.0, 7.0]


def test_a_training_only_copy_loads_when_the_test_split_is_not_required(tmp_path):
    root = tmp_path / "site"
    write_frames(root / "train" / "evening", 3, ".png")
    with pytest.raises(DatasetError, match="missing split folder"):
        load_video_folder(root)
    ds = load_video_folder(root, require_test=False)
    assert [v.name for v in ds.train] == ["evening"] and ds.test == []
