"""UCSD Ped1/Ped2 reader: official layout (Train/Test, .m, _gt masks) and the re-packaged one."""
from __future__ import annotations

import numpy as np
import pytest
from dataset_fakes import frame, masks_for, write_frames, write_mask_images

from stgraph.datasets import DatasetError, detect_kind, load_dataset, load_ucsd

# test video -> (frames, gt_frame line of the .m, expected labels)
TEST_VIDEOS = {1: (6, "[2:4]", [0, 1, 1, 1, 0, 0]), 2: (5, "[1:2, 5:5]", [1, 1, 0, 0, 1])}
TRAIN_LENGTHS = (4, 3)


def make_official(root, ped="UCSDped2", masks=(1,)):
    """UCSDpedN/Train/TrainNNN/001.tif, Test/TestNNN/, Test/TestNNN_gt/ (for ``masks``), Test/UCSDpedN.m."""
    folder = root / ped
    for i, n in enumerate(TRAIN_LENGTHS, 1):
        write_frames(folder / "Train" / f"Train{i:03d}", n, ".tif", first=1)
    lines = ["TestVideoFile = {};"]
    for i, (n, gt, labels) in TEST_VIDEOS.items():
        write_frames(folder / "Test" / f"Test{i:03d}", n, ".tif", first=1)
        lines.append(f"TestVideoFile{{end+1}}.gt_frame = {gt};")
        if i in masks:
            write_mask_images(folder / "Test" / f"Test{i:03d}_gt", masks_for(labels, seed=i))
    (folder / "Test" / f"{ped}.m").write_text("\n".join(lines) + "\n")
    return folder


def test_official_layout_read_back(tmp_path):
    folder = make_official(tmp_path)
    ds = load_ucsd(folder)
    assert [v.name for v in ds.train] == ["Train001", "Train002"]
    assert [len(v) for v in ds.train] == list(TRAIN_LENGTHS)
    assert [v.name for v in ds.test] == ["Test001", "Test002"]  # Test001_gt is not a video
    for v, (n, _, labels) in zip(ds.test, TEST_VIDEOS.values()):
        assert len(v) == n
        np.testing.assert_array_equal(v.labels, labels)
    first = next(iter(ds.test[0].source()))
    np.testing.assert_array_equal(first.image, frame(0))  # .tif is lossless: 001.tif is frame 0
    masks = ds.test[0].pixel_masks()
    assert masks.shape == (6, 16, 24)
    np.testing.assert_array_equal(masks.any(axis=(1, 2)), np.array(TEST_VIDEOS[1][2], bool))
    assert ds.test[1].mask_path is None
    with pytest.raises(DatasetError, match="Test002.*no pixel masks"):
        ds.test[1].pixel_masks()


def test_distribution_root_needs_subset_when_both_present(tmp_path):
    make_official(tmp_path, "UCSDped1", masks=())
    make_official(tmp_path, "UCSDped2")
    with pytest.raises(DatasetError, match="subset='ped1' or 'ped2'"):
        load_ucsd(tmp_path)
    ds = load_ucsd(tmp_path, subset="ped1")
    assert ds.name == "UCSDped1" and all(v.mask_path is None for v in ds.test)
    assert load_dataset(tmp_path, subset="ped2").name == "UCSDped2"
    assert detect_kind(tmp_path) == "ucsd"


def test_official_layout_lists_every_problem_at_once(tmp_path):
    folder = make_official(tmp_path)
    (folder / "Test" / "Test001" / "006.tif").unlink()                 # 5 frames, 6 masks, [2:4] still fits
    (folder / "Test" / "UCSDped2.m").write_text("TestVideoFile{end+1}.gt_frame = [2:4];\n"
                                                "TestVideoFile{end+1}.gt_frame = [1:9];\n")
    (folder / "Train" / "Train002" / "001.tif").write_bytes(b"not an image")
    with pytest.raises(DatasetError) as err:
        load_ucsd(folder)
    message = str(err.value)
    assert "3 problem(s)" in message
    assert "Test002" in message and "outside" in message                 # [1:9] in a 5-frame video
    assert "Test001" in message and "5 frames but 6 pixel masks" in message
    assert "Train002" in message and "cannot read image" in message


