"""Ground-truth file formats: UCSD .m intervals, interval CSV, pixel masks (images, .npy, .mat)."""
from __future__ import annotations

import numpy as np
import pytest
from dataset_fakes import masks_for, write_avenue_mat, write_mask_images

from stgraph.datasets.labels import (intervals_to_labels, mask_count, masks_to_labels, read_interval_csv,
                                     read_pixel_masks, read_ucsd_m)


def test_intervals_to_labels_inclusive_one_and_zero_based():
    np.testing.assert_array_equal(intervals_to_labels([(2, 3)], 5, one_based=True), [0, 1, 1, 0, 0])
    np.testing.assert_array_equal(intervals_to_labels([(0, 0), (3, 4)], 5), [1, 0, 0, 1, 1])
    with pytest.raises(ValueError, match="outside"):
        intervals_to_labels([(4, 6)], 5, one_based=True)
    with pytest.raises(ValueError, match="outside"):
        intervals_to_labels([(3, 2)], 5)


def test_read_ucsd_m_single_multiple_and_comments(tmp_path):
    m = tmp_path / "UCSDped1.m"
    m.write_text("TestVideoFile = {};\n"
                 "% TestVideoFile{end+1}.gt_frame = [1:2];\n"
                 "TestVideoFile{end+1}.gt_frame = [60:152];\n"
                 "TestVideoFile{end+1}.gt_frame = [5:90, 140:200];\n"
                 "TestVideoFile{end+1}.gt_frame = [7];\n")
    assert read_ucsd_m(m) == [[(60, 152)], [(5, 90), (140, 200)], [(7, 7)]]


def test_read_ucsd_m_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="UCSDped2.m"):
        read_ucsd_m(tmp_path / "UCSDped2.m")
    bad = tmp_path / "bad.m"
    bad.write_text("x = 1;\n")
    with pytest.raises(ValueError, match="bad.m"):
        read_ucsd_m(bad)


def test_read_interval_csv(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("video,start,end\ncam1,2,4\ncam1,8,8\ncam2,-1,-1\n")
    assert read_interval_csv(path) == {"cam1": [(2, 4), (8, 8)], "cam2": []}
    path.write_text("name,from,to\ncam1,2,4\n")
    with pytest.raises(ValueError, match="video,start,end"):
        read_interval_csv(path)
    path.write_text("video,start,end\ncam1,two,4\n")
    with pytest.raises(ValueError, match=r"labels.csv:2"):
        read_interval_csv(path)


@pytest.mark.parametrize("kind", ["images", "npy", "mat"])
def test_pixel_masks_read_back_in_every_format(tmp_path, kind):
    labels = [0, 1, 1, 0, 1]
    masks = masks_for(labels, seed=3)
    if kind == "images":
        path = write_mask_images(tmp_path / "Test001_gt", masks, prefix="frame")
    elif kind == "npy":
        path = tmp_path / "01_0014.npy"
        np.save(path, (masks > 0).astype(np.uint8))
    else:
        path = write_avenue_mat(tmp_path / "1_label.mat", masks)
    got = read_pixel_masks(path)
    assert got.dtype == bool and got.shape == masks.shape
    np.testing.assert_array_equal(got, masks > 0)
    np.testing.assert_array_equal(masks_to_labels(got), labels)
    assert mask_count(path) == len(labels)


def test_pixel_mask_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.npy"):
        read_pixel_masks(tmp_path / "missing.npy")
    np.save(tmp_path / "flat.npy", np.zeros(4))
    with pytest.raises(ValueError, match=r"flat.npy.*\[T, H, W\]"):
        read_pixel_masks(tmp_path / "flat.npy")
    (tmp_path / "broken.mat").write_bytes(b"not a mat file")
    with pytest.raises(ValueError, match="broken.mat"):
        read_pixel_masks(tmp_path / "broken.mat")
