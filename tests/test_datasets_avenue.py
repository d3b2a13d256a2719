"""CUHK Avenue reader: training_videos/, testing_videos/, ground_truth_demo/testing_label_mask/N_label.mat."""
from __future__ import annotations

import numpy as np
import pytest
from dataset_fakes import masks_for, write_avenue_mat, write_video

from stgraph.datasets import DatasetError, detect_kind, load_avenue, load_dataset

TEST_LABELS = {"01": [0, 0, 1, 1, 0], "02": [1, 1, 1, 0]}


def make_avenue(root, extra_masks=(3,)):
    """Two training videos, the test videos of TEST_LABELS and their masks (plus masks of absent videos)."""
    for name, n in (("01", 4), ("02", 3)):
        write_video(root / "training_videos" / f"{name}.avi", n)
    mask_dir = root / "ground_truth_demo" / "testing_label_mask"
    for name, labels in TEST_LABELS.items():
        write_video(root / "testing_videos" / f"{name}.avi", len(labels))
        write_avenue_mat(mask_dir / f"{int(name)}_label.mat", masks_for(labels, seed=int(name)))
    for number in extra_masks:  # partial copy: masks of videos that are not there are ignored
        write_avenue_mat(mask_dir / f"{number}_label.mat", masks_for([1, 0]))
    return root


def test_read_back_labels_from_mat_masks(tmp_path):
    root = make_avenue(tmp_path / "avenue")
    assert detect_kind(root) == "avenue"
    ds = load_dataset(root)
    assert [(v.name, len(v)) for v in ds.train] == [("01", 4), ("02", 3)]
    assert [v.name for v in ds.test] == ["01", "02"]
    for v in ds.test:
        np.testing.assert_array_equal(v.labels, TEST_LABELS[v.name])
        assert v.mask_path.name == f"{int(v.name)}_label.mat"  # not zero-padded
        masks = v.pixel_masks()
        assert masks.shape == (len(TEST_LABELS[v.name]), 16, 24)
        np.testing.assert_array_equal(masks, masks_for(TEST_LABELS[v.name], seed=int(v.name)) > 0)
    frames = ds.test[0].source().read_all()
    assert len(frames) == 5 and frames[0].image.shape == (16, 24, 3)
    assert {v.fps for v in ds.train + ds.test} == {25.0}    # the videos' own rate, on the items


def test_labels_false_needs_no_ground_truth(tmp_path):
    root = make_avenue(tmp_path / "avenue")
    for f in (root / "ground_truth_demo" / "testing_label_mask").iterdir():
        f.unlink()
    ds = load_avenue(root, labels=False)
    assert ds.labels == {} and len(ds.test) == 2


def test_every_problem_in_one_error(tmp_path):
    root = make_avenue(tmp_path / "avenue")
    mask_dir = root / "ground_truth_demo" / "testing_label_mask"
    (mask_dir / "2_label.mat").unlink()
    write_avenue_mat(mask_dir / "1_label.mat", masks_for([0, 1, 1]))    # 3 masks for 5 frames
    (root / "training_videos" / "02.avi").write_bytes(b"garbage")
    with pytest.raises(DatasetError) as err:
        load_avenue(root)
    message = str(err.value)
    assert "3 problem(s)" in message
    assert "'02': mask file not found" in message and "2_label.mat" in message
    assert "test video '01': 5 frames but 3 labels" in message
    assert "train video '02'" in message and "02.avi" in message


def test_missing_folders(tmp_path):
    (tmp_path / "avenue" / "testing_videos").mkdir(parents=True)
    with pytest.raises(DatasetError) as err:
        load_avenue(tmp_path / "avenue")
    message = str(err.value)
    assert "missing split folder" in message and "training_videos" in message
    assert "no video files in" in message and "ground_truth_demo/testing_label_mask" in message


@pytest.mark.slow
def test_shared_avenue_partial_official_layout(shared_data):
    root = shared_data / "avenue"
    ds = load_dataset(root)
    assert [v.name for v in ds.train] == ["12", "16"]
    assert [v.name for v in ds.test] == ["08", "17", "18", "19", "20", "21"]
    lengths = {"08": 36, "17": 426, "18": 294, "19": 248, "20": 273, "21": 76}
    assert {v.name: len(v.labels) for v in ds.test} == lengths
    assert sum(int(v.labels.sum()) for v in ds.test) == 1061
    with np.load(root / "ground_truth" / "frame_labels.npz") as ref:  # built independently, see README
        for v in ds.test:
            np.testing.assert_array_equal(v.labels, ref[v.name], err_msg=v.name)
    masks = ds.test[0].pixel_masks()
    assert masks.shape == (36, 360, 640) and masks.dtype == bool
