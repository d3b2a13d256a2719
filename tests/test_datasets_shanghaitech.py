"""ShanghaiTech Campus reader: training/videos, testing/frames, test_frame_mask, test_pixel_mask, scenes."""
from __future__ import annotations

import numpy as np
import pytest
from dataset_fakes import masks_for, write_frames, write_video

from stgraph.datasets import DatasetError, detect_kind, load_dataset, load_shanghaitech

TEST_LABELS = {"01_0014": [0, 1, 1, 0], "01_0015": [0, 0, 0], "02_0128": [1, 1, 0, 0, 1]}
TRAIN = {"01_001": 3, "02_001": 4, "03_001": 2}


def make_shanghaitech(root):
    for name, n in TRAIN.items():
        write_video(root / "training" / "videos" / f"{name}.avi", n)
    for name, labels in TEST_LABELS.items():
        write_frames(root / "testing" / "frames" / name, len(labels))
        (root / "testing" / "test_frame_mask").mkdir(parents=True, exist_ok=True)
        np.save(root / "testing" / "test_frame_mask" / f"{name}.npy", np.array(labels, np.int64))
        (root / "testing" / "test_pixel_mask").mkdir(parents=True, exist_ok=True)
        np.save(root / "testing" / "test_pixel_mask" / f"{name}.npy", (masks_for(labels) > 0).astype(np.uint8))
    return root


def test_read_back_with_scenes_labels_and_masks(tmp_path):
    root = make_shanghaitech(tmp_path / "shanghaitech")
    assert detect_kind(root) == "shanghaitech"
    ds = load_dataset(root)
    assert [(v.name, len(v), v.meta["scene"]) for v in ds.train] == [("01_001", 3, "01"), ("02_001", 4, "02"),
                                                                     ("03_001", 2, "03")]
    assert [v.name for v in ds.test] == list(TEST_LABELS)
    for v in ds.test:
        np.testing.assert_array_equal(v.labels, TEST_LABELS[v.name])
        assert v.labels.dtype == np.uint8
        np.testing.assert_array_equal(v.pixel_masks().any(axis=(1, 2)), np.array(TEST_LABELS[v.name], bool))


def test_scene_subset(tmp_path):
    root = make_shanghaitech(tmp_path / "shanghaitech")
    ds = load_shanghaitech(root, scenes=[1])
    assert [v.name for v in ds.test] == ["01_0014", "01_0015"] and [v.name for v in ds.train] == ["01_001"]
    ds = load_shanghaitech(root, scenes=["02", "03"])
    assert [v.name for v in ds.test] == ["02_0128"] and {v.meta["scene"] for v in ds.train} == {"02", "03"}
    with pytest.raises(DatasetError, match="unknown ShanghaiTech scene ids"):
        load_shanghaitech(root, scenes=[14])
    with pytest.raises(DatasetError, match=r"no videos of scenes \['13'\] in .*testing"):
        load_shanghaitech(root, scenes=[13])


def test_every_problem_in_one_error(tmp_path):
    root = make_shanghaitech(tmp_path / "shanghaitech")
    (root / "testing" / "test_frame_mask" / "01_0015.npy").unlink()
    np.save(root / "testing" / "test_frame_mask" / "02_0128.npy", np.zeros(4, np.uint8))     # 5 frames
    np.save(root / "testing" / "test_pixel_mask" / "01_0014.npy", np.zeros((6, 16, 24), np.uint8))  # 4 frames
    with pytest.raises(DatasetError) as err:
        load_shanghaitech(root)
    message = str(err.value)
    assert "3 problem(s)" in message
    assert "'01_0015': label file not found" in message
    assert "'02_0128': 5 frames but 4 labels" in message
    assert "'01_0014': 4 frames but 6 pixel masks" in message


def test_missing_ground_truth_and_non_binary_labels(tmp_path):
    root = make_shanghaitech(tmp_path / "shanghaitech")
    np.save(root / "testing" / "test_frame_mask" / "01_0014.npy", np.array([0, 2, 1, 0]))
    with pytest.raises(DatasetError, match="'01_0014'.*must be 0/1"):
        load_shanghaitech(root)
    for f in (root / "testing" / "test_frame_mask").iterdir():
        f.unlink()
    (root / "testing" / "test_frame_mask").rmdir()
    assert load_shanghaitech(root, labels=False).labels == {}
    with pytest.raises(DatasetError, match="missing ground truth folder .*test_frame_mask"):
        load_shanghaitech(root)