def test_missing_annotation_and_split(tmp_path):
    folder = make_official(tmp_path)
    (folder / "Test" / "UCSDped2.m").unlink()
    for f in (folder / "Train" / "Train001").iterdir():
        f.unlink()
    (folder / "Train" / "Train001").rmdir()
    for f in (folder / "Train" / "Train002").iterdir():
        f.unlink()
    (folder / "Train" / "Train002").rmdir()
    with pytest.raises(DatasetError) as err:
        load_ucsd(folder)
    assert "UCSDped*.m not found" in str(err.value)
    assert "no TrainNNN frame folders" in str(err.value)


def make_repackaged(root, with_npz):
    """training/frames/NN/000.jpg, testing/frames/NN/, ground_truth/UCSDped2.m + pixel_masks/Test0NN/."""
    for i, n in enumerate(TRAIN_LENGTHS, 1):
        write_frames(root / "training" / "frames" / f"{i:02d}", n)
    lines = []
    for i, (n, gt, labels) in TEST_VIDEOS.items():
        write_frames(root / "testing" / "frames" / f"{i:02d}", n)
        lines.append(f"TestVideoFile{{end+1}}.gt_frame = {gt};")
        write_mask_images(root / "ground_truth" / "pixel_masks" / f"Test{i:03d}", masks_for(labels, seed=i), ".png")
    (root / "ground_truth" / "UCSDped2.m").write_text("\n".join(lines))
    if with_npz:
        np.savez(root / "ground_truth" / "frame_labels.npz",
                 **{f"{i:02d}": np.array(lab, np.uint8) for i, (_, _, lab) in TEST_VIDEOS.items()})
    return root


@pytest.mark.parametrize("with_npz", [True, False])
def test_repackaged_layout_labels_from_npz_or_m_and_masks(tmp_path, with_npz):
    root = make_repackaged(tmp_path / "ped2", with_npz)
    assert detect_kind(root) == "ucsd"
    ds = load_dataset(root)
    assert [v.name for v in ds.test] == ["01", "02"]
    for v, (_, _, labels) in zip(ds.test, TEST_VIDEOS.values()):
        np.testing.assert_array_equal(v.labels, labels)
        assert v.mask_path.name == f"Test{int(v.name):03d}"
        np.testing.assert_array_equal(v.pixel_masks().any(axis=(1, 2)), np.array(labels, bool))


def test_repackaged_mask_count_mismatch_is_reported(tmp_path):
    root = make_repackaged(tmp_path / "ped2", with_npz=True)
    (root / "ground_truth" / "pixel_masks" / "Test002" / "001.png").unlink()
    with pytest.raises(DatasetError, match=r"'02': 5 frames but 4 pixel masks"):
        load_ucsd(root)


@pytest.mark.slow
def test_shared_ped2_masks_agree_with_frame_labels(shared_data):
    ds = load_dataset(shared_data / "ucsd_ped2")
    assert len(ds.train) == 16 and len(ds.test) == 12
    assert sum(len(v.labels) for v in ds.test) == 2010
    assert sum(int(v.labels.sum()) for v in ds.test) == 1648
    for v in ds.test:
        masks = v.pixel_masks()
        assert masks.shape == (len(v.labels), 240, 360), v.name
        np.testing.assert_array_equal(masks.any(axis=(1, 2)), v.labels.astype(bool), err_msg=v.name)


def test_subset_of_a_repackaged_dataset_loads_with_its_full_labels_file(tmp_path, caplog):
    """Two of the test videos kept, the whole ground_truth/ folder (labels for both) copied."""
    import logging
    import shutil

    root = make_repackaged(tmp_path / "ped2", with_npz=True)
    shutil.rmtree(root / "testing" / "frames" / "02")
    shutil.rmtree(root / "training" / "frames" / "02")
    assert detect_kind(root) == "ucsd"
    with caplog.at_level(logging.INFO, logger="stgraph.datasets.folders"):
        ds = load_dataset(root)
    assert [v.name for v in ds.test] == ["01"] and [v.name for v in ds.train] == ["01"]
    assert list(ds.labels) == ["01"] and "['02']" in caplog.text
    np.testing.assert_array_equal(ds.test[0].labels, TEST_VIDEOS[1][2])


def test_ucsd_items_carry_the_datasets_frame_rate(tmp_path):
    official = load_ucsd(make_official(tmp_path / "official"))
    repackaged = load_dataset(make_repackaged(tmp_path / "ped2", with_npz=True))
    for item in official.train + official.test + repackaged.train + repackaged.test:
        assert item.fps == 10.0
        assert item.source().fps == 10.0
