"""UCF-Crime reader: split lists, temporal annotation (two intervals, -1 = none), videos found by name."""
from __future__ import annotations

import numpy as np
import pytest
from dataset_fakes import write_video

from stgraph.datasets import DatasetError, detect_kind, load_dataset, load_ucf_crime, read_ucf_annotation

ANNOTATION = ("Arrest001_x264.mp4  Arrest  1  3  5  6\n"
              "Abuse002_x264.mp4  Abuse  0  2  -1  -1\n"
              "Normal_Videos_003_x264.mp4  Normal  -1  -1  -1  -1\n")
# expected labels: 0-based, end exclusive
EXPECTED = {"Arrest001_x264": [0, 1, 1, 0, 0, 1, 0, 0], "Abuse002_x264": [1, 1, 0, 0],
            "Normal_Videos_003_x264": [0, 0, 0]}


def make_ucf(root):
    """Videos split over Part folders, split lists and the annotation, as distributed."""
    videos = {"Anomaly-Videos-Part-1/Arrest/Arrest001_x264": 8, "Anomaly-Videos-Part-1/Abuse/Abuse002_x264": 4,
              "Anomaly-Videos-Part-1/Abuse/Abuse001_x264": 3,
              "Testing_Normal_Videos/Testing_Normal_Videos_Anomaly/Normal_Videos_003_x264": 3,
              "Training-Normal-Videos-Part-1/Normal_Videos001_x264": 2}
    for rel, n in videos.items():
        write_video(root / f"{rel}.avi", n)
    splits = root / "UCF_Crimes-Train-Test-Split" / "Anomaly_Detection_splits"
    splits.mkdir(parents=True)
    (splits / "Anomaly_Train.txt").write_text("Abuse/Abuse001_x264.avi\n"
                                              "Training_Normal_Videos_Anomaly/Normal_Videos001_x264.avi\n")
    (splits / "Anomaly_Test.txt").write_text("Arrest/Arrest001_x264.avi\nAbuse/Abuse002_x264.avi\n"
                                             "Testing_Normal_Videos_Anomaly/Normal_Videos_003_x264.avi\n")
    (root / "UCF_Crimes-Train-Test-Split" / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt").write_text(ANNOTATION)
    return root


def test_read_annotation(tmp_path):
    path = tmp_path / "ann.txt"
    path.write_text(ANNOTATION)
    assert read_ucf_annotation(path) == {"Arrest001_x264": ("Arrest", [(1, 3), (5, 6)]),
                                         "Abuse002_x264": ("Abuse", [(0, 2)]),
                                         "Normal_Videos_003_x264": ("Normal", [])}
    path.write_text("Arrest001_x264.mp4  Arrest  1  3\n")
    with pytest.raises(ValueError, match=r"ann.txt:1: expected"):
        read_ucf_annotation(path)


def test_read_back_with_split_lists(tmp_path):
    root = make_ucf(tmp_path / "UCF_Crimes")
    assert detect_kind(root) == "ucf_crime"
    ds = load_dataset(root)
    assert [v.name for v in ds.train] == ["Normal_Videos001_x264"]          # normal-only training
    assert [v.name for v in ds.test] == list(EXPECTED)
    for v in ds.test:
        np.testing.assert_array_equal(v.labels, EXPECTED[v.name])
    assert ds.test[0].meta == {"category": "Arrest", "anomalous": True}
    assert ds.test[2].meta == {"category": "Normal", "anomalous": False}
    everything = load_ucf_crime(root, train="all")
    assert [(v.name, v.meta["anomalous"]) for v in everything.train] == [("Abuse001_x264", True),
                                                                         ("Normal_Videos001_x264", False)]


def test_without_split_lists_the_annotation_defines_the_test_split(tmp_path):
    root = make_ucf(tmp_path / "UCF_Crimes")
    for name in ("Anomaly_Train.txt", "Anomaly_Test.txt"):
        (root / "UCF_Crimes-Train-Test-Split" / "Anomaly_Detection_splits" / name).unlink()
    ds = load_ucf_crime(root)
    assert sorted(v.name for v in ds.test) == sorted(EXPECTED)
    assert [v.name for v in ds.train] == ["Normal_Videos001_x264"]


def test_every_problem_in_one_error(tmp_path):
    root = make_ucf(tmp_path / "UCF_Crimes")
    splits = root / "UCF_Crimes-Train-Test-Split" / "Anomaly_Detection_splits"
    (splits / "Anomaly_Test.txt").write_text("Arrest/Arrest001_x264.avi\nAbuse/Abuse002_x264.avi\n"
                                             "Abuse/Abuse001_x264.avi\nRobbery/Robbery099_x264.avi\n")
    ann = root / "UCF_Crimes-Train-Test-Split" / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt"
    ann.write_text(ANNOTATION.replace("0  2  -1", "4  9  -1"))                 # starts past Abuse002's 4 frames
    with pytest.raises(DatasetError) as err:
        load_ucf_crime(root)
    message = str(err.value)
    assert "3 problem(s)" in message
    assert "Robbery099_x264" in message and "not found" in message
    assert "'Abuse001_x264' has no line in" in message
    assert "'Abuse002_x264': interval [4, 9) is outside the video's 4 frames" in message


def test_missing_annotation(tmp_path):
    write_video(tmp_path / "ucf" / "Abuse" / "Abuse001_x264.avi", 2)
    with pytest.raises(DatasetError, match="Temporal_Anomaly_Annotation_for_Testing_Videos.txt not found"):
        load_ucf_crime(tmp_path / "ucf")
